"""An email's html and the text derived from it, rendered together in one pass.

The derived text template (``text.py``) keeps every Jinja construct of the
html verbatim, so rendering it after the html evaluates every printed
expression a second time: a third of an email's template time. Here the two
templates are parsed and zipped into one: the html's control flow, with each
stretch of html output followed by the text the derived template prints at
that point. A value the html prints and the text prints again at the same
point is computed once (``codegen.KEEP`` / ``codegen.REF``); the text goes to
``context.nc_text`` as it is made (``codegen.TEXT``).

It is only an optimisation, so it only applies where it gives exactly what
the two templates give, and ``build`` returns None otherwise:

* only ``if``, ``for`` (not recursive), ``set`` and ``with`` statements, in
  both templates in the same order (no macros, includes, imports, blocks,
  ``{% set %}…{% endset %}`` or ``{% filter %}`` bodies, whose text version is
  a different value, nor autoescape blocks);
* every expression the text prints is a constant or one the html prints at
  the same point between two statements (the k-th of equal expressions in the
  text is the k-th in the html, as when the text is rendered afterwards);
* nothing the text prints depends on autoescaping (``join``, ``replace``,
  ``urlize``, ``xmlattr``, filters that call other filters by name). A shared
  ``~`` joins plain strings only; on anything else the render raises
  ``Diverged`` and the message is rendered the two-pass way.

Errors name the html file and line, as the html pass did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.nodes import EvalContext, Impossible
from jinja2.utils import _PassArg

from narrowcast.render.codegen import KEEP, REF, SHARED, TEXT
from narrowcast.render.filters import FILTERS

_STATEMENTS = (nodes.If, nodes.For, nodes.Assign, nodes.With)
# Filters that take the context or eval context but print the same with or without
# autoescaping: narrowcast's own (they read the customer's locale), and Jinja's
# that take the eval context only to tell async from sync.
_NEUTRAL = frozenset(FILTERS) | {"tojson", "list", "slice", "random"}
_SLOT = re.compile(r"\bt_nc\d+\b")


class _NotPaired(Exception):
    """The two templates cannot be zipped; render them one after the other."""


def build(html: jinja2.Environment, text: jinja2.Environment, name: str) -> jinja2.Template | None:
    """The one-pass template for the html template ``name``, or None (see above)."""
    assert html.loader is not None and text.loader is not None
    try:
        source, filename, uptodate = html.loader.get_source(html, name)
        tree = html.parse(source, name, filename)
        text_tree = text.parse(text.loader.get_source(text, name)[0], name, filename)
        _check_statements(tree)
        tree.body = _Zipper(text).body(tree.body, text_tree.body)
    except (_NotPaired, jinja2.TemplateError):  # the two-pass templates report errors
        return None
    tree.set_environment(html)
    code = html.compile(tree, name, filename, raw=True)
    assert isinstance(code, str)
    kept = set(re.findall(r"\b(t_nc\d+) :=", code))
    if not set(_SLOT.findall(code)) <= kept:  # pragma: no cover  (a folded kept value)
        return None
    compiled = compile(code, filename or "<template>", "exec")
    return html.template_class.from_code(html, compiled, html.make_globals(None), uptodate)


def _check_statements(tree: nodes.Template) -> None:
    for node in _statements(tree.body):
        if not isinstance(node, _STATEMENTS) or (isinstance(node, nodes.For) and node.recursive):
            raise _NotPaired


def _statements(body: Iterable[nodes.Node]) -> Iterator[nodes.Node]:
    for node in body:
        if isinstance(node, nodes.Output):
            continue
        yield node
        for field in ("body", "else_", "elif_"):
            yield from _statements(getattr(node, field, None) or ())


class _Zipper:
    """Zips an html body with its derived text body, statement by statement."""

    def __init__(self, text: jinja2.Environment) -> None:
        self.text = text
        self.eval_ctx = EvalContext(text)
        self.slots = 0

    def body(self, html: list[nodes.Node], text: list[nodes.Node]) -> list[nodes.Node]:
        html_runs, html_statements = _split(html)
        text_runs, text_statements = _split(text)
        if len(html_statements) != len(text_statements):
            raise _NotPaired
        zipped: list[nodes.Node] = []
        for n, (html_run, text_run) in enumerate(zip(html_runs, text_runs, strict=True)):
            self._share(html_run, text_run)
            if html_run:
                zipped.append(nodes.Output(html_run, lineno=html_run[0].lineno))
            if text_run:
                output = nodes.Output(text_run, lineno=text_run[0].lineno)
                setattr(output, TEXT, True)
                zipped.append(output)
            if n < len(html_statements):
                zipped.append(self.statement(html_statements[n], text_statements[n]))
        return zipped

    def statement(self, html: nodes.Node, text: nodes.Node) -> nodes.Node:
        if type(html) is not type(text):
            raise _NotPaired
        if isinstance(html, nodes.Assign):
            _same(html, text, "target", "node")
        elif isinstance(html, nodes.If):
            assert isinstance(text, nodes.If)
            _same(html, text, "test")
            if len(html.elif_) != len(text.elif_):
                raise _NotPaired
            html.body = self.body(html.body, text.body)
            for html_elif, text_elif in zip(html.elif_, text.elif_, strict=True):
                self.statement(html_elif, text_elif)
            html.else_ = self.body(html.else_, text.else_)
        elif isinstance(html, nodes.For):
            assert isinstance(text, nodes.For)
            _same(html, text, "target", "iter", "test", "recursive")
            html.body = self.body(html.body, text.body)
            html.else_ = self.body(html.else_, text.else_)
        elif isinstance(html, nodes.With):
            assert isinstance(text, nodes.With)
            _same(html, text, "targets", "values")
            html.body = self.body(html.body, text.body)
        else:  # pragma: no cover  (_check_statements let only these through)
            raise _NotPaired
        return html

    def _share(self, html: list[nodes.Expr], text: list[nodes.Expr]) -> None:
        """Mark each value the text prints as the html's, or leave it a constant."""
        taken: set[int] = set()
        for child in text:
            if isinstance(child, nodes.TemplateData):
                continue
            if not self._neutral(child):
                raise _NotPaired
            try:
                child.as_const(self.eval_ctx)
                continue  # folded when compiled
            except Impossible:
                pass
            except Exception:  # noqa: BLE001  (raised when rendered, as in the text template)
                raise _NotPaired from None
            twin = next(
                (n for n, node in enumerate(html) if n not in taken and node == child), None
            )
            if twin is None:
                raise _NotPaired
            taken.add(twin)
            self.slots += 1
            slot = f"t_nc{self.slots}"
            setattr(html[twin], KEEP, slot)
            setattr(child, REF, slot)
            for concat in html[twin].find_all(nodes.Concat):
                setattr(concat, SHARED, True)

    def _neutral(self, expression: nodes.Expr) -> bool:
        """True when ``expression`` has the same value with autoescaping on or off."""
        for node in _walk(expression):
            if isinstance(node, nodes.MarkSafeIfAutoescape):
                return False
            if isinstance(node, nodes.Filter | nodes.Test) and not self._neutral_helper(node):
                return False
        return True

    def _neutral_helper(self, node: nodes.Filter | nodes.Test) -> bool:
        helpers = self.text.filters if isinstance(node, nodes.Filter) else self.text.tests
        helper: Any = helpers.get(node.name)
        if helper is None:
            return False
        passed = _PassArg.from_obj(helper)
        return passed not in (_PassArg.context, _PassArg.eval_context) or node.name in _NEUTRAL


def _split(body: list[nodes.Node]) -> tuple[list[list[nodes.Expr]], list[nodes.Node]]:
    """What is printed before, between and after the statements of ``body``, and them."""
    runs: list[list[nodes.Expr]] = [[]]
    statements: list[nodes.Node] = []
    for node in body:
        if isinstance(node, nodes.Output):
            runs[-1].extend(node.nodes)
        else:
            statements.append(node)
            runs.append([])
    return runs, statements


def _same(html: nodes.Node, text: nodes.Node, *fields: str) -> None:
    if any(getattr(html, field) != getattr(text, field) for field in fields):
        raise _NotPaired


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)
