"""The parts of a message on each channel, which are required, and how each is finished.

| channel   | parts (required in bold)                                                  |
| --------- | ------------------------------------------------------------------------- |
| email     | **subject**, preheader, **html**, text (derived from html when missing)   |
| push      | title, **body**, image, link, data (JSON object of strings)               |
| in_app    | title, **body**, cta_label, cta_url, image                                |
| web       | title, **body**, cta_label, cta_url, placement (banner/modal/toast), survey (nps) |
| webhook   | **body** (JSON document)                                                  |

``cta_label`` and ``cta_url`` come as a pair. A rendered message is a plain
dict with exactly the channel's part names; an optional part with no template,
or one that renders empty, is ``None`` (``placement`` defaults to ``banner``).

How the rendered text is finished, per kind:

* ``line`` — subject, titles, labels: runs of spaces and line breaks become
  one space, so nothing can smuggle a header line into an email (no-break
  spaces stay).
* ``text`` — bodies and the email text part: trailing spaces and runs of
  blank lines are tidied, outer whitespace stripped.
* ``html`` — outer whitespace stripped, otherwise as rendered (autoescaped).
* ``url`` — stripped; must be ``scheme:…`` with no spaces; never ``javascript:``.
* ``choice`` — stripped and lower-cased; must be one of the part's choices.
* ``json`` / ``json_strings`` — parsed; the dict holds the parsed value. Insert
  values with ``{{ value | tojson }}`` so quotes in data cannot break it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from narrowcast.render.errors import InvalidPart

Kind = Literal["line", "text", "html", "url", "choice", "json", "json_strings"]


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    default: str | None = None


PARTS: dict[str, tuple[Part, ...]] = {
    "email": (
        Part("subject", "line", required=True),
        Part("preheader", "line"),
        Part("html", "html", required=True),
        Part("text", "text"),
    ),
    "push": (
        Part("title", "line"),
        Part("body", "text", required=True),
        Part("image", "url"),
        Part("link", "url"),
        Part("data", "json_strings"),
    ),
    "in_app": (
        Part("title", "line"),
        Part("body", "text", required=True),
        Part("cta_label", "line"),
        Part("cta_url", "url"),
        Part("image", "url"),
    ),
    "web": (
        Part("title", "line"),
        Part("body", "text", required=True),
        Part("cta_label", "line"),
        Part("cta_url", "url"),
        Part("placement", "choice", choices=("banner", "modal", "toast"), default="banner"),
        Part("survey", "choice", choices=("nps",)),
    ),
    "webhook": (Part("body", "json", required=True),),
}
PAIRS: tuple[tuple[str, str], ...] = (("cta_label", "cta_url"),)
"""Parts that only make sense together: both templates or neither, both rendered or neither."""

# Runs of breaking whitespace (line breaks included); no-break spaces stay, so that
# "1.234,50\u00a0€" keeps its amount and currency together.
# (Only runs of two or more, or a lone break, match: ordinary text has no match to replace.)
_SPACES = re.compile(
    r"[ \t\n\r\f\v\x1c-\x1f\x85\u2028\u2029]{2,}|[\t\n\r\f\v\x1c-\x1f\x85\u2028\u2029]"
)
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")
_LEADING_SPACE = re.compile(r"(?m)^ (?=\S)")
# A line break where one of the three would match (each needs one), bar the text's start.
_UNTIDY = re.compile(r"\n(?:(?<=[ \t]\n)|\n\n| (?=\S))")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


def required_parts(channel: str) -> tuple[str, ...]:
    return tuple(part.name for part in PARTS[channel] if part.required)


def tidy_text(text: str) -> str:
    """Strip line ends, keep at most one blank line in a row, drop stray leading spaces."""
    # Usually there is nothing to tidy: one scan of the text (an email's is about
    # 1 KB) says so, where looking for each pattern would scan it three times.
    if text.startswith(" ") or _UNTIDY.search(text):
        text = _TRAILING.sub("\n", text)
        text = _BLANK_LINES.sub("\n\n", text)
        text = _LEADING_SPACE.sub("", text)
    return text.strip()


def finish(part: Part, rendered: str, template: str) -> Any:
    """The value of ``part`` in the message dict, from its rendered text."""
    kind = part.kind
    if kind == "line":
        if rendered.isprintable() and "  " not in rendered:
            # Nothing for _SPACES to match: every character it replaces but the
            # plain space is unprintable (control characters, line separators).
            value: Any = rendered.strip()
        else:
            value = _SPACES.sub(" ", rendered).strip()
    elif kind == "text":
        value = tidy_text(rendered)
    elif kind == "html":
        value = rendered.strip()
    elif kind == "url":
        value = rendered.strip()
        if value and (not _URL.fullmatch(value) or value.lower().startswith(_UNSAFE_SCHEMES)):
            raise InvalidPart(
                f"{part.name} must be one URL (scheme:…, no spaces), rendered {value!r}",
                template=template,
            )
    elif kind == "choice":
        value = rendered.strip().lower()
        if value and value not in part.choices:
            raise InvalidPart(
                f"{part.name} must be one of {', '.join(part.choices)}, rendered {value!r}",
                template=template,
            )
    else:
        value = _json(part, rendered, template)
    if value == "" or value is None:
        if part.required:
            raise InvalidPart(f"{part.name} is required but rendered empty", template=template)
        return part.default
    return value


def _json(part: Part, rendered: str, template: str) -> Any:
    if not rendered.strip():
        return None
    try:
        value = orjson.loads(rendered)
    except orjson.JSONDecodeError as exc:
        line = rendered.count("\n", 0, exc.pos) + 1
        shown = rendered.splitlines()[line - 1] if rendered.splitlines() else rendered
        raise InvalidPart(
            f"{part.name} did not render to valid JSON: {exc.msg} at line {line} of the output "
            f"({shown.strip()[:120]!r}) — insert values with {{{{ value | tojson }}}}",
            template=template,
        ) from exc
    if part.kind == "json_strings":
        if not isinstance(value, dict):
            raise InvalidPart(
                f"{part.name} must render to a JSON object, got {type(value).__name__}",
                template=template,
            )
        wrong = [key for key, item in value.items() if not isinstance(item, str)]
        if wrong:
            raise InvalidPart(
                f"{part.name} values must be strings (push data is text); not strings: "
                + ", ".join(f"{key}={orjson.dumps(value[key]).decode()}" for key in wrong)
                + " — quote them or use | string | tojson",
                template=template,
            )
    return value
