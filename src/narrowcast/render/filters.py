"""Filters a marketer expects, localised for the customer the message is for.

    {{ segment.cart.value | money(segment.cart.currency) }}   59,90 € (es-ES) · €59.90 (en-GB)
    {{ segment.last_order.ts | datetime('long') }}           in customer.timezone, customer.locale
    {{ customer.birth_date | date('d MMMM') }}               4 diciembre
    {{ segment.clv | number }}                               1.234,5

``fmt`` is ``short``, ``medium`` (default), ``long``, ``full`` or a CLDR
pattern such as ``EEEE d MMMM, HH:mm``. Naive datetimes are taken as UTC.
A customer without a locale gets ``en``; without a time zone, UTC.

Babel's formatting costs tens of microseconds a call, which the render
budget (≥ 20,000 emails/s) cannot pay. Money therefore goes through a
formatter compiled once per (locale, currency) from Babel's own CLDR pattern
and symbols; at compile time it is checked against ``format_currency`` on
probe amounts and Babel itself is used for any pair where they differ
(unusual grouping, quoting). Dates are cached per (value, format, locale, zone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import (
    UnknownCurrencyError,
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    validate_currency,
)
from jinja2 import pass_context
from jinja2.runtime import Context

from narrowcast.render.errors import HelperError

DEFAULT_LOCALE = "en"
_PROBES = tuple(
    Decimal(text) for text in ("0", "0.5", "-0.004", "7", "999.995", "1234.5", "-1234567.891")
)


def _customer(context: Context) -> Mapping[str, Any]:
    customer = context.parent.get("customer")
    if type(customer) is dict or isinstance(customer, Mapping):
        return customer
    return {}


@pass_context
def money(context: Context, amount: Any, currency: Any) -> str:
    """``amount`` in ``currency`` (ISO 4217), the way the customer's locale writes money."""
    locale = str(_customer(context).get("locale") or DEFAULT_LOCALE)
    if type(amount) in _HASHABLE_AMOUNTS and type(currency) is str:
        return _money(amount, currency, locale)  # an email shows one amount several times
    return _money_formatter(locale, _currency(currency))(_decimal(amount, "money"))


@pass_context
def datetime_filter(context: Context, value: Any, fmt: str = "medium") -> str:
    """``value`` (datetime, date or ISO text) in the customer's time zone and locale."""
    customer = _customer(context)
    moment = _moment(value)
    return _format_datetime(
        moment, str(fmt), str(customer.get("locale") or DEFAULT_LOCALE), customer.get("timezone")
    )


@pass_context
def date_filter(context: Context, value: Any, fmt: str = "medium") -> str:
    """The calendar date of ``value`` (in the customer's zone when it is an instant)."""
    customer = _customer(context)
    locale = str(customer.get("locale") or DEFAULT_LOCALE)
    if isinstance(value, str):
        value = _moment(value) if "T" in value or " " in value.strip() else _date(value)
    if isinstance(value, datetime):
        value = _aware(value).astimezone(_zone(customer.get("timezone"))).date()
    elif not isinstance(value, date):
        raise HelperError(f"date: expected a date or datetime, got {value!r}")
    return _format_date(value, str(fmt), locale)


@pass_context
def number(context: Context, value: Any, fmt: str | None = None) -> str:
    """``value`` with the locale's separators; ``fmt`` is an optional CLDR pattern (``#,##0.0``)."""
    locale = str(_customer(context).get("locale") or DEFAULT_LOCALE)
    return _format_number(_decimal(value, "number"), fmt, locale)


FILTERS: dict[str, Callable[..., str]] = {
    "money": money,
    "datetime": datetime_filter,
    "date": date_filter,
    "number": number,
}


# -- money --------------------------------------------------------------------------

_HASHABLE_AMOUNTS = frozenset({int, float, Decimal, str})


@lru_cache(maxsize=4096)
def _money(amount: Any, currency: str, locale: str) -> str:
    return _money_formatter(locale, _currency(currency))(_decimal(amount, "money"))


@lru_cache(maxsize=512)
def _money_formatter(locale_name: str, currency: str) -> Callable[[Decimal], str]:
    locale = _babel_locale(locale_name)

    def babel(amount: Decimal) -> str:
        return str(format_currency(amount, currency, locale=locale))

    fast = _compile_money(locale, currency)
    if fast is None or any(fast(probe) != babel(probe) for probe in _PROBES):
        return babel
    return fast


def _compile_money(locale: Locale, currency: str) -> Callable[[Decimal], str] | None:
    """A formatter that does what Babel's pattern does, for the common pattern shapes."""
    pattern = locale.currency_formats["standard"]
    affixes = (*pattern.prefix, *pattern.suffix)
    if pattern.grouping != (3, 3) or pattern.exp_prec or "'" in "".join(affixes):
        return None
    if any("¤¤" in affix for affix in affixes):
        return None
    symbol = get_currency_symbol(currency, locale)
    positive = (
        str(pattern.prefix[0]).replace("¤", symbol),
        str(pattern.suffix[0]).replace("¤", symbol),
    )
    negative = (
        str(pattern.prefix[1]).replace("¤", symbol),
        str(pattern.suffix[1]).replace("¤", symbol),
    )
    digits = get_currency_precision(currency)
    quantum = Decimal(1).scaleb(-digits)
    spec = f",.{digits}f"
    separators = str.maketrans({",": get_group_symbol(locale), ".": get_decimal_symbol(locale)})

    def fast(amount: Decimal) -> str:
        prefix, suffix = negative if amount.is_signed() else positive
        body = format(abs(amount).quantize(quantum, ROUND_HALF_EVEN), spec).translate(separators)
        return prefix + body + suffix

    return fast


def _currency(currency: Any) -> str:
    if not isinstance(currency, str) or not currency:
        raise HelperError(
            f"money: currency must be an ISO 4217 code such as 'EUR', got {currency!r}"
        )
    return _known_currency(currency)


@lru_cache(maxsize=512)
def _known_currency(currency: str) -> str:
    code = currency.upper()
    try:
        validate_currency(code)
    except UnknownCurrencyError:
        raise HelperError(
            f"money: unknown currency {currency!r} — use an ISO 4217 code such as 'EUR'"
        ) from None
    return code


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise HelperError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            pass
        else:
            if result.is_finite():
                return result
    raise HelperError(f"{name}: expected a number, got {value!r}")


# -- dates --------------------------------------------------------------------------


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise HelperError(f"datetime: expected a datetime or ISO 8601 text, got {value!r}")


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HelperError(f"date: expected a date (YYYY-MM-DD), got {value!r}") from None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def _format_datetime(moment: datetime, fmt: str, locale_name: str, zone: str | None) -> str:
    try:
        return str(
            format_datetime(moment, fmt, tzinfo=_zone(zone), locale=_babel_locale(locale_name))
        )
    except (ValueError, KeyError, AttributeError) as exc:
        raise HelperError(f"datetime: cannot format with {fmt!r}: {exc}") from None


@lru_cache(maxsize=4096)
def _format_date(value: date, fmt: str, locale_name: str) -> str:
    try:
        return str(format_date(value, fmt, locale=_babel_locale(locale_name)))
    except (ValueError, KeyError, AttributeError) as exc:
        raise HelperError(f"date: cannot format with {fmt!r}: {exc}") from None


@lru_cache(maxsize=4096)
def _format_number(value: Decimal, fmt: str | None, locale_name: str) -> str:
    try:
        return str(format_decimal(value, fmt, locale=_babel_locale(locale_name)))
    except (ValueError, KeyError) as exc:
        raise HelperError(f"number: cannot format with {fmt!r}: {exc}") from None


@lru_cache(maxsize=256)
def _zone(name: str | None) -> ZoneInfo | Any:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC  # the importer checks zones; a stray bad one must not stop a send


@lru_cache(maxsize=256)
def _babel_locale(name: str) -> Locale:
    """The Babel locale for a BCP 47 tag, falling back to its language, then ``en``."""
    for candidate in (name, name.replace("-", "_").split("_")[0], DEFAULT_LOCALE):
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    raise AssertionError("Babel always knows 'en'")  # pragma: no cover
