"""money, datetime, date and number: the customer's locale and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from narrowcast.render import Renderer, TemplateFailed
from narrowcast.render.filters import _money_formatter

from .conftest import CAMPAIGN, Write, customer

NBSP = "\u00a0"


def _subject(renderer: Renderer, write: Write, template: str, **changes: Any) -> str:
    segment = changes.pop("segment", {})
    write({"spring/push.body.j2": template})
    message = renderer.render("push", customer(**changes), campaign=CAMPAIGN, segment=segment)
    return str(message["body"])


@pytest.mark.parametrize(
    ("locale", "amount", "currency", "expected"),
    [
        ("es-ES", 1234.5, "EUR", f"1.234,50{NBSP}€"),
        ("en-GB", 1234.5, "EUR", "€1,234.50"),
        ("en-GB", 59.9, "GBP", "£59.90"),
        ("en-US", "1999.999", "USD", "$2,000.00"),
        ("pl-PL", 1234.5, "PLN", f"1{NBSP}234,50{NBSP}zł"),
        ("es-MX", 99, "MXN", "$99.00"),
        ("ja-JP", 1500, "JPY", "￥1,500"),
        ("en-GB", -0.004, "EUR", "-€0.00"),  # Babel keeps the sign of what was rounded away
        (None, 12, "EUR", "€12.00"),  # no locale: English
        ("xx-YY", 12, "EUR", "€12.00"),  # a locale Babel does not know: English
    ],
)
def test_money(
    renderer: Renderer, write: Write, locale: str, amount: Any, currency: str, expected: str
) -> None:
    template = "{{ segment.amount | money(segment.currency) }}"
    segment = {"amount": amount, "currency": currency}
    assert _subject(renderer, write, template, locale=locale, segment=segment) == expected


@settings(max_examples=300, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False),
    locale=st.sampled_from(
        ["en_GB", "en_US", "es_ES", "es_MX", "pl_PL", "de_DE", "fr_FR", "ar_EG", "hi_IN", "de_CH"]
    ),
    currency=st.sampled_from(["EUR", "USD", "GBP", "PLN", "MXN", "JPY", "KWD", "CHF"]),
)
def test_the_fast_money_formatter_is_babel(amount: Decimal, locale: str, currency: str) -> None:
    expected = format_currency(amount, currency, locale=locale)
    assert _money_formatter(locale.replace("_", "-"), currency)(amount) == expected


def test_money_with_an_unknown_currency_names_template_and_line(
    renderer: Renderer, write: Write, root: Any
) -> None:
    with pytest.raises(TemplateFailed) as info:
        _subject(renderer, write, "Only\n{{ 5 | money('EURO') }}")
    assert str(info.value) == (
        f"{root}/spring/push.body.j2:2: money: unknown currency 'EURO' — "
        "use an ISO 4217 code such as 'EUR'"
    )


@pytest.mark.parametrize("amount", ["'abc'", "none", "true", "[1]"])
def test_money_needs_a_number(renderer: Renderer, write: Write, amount: str) -> None:
    with pytest.raises(TemplateFailed, match=r"push\.body\.j2:1: money: expected a number"):
        _subject(renderer, write, f"{{{{ {amount} | money('EUR') }}}}")


JULY = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
JANUARY = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "zone", "moment", "fmt", "expected"),
    [
        ("es-ES", "Europe/Madrid", JULY, "HH:mm", "12:00"),  # CEST, UTC+2
        ("es-ES", "Europe/Madrid", JANUARY, "HH:mm", "11:00"),  # CET, UTC+1
        ("es-ES", "Atlantic/Canary", JULY, "HH:mm", "11:00"),
        ("en-US", "America/New_York", JULY, "h:mm", "6:00"),
        ("es-MX", "America/Mexico_City", JULY, "HH:mm", "04:00"),
        ("es-ES", "Europe/Madrid", JULY, "long", "1 de julio de 2026, 12:00:00 CEST"),
        ("en-GB", "Europe/London", JULY, "EEEE d MMMM", "Wednesday 1 July"),
        ("pl-PL", "Europe/Warsaw", JULY, "d MMMM", "1 lipca"),
        ("es-ES", None, JULY, "HH:mm", "10:00"),  # no zone: UTC
        ("es-ES", "Not/AZone", JULY, "HH:mm", "10:00"),
    ],
)
def test_datetime(
    renderer: Renderer,
    write: Write,
    locale: str,
    zone: str | None,
    moment: datetime,
    fmt: str,
    expected: str,
) -> None:
    template = "{{ segment.at | datetime(segment.fmt) }}"
    segment = {"at": moment, "fmt": fmt}
    text = _subject(renderer, write, template, locale=locale, timezone=zone, segment=segment)
    assert text == expected


def test_datetime_takes_naive_values_and_iso_text_as_utc(renderer: Renderer, write: Write) -> None:
    template = "{{ segment.a | datetime('HH:mm') }} {{ segment.b | datetime('HH:mm') }}"
    segment = {"a": datetime(2026, 7, 1, 10, 0), "b": "2026-07-01T10:00:00Z"}
    assert _subject(renderer, write, template, segment=segment) == "12:00 12:00"


def test_date(renderer: Renderer, write: Write) -> None:
    template = "{{ segment.d | date('d MMMM') }} / {{ segment.late | date('short') }}"
    segment = {"d": date(2026, 12, 4), "late": datetime(2026, 12, 31, 23, 30, tzinfo=UTC)}
    # 23:30 UTC on New Year's Eve is already the 1st in Madrid.
    assert _subject(renderer, write, template, segment=segment) == "4 diciembre / 1/1/27"


def test_number(renderer: Renderer, write: Write) -> None:
    template = "{{ segment.n | number }} {{ segment.n | number('#,##0.0') }}"
    assert _subject(renderer, write, template, segment={"n": 12345.678}) == "12.345,678 12.345,7"
    assert _subject(renderer, write, template, locale="en-US", segment={"n": 12345.678}) == (
        "12,345.678 12,345.7"
    )


def test_datetime_with_a_bad_value(renderer: Renderer, write: Write) -> None:
    with pytest.raises(TemplateFailed, match=r"push\.body\.j2:1: datetime: expected a datetime"):
        _subject(renderer, write, "{{ 'soon' | datetime }}")


def test_none_prints_as_nothing_and_or_gives_a_fallback(renderer: Renderer, write: Write) -> None:
    template = "[{{ customer.first_name }}] {{ customer.first_name or 'there' }}"
    assert _subject(renderer, write, template, first_name=None) == "[] there"


def test_default_filter_for_a_missing_attribute(renderer: Renderer, write: Write) -> None:
    template = "{{ customer.company | default('your team') }}"
    assert _subject(renderer, write, template) == "your team"
