"""Which template file renders which part: the naming convention and locale fallback.

    templates/<campaign>/<channel>.<part>[.<locale>].j2
    templates/<campaign>/<variant>/<channel>.<part>[.<locale>].j2    (A/B variant)

For a customer whose locale is ``es-ES`` the names tried for the email
subject of campaign ``cart_abandoner`` in variant ``b`` are, in order::

    cart_abandoner/b/email.subject.es-ES.j2
    cart_abandoner/b/email.subject.es.j2
    cart_abandoner/b/email.subject.j2
    cart_abandoner/email.subject.es-ES.j2
    cart_abandoner/email.subject.es.j2
    cart_abandoner/email.subject.j2

A variant folder overrides part by part, so it should carry every
translation of the parts it overrides. A campaign file may name a template
per part explicitly (relative to ``templates/``); the locale goes before its
last suffix: ``shared/subject.j2`` → ``shared/subject.es-ES.j2``,
``shared/subject.es.j2``, ``shared/subject.j2``.
"""

from __future__ import annotations

import re
from functools import lru_cache

CHANNELS: tuple[str, ...] = ("email", "push", "in_app", "web", "webhook")

_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


@lru_cache(maxsize=1024)
def normalise_locale(locale: str | None) -> str | None:
    """``es_es`` → ``es-ES``, ``zh_hant_tw`` → ``zh-Hant-TW``; empty or malformed → ``None``."""
    if not locale or not _LOCALE.fullmatch(locale):
        return None
    language, *rest = re.split(r"[-_]", locale)
    tags = [language.lower()]
    for tag in rest:
        if len(tag) == 4 and tag.isalpha():
            tags.append(tag.title())
        elif len(tag) in (2, 3) and (tag.isalpha() or tag.isdigit()):
            tags.append(tag.upper())
        else:
            tags.append(tag.lower())
    return "-".join(tags)


def locale_chain(locale: str | None) -> tuple[str | None, ...]:
    """``es-ES`` → ``("es-ES", "es", None)``: most specific first, ``None`` = no locale."""
    normal = normalise_locale(locale)
    if normal is None:
        return (None,)
    tags = normal.split("-")
    return (*("-".join(tags[:n]) for n in range(len(tags), 0, -1)), None)


def conventional_names(
    campaign: str, channel: str, part: str, *, variant: str | None, locale: str | None
) -> list[str]:
    """Every name the convention allows for one part, most specific first."""
    folders = [f"{campaign}/{variant}/", f"{campaign}/"] if variant else [f"{campaign}/"]
    chain = locale_chain(locale)
    return [
        f"{folder}{channel}.{part}{'.' + tag if tag else ''}.j2"
        for folder in folders
        for tag in chain
    ]


def explicit_names(path: str, *, locale: str | None) -> list[str]:
    """A campaign's explicit template path with the customer's locale fallbacks."""
    head, slash, last = path.rpartition("/")
    stem, dot, suffix = last.rpartition(".")
    if not dot or not stem:
        stem, suffix = last, ""
    prefix = head + slash
    return [
        f"{prefix}{stem}{'.' + tag if tag else ''}{'.' + suffix if suffix else ''}"
        for tag in locale_chain(locale)
    ]


def folder_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot be a campaign or variant folder, or ``None`` when it can."""
    if _FOLDER.fullmatch(name) and ".." not in name:
        return None
    return (
        f"{kind} name {name!r} cannot be a template folder: use letters, digits, '_', '-' "
        "and '.', starting with a letter or digit"
    )


def path_problem(path: str) -> str | None:
    """Why an explicit template path is unusable, or ``None`` when it is fine."""
    if not path or path.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", path):
        return f"template path {path!r} must be relative to the templates folder"
    if any(piece in ("", ".", "..") for piece in path.replace("\\", "/").split("/")):
        return f"template path {path!r} cannot contain '..', '.' or empty folders"
    return None
