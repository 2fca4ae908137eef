"""The Jinja environments templates run in, and Jinja's errors turned into ours.

Three ``ImmutableSandboxedEnvironment`` s share one configuration:

* ``html`` — autoescaping on; renders an email's html part (and whatever it
  includes or extends);
* ``plain`` — autoescaping off; every other part;
* ``text`` — autoescaping off; loads each template through
  ``DerivedTextLoader``, so asking it for an html template gives the plain
  text derived from it (see ``text.py``).

All of them: ``StrictUndefined`` (a missing name is an error, never an empty
string), ``None`` prints as nothing, ``trim_blocks`` and ``lstrip_blocks``
(block tags on their own line leave no blank line), templates compiled once
and never reloaded (restart the process, or ``Templates.reload()``).

The sandbox refuses underscore attributes, Python internals, methods that
change data (``dict.pop``, ``list.append``…), ``range`` over 100,000 items,
exponents over 100 and ``*`` building strings or lists past 100,000 items.
Attribute lookup on a plain dict tries the key first, so a customer
attribute called ``items`` or ``values`` reads the attribute, not the method.
"""

from __future__ import annotations

import operator
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MethodType
from typing import Any, NoReturn

import jinja2
from jinja2 import FileSystemLoader, StrictUndefined, Undefined
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from narrowcast.errors import did_you_mean
from narrowcast.render.codegen import CodeGenerator, Diverged, finalize
from narrowcast.render.errors import (
    HelperError,
    RenderError,
    SandboxViolation,
    TemplateFailed,
    TemplateNotFound,
    TemplateSyntax,
    UndefinedVariable,
)
from narrowcast.render.filters import FILTERS
from narrowcast.render.links import MessageLinks
from narrowcast.render.text import DerivedTextLoader

MAX_SEQUENCE = 100_000
MAX_EXPONENT = 100
_LINKS = frozenset({"unsubscribe", "preferences", "track"})
_TRACK = MessageLinks.track


class UndefinedUse(UndefinedError):
    """``UndefinedError`` that remembers what was undefined, for "did you mean"."""

    def __init__(self, message: str, obj: Any, name: str | None) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class Strict(StrictUndefined):
    """``StrictUndefined`` whose error carries the object and the missing name."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is not UndefinedError:  # the sandbox refused an attribute
            raise self._undefined_exception(self._undefined_message)
        raise UndefinedUse(self._undefined_message, self._undefined_obj, self._undefined_name)


# StrictUndefined binds Undefined's method object to every dunder it fails on, so a
# subclass must rebind them to its own.
for _name in dir(StrictUndefined):
    if getattr(StrictUndefined, _name, None) is Undefined._fail_with_undefined_error:
        setattr(Strict, _name, Strict._fail_with_undefined_error)


class PartContext(Context):
    """Jinja's ``Context``, set up in fewer steps: every part of every message makes one.

    Sets what ``Context.__init__`` sets (a test compares the two), without
    calling ``EvalContext.__init__`` or copying an empty blocks mapping.
    """

    nc_text: list[str]
    """Where a one-pass template (``onepass.py``) writes the text part."""

    def __init__(
        self,
        environment: jinja2.Environment,
        parent: dict[str, Any],
        name: str | None,
        blocks: dict[str, Callable[[Context], Any]],
        globals: Mapping[str, Any] | None = None,
    ) -> None:
        self.parent = parent
        self.vars = {}
        self.environment = environment
        eval_ctx = self.eval_ctx = _new_eval_context(EvalContext)
        eval_ctx.environment = environment
        autoescape = environment.autoescape
        eval_ctx.autoescape = autoescape(name) if callable(autoescape) else autoescape
        eval_ctx.volatile = False
        self.exported_vars = set()
        self.name = name
        self.globals_keys = set() if globals is None else set(globals)
        self.blocks = {key: [block] for key, block in blocks.items()} if blocks else {}

    def resolve_or_missing(self, key: str) -> Any:
        # Every name a template uses is looked up here once per render.
        vars_ = self.vars
        if vars_ and key in vars_:
            return vars_[key]
        return self.parent.get(key, missing)


_new_eval_context = object.__new__


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with narrowcast's limits and dict-key-first attribute lookup."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = CodeGenerator
    context_class = PartContext

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        elif kind is MessageLinks and attribute in _LINKS:
            return getattr(obj, attribute)  # known safe: skip the sandbox's inspection
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # track(url) is called for every link of every message; it is ours and safe.
        if type(__obj) is MethodType and __obj.__func__ is _TRACK:
            if kwargs:  # in a loop or block Jinja passes its variables, as Context.call drops
                kwargs.pop("_loop_vars", None)
                kwargs.pop("_block_vars", None)
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
        if operator_ == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > MAX_SEQUENCE
                ):
                    raise SecurityError(
                        f"'*' would build {len(sequence) * count:,} items; "
                        f"the limit is {MAX_SEQUENCE:,}"
                    )
        return {"*": operator.mul, "**": operator.pow}[operator_](left, right)


class _Files(FileSystemLoader):
    """``FileSystemLoader`` whose unreadable files raise our ``TemplateNotFound``."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root), encoding="utf-8", followlinks=False)
        self.locator = Locator(root)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            raise TemplateNotFound(
                f"cannot read the template: it is not UTF-8 text "
                f"(byte {byte:#04x} at offset {exc.start})",
                template=self.locator.show(template),
            ) from exc
        except OSError as exc:
            raise TemplateNotFound(
                f"cannot read the template: {exc.strerror or exc}",
                template=self.locator.show(template),
            ) from exc


def make_environments(root: Path) -> tuple[Sandbox, Sandbox, Sandbox]:
    """The ``html``, ``plain`` and ``text`` environments over one templates folder."""
    files = _Files(root)

    def make(autoescape: bool, loader: jinja2.BaseLoader) -> Sandbox:
        env = Sandbox(
            loader=loader,
            autoescape=autoescape,
            undefined=Strict,
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            cache_size=-1,
        )
        env.filters.update(FILTERS)
        return env

    return (
        make(True, files),
        make(False, files),
        make(False, DerivedTextLoader(files, files.locator.show)),
    )


class Locator:
    """Names template files the way a marketer sees them: ``templates/x/email.html.j2``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = str(root) + "/"
        try:
            shown = root.relative_to(Path.cwd())
        except ValueError:
            shown = root
        self.shown = str(shown)

    def show(self, name: str) -> str:
        """The display path of the template ``name`` (relative to the root)."""
        return f"{self.shown}/{name}"

    def show_file(self, filename: str) -> str | None:
        if filename.startswith(self._prefix):
            return self.show(filename[len(self._prefix) :])
        return None

    def where(self, exc: BaseException) -> tuple[str | None, int | None]:
        """The innermost template file and line in ``exc``'s (Jinja-rewritten) traceback."""
        found: tuple[str | None, int | None] = (None, None)
        for frame, line in traceback.walk_tb(exc.__traceback__):
            shown = self.show_file(frame.f_code.co_filename)
            if shown is not None:
                found = (shown, line)
        return found

    def source_line(self, shown: str | None, line: int | None) -> str | None:
        if shown is None or line is None or not shown.startswith(self.shown + "/"):
            return None
        try:
            lines = (self.root / shown[len(self.shown) + 1 :]).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        return lines[line - 1].strip() if 0 < line <= len(lines) else None


def syntax_error(
    exc: jinja2.TemplateSyntaxError, locator: Locator, name: str, *, derived: bool = False
) -> TemplateSyntax:
    shown = (locator.show_file(exc.filename) if exc.filename else None) or locator.show(name)
    if derived:
        return TemplateSyntax(
            f"the plain text derived from this html does not compile ({exc.message}) — "
            "write a text template next to it",
            template=shown,
            line=exc.lineno,
        )
    return TemplateSyntax(exc.message or "syntax error", template=shown, line=exc.lineno)


def runtime_error(
    exc: Exception,
    locator: Locator,
    *,
    template: str,
    context: Mapping[str, Any],
    derived: bool = False,
) -> RenderError:
    """Our error for what went wrong while rendering ``template`` (a display path)."""
    shown, line = locator.where(exc)
    shown = shown or template
    note = " (in the plain text derived from this html)" if derived else ""
    if isinstance(exc, RenderError):
        return exc
    if isinstance(exc, UndefinedUse):
        return _undefined(exc, shown, line, context, note, locator)
    if isinstance(exc, SecurityError):
        return SandboxViolation(
            f"refused by the sandbox: {exc}{note} — templates cannot reach Python internals "
            "or change data; nothing was executed",
            template=shown,
            line=line,
        )
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return syntax_error(exc, locator, exc.name or template)
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateNotFound(f"no template {exc.name!r}{note}", template=shown)
    if isinstance(exc, HelperError):
        return TemplateFailed(f"{exc}{note}", template=shown, line=line)
    return TemplateFailed(f"{type(exc).__name__}: {exc}{note}", template=shown, line=line)


def _undefined(
    exc: UndefinedUse,
    shown: str,
    line: int | None,
    context: Mapping[str, Any],
    note: str,
    locator: Locator,
) -> UndefinedVariable:
    name = exc.name if isinstance(exc.name, str) else repr(exc.name)
    if exc.obj is missing:
        return UndefinedVariable(
            f"undefined variable '{name}'{note}{did_you_mean(name, context)}",
            name=name,
            template=shown,
            line=line,
        )
    path = _dotted(locator.source_line(shown, line), name) or name
    keys = _keys(exc.obj)
    what = f"'{path}'" if keys is not None else f"'{path}' ({exc})"
    suggestion = did_you_mean(name, keys) if keys is not None else ""
    return UndefinedVariable(
        f"undefined variable {what}{note}{suggestion}", name=path, template=shown, line=line
    )


def _keys(obj: Any) -> Iterable[str] | None:
    if isinstance(obj, Mapping):
        return [str(key) for key in obj]
    public = [name for name in dir(type(obj)) if not name.startswith("_")]
    return public if hasattr(obj, "__slots__") else None


def _dotted(source_line: str | None, name: str) -> str | None:
    """``customer.frist_name`` for the name ``frist_name`` on the template line."""
    if not source_line:
        return None
    match = re.search(rf"([A-Za-z_][\w.]*)\.{re.escape(name)}\b", source_line)
    return f"{match.group(1)}.{name}" if match else None


def render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template`` rendered with ``variables``; errors carry template lines (``runtime_error``).

    ``variables`` must already hold the environment's globals (``flat_globals``)
    and is shared, not copied: what ``Template.render`` does, minus a dict copy
    and a walk over a ``ChainMap`` of globals on every call — a third of the
    time of a small template. Templates cannot change it (``{% set %}`` writes
    to the template's own scope).
    """
    environment = template.environment
    context = environment.context_class(environment, variables, template.name, template.blocks)
    try:
        return "".join(template.root_render_func(context))
    except Exception:
        environment.handle_exception()  # re-raises with the template's lines
        raise  # pragma: no cover  (handle_exception always raises)


def render_with_text(template: jinja2.Template, variables: dict[str, Any]) -> tuple[str, str]:
    """The html and the derived text from a one-pass template (``onepass.build``).

    Raises ``Diverged`` when the two would differ (render them apart), and
    otherwise what ``render`` raises.
    """
    environment = template.environment
    context = environment.context_class(environment, variables, template.name, template.blocks)
    text: list[str] = []
    context.nc_text = text  # type: ignore[attr-defined]
    try:
        html = "".join(template.root_render_func(context))
    except Diverged:
        raise
    except Exception:
        environment.handle_exception()
        raise  # pragma: no cover  (handle_exception always raises)
    return html, "".join(text)


def flat_globals(environment: jinja2.Environment) -> dict[str, Any]:
    """The environment's globals as one plain dict, to start each message's variables."""
    return dict(environment.globals)
