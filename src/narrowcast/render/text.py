"""The plain-text part of an email, derived from its html template once, at compile time.

Rather than turning every rendered html message back into text (slow: one
HTML parse per message), the html *template source* is turned into a
plain-text *template source*, compiled once, and rendered per message like
any other template — or, where ``onepass.py`` can zip the two, together with
the html in one pass. Jinja constructs are cut out of the source first and put
back unchanged, so the text part shows exactly the values the html shows —
without html escaping.

What the html becomes:

* headings, paragraphs, lists, tables, quotes: one block per line, a blank
  line between paragraphs; list items start with ``- `` (``1. `` in ``<ol>``);
* ``<a href="U">L</a>`` becomes ``L (U)`` — just ``U`` when the label is the
  URL or empty, just ``L`` for ``#`` anchors;
* ``<br>`` is a line break, ``<hr>`` a line of dashes;
* no tags; ``<head>``, ``<style>``, ``<script>``, ``<title>`` and elements
  hidden with ``display:none`` (such as a preheader span) are dropped;
  ``{% … %}`` statements inside them are kept so blocks still balance.

Line numbers are kept: newlines of the text are written as ``{{ "\\n" }}``
(folded into constants by Jinja's compiler, so free at render time) and
every construct is padded down to its line in the html file with an empty
``{# #}`` comment, so an error in the derived text names the html line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Literal

from jinja2 import BaseLoader, Environment

from narrowcast.render.errors import TemplateSyntax

# Placeholders for Jinja constructs: private-use characters no template has.
_OPEN, _CLOSE = "\U000f0000", "\U000f0001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_BLOCKS = frozenset(
    "p h1 h2 h3 h4 h5 h6 ul ol table blockquote pre hr dl".split()
)  # a blank line before and after
_LINES = frozenset(
    "div li tr section article header footer nav main aside center dt dd address figure "
    "figcaption form caption tbody thead tfoot body html".split()
)  # a line break before and after
_HIDDEN = frozenset("head style script title template noscript".split())
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)

Piece = tuple[Literal["text", "code", "break"], str | int]
"""("text", literal), ("code", construct index) or ("break", 1 | 2 newlines)."""


class Construct:
    """One ``{{ … }}`` or ``{% … %}`` of the source, verbatim, with its line."""

    __slots__ = ("source", "line", "statement", "closes")

    def __init__(self, source: str, line: int, statement: bool, keyword: str = "") -> None:
        self.source = source
        self.line = line
        self.statement = statement
        self.closes = keyword.startswith("end") or keyword in ("else", "elif")
        """``{% endfor %}``, ``{% else %}``…: ends or continues a block."""


def derive_text_source(
    source: str, environment: Environment, name: str | None = None, shown: str | None = None
) -> str:
    """The plain-text template source derived from an html template source.

    ``name`` is the template name (for Jinja's lexer errors), ``shown`` the
    file as error messages show it.
    """
    if _OPEN in source or _CLOSE in source:
        raise TemplateSyntax(
            "the html uses private-use characters U+F0000/U+F0001, so no text can be "
            "derived from it — write a text template next to it",
            template=shown or name,
        )
    marked, constructs = _cut_constructs(source, environment, name)
    parser = _TextParser(constructs)
    parser.feed(marked)
    parser.close()
    return _compose(parser.finish(), constructs)


class DerivedTextLoader(BaseLoader):
    """Loads any template through ``loader`` and hands out its derived text instead.

    Used by the environment that renders derived text parts, so templates an
    html template extends or includes are derived too.
    """

    def __init__(self, loader: BaseLoader, show: Callable[[str], str] = str) -> None:
        self.loader = loader
        self.show = show

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.loader.get_source(environment, template)
        derived = derive_text_source(source, environment, template, self.show(template))
        return derived, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.loader.list_templates()


# -- cutting Jinja out ------------------------------------------------------------


def _cut_constructs(
    source: str, environment: Environment, name: str | None
) -> tuple[str, list[Construct]]:
    """The source with every construct replaced by a placeholder, and the constructs."""
    marked: list[str] = []
    constructs: list[Construct] = []
    current: list[str] = []
    start_line = 0
    statement = False
    keyword = ""
    in_comment = False
    for line, token, value in environment.lex(source, name):
        if in_comment:
            in_comment = token != "comment_end"
        elif token == "comment_begin":
            in_comment = True
        elif token in ("variable_begin", "block_begin"):
            current, start_line, statement = [value], line, token == "block_begin"
            keyword = ""
        elif token in ("variable_end", "block_end"):
            current.append(value)
            marked.append(f"{_OPEN}{len(constructs)}{_CLOSE}")
            constructs.append(Construct("".join(current), start_line, statement, keyword))
            current = []
        elif current:
            if token == "name" and not keyword:
                keyword = value
            current.append(value)
        elif token == "data":
            marked.append(value)
        # raw_begin / raw_end: the raw content arrives as data and is output verbatim.
    return "".join(marked), constructs


# -- html to pieces ---------------------------------------------------------------


class _TextParser(HTMLParser):
    def __init__(self, constructs: list[Construct]) -> None:
        super().__init__(convert_charrefs=True)
        self.constructs = constructs
        self.pieces: list[Piece] = []
        self.hidden: list[str] = []  # tags of the hidden element we are inside, nested
        self.links: list[tuple[list[Piece], list[Piece]]] = []  # (label, href) being built
        self.lists: list[list[int]] = []  # per open list: [counter] or [-1] for <ul>
        self.pre = 0

    # where text goes: the innermost link label, else the document
    @property
    def out(self) -> list[Piece]:
        return self.links[-1][0] if self.links else self.pieces

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            self._keep_statements(attrs)
            if tag == self.hidden[0] and tag not in _VOID:
                self.hidden.append(tag)
            return
        style = next((value or "" for key, value in attrs if key == "style"), "")
        if tag in _HIDDEN or _DISPLAY_NONE.search(style) or any(k == "hidden" for k, _ in attrs):
            self._keep_statements(attrs)
            if tag not in _VOID:
                self.hidden.append(tag)
            return
        self._keep_statements([(k, v) for k, v in attrs if k != "href" or tag != "a"])
        if tag == "a":
            href = next((value or "" for key, value in attrs if key == "href"), "")
            self.links.append(([], self._pieces_of(href, keep_expressions=True)))
        elif tag == "br":
            self.out.append(("break", 0))
        elif tag == "hr":
            self.out.extend([("break", 2), ("text", "----"), ("break", 2)])
        elif tag == "img":
            alt = next((value or "" for key, value in attrs if key == "alt"), "")
            if self.links and alt:
                self.out.extend(self._pieces_of(alt, keep_expressions=True))
        elif tag in ("ul", "ol"):
            self.out.append(("break", 2 if not self.lists else 1))
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self.out.append(("break", 1))
            indent = "  " * max(len(self.lists) - 1, 0)
            counter = self.lists[-1] if self.lists else [-1]
            if counter[0] >= 0:
                counter[0] += 1
                self.out.append(("text", f"{indent}{counter[0]}. "))
            else:
                self.out.append(("text", f"{indent}- "))
        elif tag in ("td", "th"):
            self.out.append(("text", " "))
        elif tag in _BLOCKS:
            self.out.append(("break", 2))
            if tag == "pre":
                self.pre += 1
        elif tag in _LINES:
            self.out.append(("break", 1))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.pop()
            return
        if tag == "a" and self.links:
            label, href = self.links.pop()
            self.out.extend(_link(label, href))
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.out.append(("break", 2 if not self.lists else 1))
        elif tag in ("td", "th"):
            self.out.append(("text", " "))
        elif tag in _BLOCKS:
            self.out.append(("break", 2))
            if tag == "pre":
                self.pre = max(self.pre - 1, 0)
        elif tag in _LINES:
            self.out.append(("break", 1))

    def handle_data(self, data: str) -> None:
        if self.hidden:
            self._keep_statements([("", data)])
            return
        for piece in self._pieces_of(data, keep_expressions=True):
            if piece[0] == "text" and self.pre:  # keep the lines of <pre>, not its spaces
                for n, line in enumerate(str(piece[1]).split("\n")):
                    if n:
                        self.out.append(("break", 0))
                    self.out.append(("text", line))
            else:
                self.out.append(piece)

    def handle_comment(self, data: str) -> None:
        self._keep_statements([("", data)])  # <!--[if mso]>…<![endif]--> may hold {% if %}

    def unknown_decl(self, data: str) -> None:
        self._keep_statements([("", data)])

    def handle_decl(self, decl: str) -> None:
        self._keep_statements([("", decl)])

    def handle_pi(self, data: str) -> None:
        self._keep_statements([("", data)])

    def finish(self) -> list[Piece]:
        while self.links:  # an <a> never closed
            label, href = self.links.pop()
            self.out.extend(_link(label, href))
        return self.pieces

    def _pieces_of(self, text: str, *, keep_expressions: bool) -> list[Piece]:
        pieces: list[Piece] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > position:
                pieces.append(("text", text[position : match.start()]))
            index = int(match.group(1))
            if keep_expressions or self.constructs[index].statement:
                pieces.append(("code", index))
            position = match.end()
        if position < len(text):
            pieces.append(("text", text[position:]))
        return pieces

    def _keep_statements(self, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            for piece in self._pieces_of(f"{key}{value or ''}", keep_expressions=False):
                if piece[0] == "code":
                    self.out.append(piece)


def _link(label: list[Piece], href: list[Piece]) -> Iterator[Piece]:
    """``label (href)``, or the href alone, or the label alone (anchors, no href)."""
    literal_href = "".join(str(v) for k, v in href if k == "text").strip()
    has_code = any(k == "code" for k, _ in href)
    label_text = "".join(str(v) for k, v in label if k == "text").strip()
    label_has_code = any(k == "code" for k, _ in label)
    if not has_code and (not literal_href or literal_href.startswith("#")):
        yield from label
        return
    if not label_has_code and (not label_text or label_text == literal_href and not has_code):
        yield from href
        return
    yield from label
    yield ("text", " (")
    for kind, value in href:
        yield (kind, str(value).strip()) if kind == "text" else (kind, value)
    yield ("text", ")")


# -- pieces to a template ---------------------------------------------------------


def _compose(pieces: list[Piece], constructs: list[Construct]) -> str:
    out: list[str] = []
    line = 1  # the line the next character of ``out`` is on
    newlines = 0  # pending newlines (a break not yet written)
    space = False  # pending space between words
    at_line_start = True

    def write(text: str) -> None:
        nonlocal line
        out.append(text)
        line += text.count("\n")

    def flush_breaks() -> None:
        nonlocal newlines, space, at_line_start
        # Written even before any text: a {% for %} body repeats its leading break.
        if newlines:
            write("{{ " + json.dumps("\n" * newlines) + " }}")
            at_line_start = True
            space = False
        newlines = 0

    for kind, value in pieces:
        if kind == "break":
            count = int(value)
            newlines = min(newlines + 1, 2) if count == 0 else max(newlines, count)
            continue
        if kind == "code":
            construct = constructs[int(value)]
            # Breaks go before a statement that opens a block (a loop body must not
            # repeat the break that opened its list) and after one that closes it
            # (nor the break that ends each item). Extra newlines are tidied at
            # render time.
            if not construct.closes:
                flush_breaks()
            if not construct.statement:
                if space and not at_line_start:
                    write(" ")
                space = False
                at_line_start = False
            if line < construct.line:
                write("{#" + "\n" * (construct.line - line) + "#}")
            write(construct.source)
            continue
        text = str(value)
        words = text.split()
        if not words:
            space = space or bool(text)
            continue
        flush_breaks()
        if (space or text[0].isspace()) and not at_line_start:
            write(" ")
        write(json_if_needed(" ".join(words)))
        at_line_start = False
        space = text[-1].isspace()
    return "".join(out)


def json_if_needed(text: str) -> str:
    """``text`` as template source: literal, or a string constant when it holds ``{``."""
    if "{" in text or "}" in text or "#" in text:
        return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"
    return text
