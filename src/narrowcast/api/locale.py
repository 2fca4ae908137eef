"""Which language a customer-facing page speaks, and its strings.

The pages people reach from a message (unsubscribe, preference centre, a broken
link) speak the customer's language: the ``locale`` the shop sent for them
(BCP 47, ``es-ES`` → ``es``), else the browser's ``Accept-Language``, else
English. The strings live in ``locales/<language>.json``, one flat object per
language with the same keys; ``{name}``-style fields are filled with
``str.format`` and the page escapes the result.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "es", "pl")
DEFAULT = "en"


@cache
def strings(language: str) -> dict[str, str]:
    """The strings of ``language`` (one of ``LANGUAGES``)."""
    if language not in LANGUAGES:
        raise ValueError(f"no strings for language {language!r}; have {', '.join(LANGUAGES)}")
    text = (
        resources.files("narrowcast.api")
        .joinpath("locales", f"{language}.json")
        .read_text(encoding="utf-8")
    )
    loaded: dict[str, str] = json.loads(text)
    return loaded


def choose(customer_locale: str | None, accept_language: str | None) -> str:
    """The customer's language if we speak it, else the browser's best one we speak, else en."""
    language = _primary(customer_locale)
    if language in LANGUAGES:
        return language
    for candidate in _accepted(accept_language or ""):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT


def _primary(tag: str | None) -> str:
    return (tag or "").strip().replace("_", "-").split("-")[0].lower()


def _accepted(header: str) -> list[str]:
    """Languages of an ``Accept-Language`` header, best first (RFC 9110 §12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = _primary(tag)
        if language and language != "*" and quality > 0:
            ranked.append((-quality, position, language))
    return [language for _, _, language in sorted(ranked)]
