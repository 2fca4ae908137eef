"""The Python that templates compile to: Jinja's own, with a cheaper way to print a value.

Jinja writes every ``{{ value }}`` of an html template as
``escape(environment.finalize(value))`` and of any other template as
``str(environment.finalize(value))``. For a plain string, markupsafe's
``escape`` is cheap but the ``Markup`` it returns is not: ``Markup.__new__``
asks the string for ``__html__`` (an ``AttributeError`` raised and caught
every time), ten times the cost of the escaping itself, for each of the dozen
values of an email. ``CodeGenerator`` writes one call instead, to
``html_output`` or ``text_output``, which return exactly the characters the
two calls did: the html output is the same text as ``escape``'s, as a plain
``str`` (every output is joined into one plain string anyway; macros and
``{% set %}`` blocks still wrap what they collect in ``Markup``).

Anything but ``str`` and ``None`` — numbers, ``Markup``, objects with
``__html__``, undefined values (which raise) — goes through ``escape`` and
``str`` as before. ``{% autoescape %}`` blocks whose setting is only known at
run time keep Jinja's code.

``a ~ b`` in an html template is Jinja's ``markup_join``, which asks each
piece for ``__html__`` the same costly way; ``html_join`` joins plain
strings directly and hands anything else to ``markup_join``.

Three markers, set as attributes on Jinja's own nodes by ``onepass.py``
(Jinja allows no new node types), make the one template that renders an
email's html and its derived text together:

* ``KEEP`` on an expression printed in the html: its value is also kept in a
  local, ``(t_nc3 := …)``;
* ``REF`` on an expression printed in the text: the local, not the expression;
* ``TEXT`` on an ``Output`` node: printed without escaping onto
  ``context.nc_text`` instead of being yielded as html.

A ``~`` inside a kept expression joins through ``shared_join``, which gives
the html and the text the same value or raises ``Diverged`` (then the
message is rendered the two-pass way).
"""

from __future__ import annotations

from typing import Any

import markupsafe
from jinja2 import nodes
from jinja2.compiler import CodeGenerator as JinjaCodeGenerator
from jinja2.compiler import Frame, optimizeconst
from jinja2.nodes import EvalContext
from jinja2.runtime import markup_join
from markupsafe import escape

KEEP = "nc_keep"
REF = "nc_ref"
TEXT = "nc_text"
SHARED = "nc_shared"
"""Marker attributes of the one-pass template's nodes (see the module docstring)."""


def _native_escape(text: str) -> str:  # pragma: no cover  (markupsafe without speedups)
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


# markupsafe's own escaping of a str (C when its speedups are built), without the Markup.
_escape_str = getattr(markupsafe, "_escape_inner", _native_escape)


def finalize(value: Any) -> Any:
    """What every environment prints for a value: ``None`` prints as nothing."""
    return "" if value is None else value


def html_output(value: Any) -> str:
    """``escape(finalize(value))`` as a plain string."""
    if type(value) is str:
        return _escape_str(value)
    if value is None:
        return ""
    return escape(value)


def text_output(value: Any) -> str:
    """``str(finalize(value))``."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return str(value)


def html_join(pieces: tuple[Any, ...]) -> str:
    """``markup_join(pieces)``: ``~`` in an html template."""
    for piece in pieces:
        if type(piece) is not str:
            return markup_join(pieces)
    return "".join(pieces)


class Diverged(Exception):
    """A kept value would differ between the html and its text; render them apart."""


def shared_join(pieces: tuple[Any, ...]) -> str:
    """``~`` in a value the html and its derived text share.

    Plain strings join the same way in both (``html_join`` and Jinja's
    ``str_join``); anything else would be escaped in the html only.
    """
    for piece in pieces:
        if type(piece) is not str:
            raise Diverged
    return "".join(pieces)


# Names the generated module imports these under (template variables are all l_*).
_HTML, _TEXT, _JOIN = "nc_html_output", "nc_text_output", "nc_html_join"
_SHARED_JOIN = "nc_shared_join"


class CodeGenerator(JinjaCodeGenerator):
    """Jinja's code generator, printing values through ``html_output`` / ``text_output``.

    Only for environments whose ``finalize`` is this module's ``finalize``;
    any other keeps Jinja's output code.
    """

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        self.writeline(
            f"from {__name__} import html_output as {_HTML}, text_output as {_TEXT}, "
            f"html_join as {_JOIN}, shared_join as {_SHARED_JOIN}"
        )
        super().visit_Template(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        marks = node.__dict__
        ref = marks.get(REF)
        if ref is not None:
            self.write(ref)
            return None
        keep = marks.get(KEEP)
        if keep is None:
            return super().visit(node, *args, **kwargs)
        self.write(f"({keep} := ")
        result = super().visit(node, *args, **kwargs)
        self.write(")")
        return result

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        if not node.__dict__.get(TEXT):
            super().visit_Output(node, frame)
            return
        text = frame.copy()
        text.buffer = "context.nc_text"
        text.eval_ctx = EvalContext(self.environment, self.name)
        text.eval_ctx.autoescape = False
        super().visit_Output(node, text)

    def _ours(self, frame: Frame) -> bool:
        return self.environment.finalize is finalize and not frame.eval_ctx.volatile

    def _output_child_pre(
        self, node: nodes.Expr, frame: Frame, finalize: JinjaCodeGenerator._FinalizeInfo
    ) -> None:
        if self._ours(frame):
            self.write(f"{_HTML if frame.eval_ctx.autoescape else _TEXT}(")
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(
        self, node: nodes.Expr, frame: Frame, finalize: JinjaCodeGenerator._FinalizeInfo
    ) -> None:
        if self._ours(frame):
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)
            return
        self.write(f"{_SHARED_JOIN if node.__dict__.get(SHARED) else _JOIN}((")
        for piece in node.nodes:
            self.visit(piece, frame)
            self.write(", ")
        self.write("))")
