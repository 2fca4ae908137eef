"""Templates found, compiled once and cached: what renders each part of a message.

``Templates`` is one templates folder. ``Templates.message(campaign, channel,
variant=, locale=, paths=)`` resolves every part of that channel through the
naming convention (``naming.py``) or the campaign's explicit paths, compiles
each file once (Jinja keeps the compiled code for the life of the process)
and returns a ``MessageTemplates`` that renders a context into the channel's
part dict. Resolutions are cached per (campaign, channel, variant, locale,
paths), failures included, so the per-message cost is the rendering alone.

The email ``text`` part: a text template is used only when it is at least as
specific as the html template it goes with (same variant folder and locale,
or more specific); otherwise the text is derived from the html template, and
``render`` makes both in one pass when ``onepass.build`` can zip them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from narrowcast.errors import did_you_mean
from narrowcast.render import onepass
from narrowcast.render.codegen import Diverged
from narrowcast.render.errors import (
    InvalidPart,
    MissingPart,
    RenderError,
    TemplateNotFound,
    UndefinedVariable,
)
from narrowcast.render.naming import (
    CHANNELS,
    conventional_names,
    explicit_names,
    folder_problem,
    normalise_locale,
    path_problem,
)
from narrowcast.render.parts import PAIRS, PARTS, Part, finish
from narrowcast.render.sandbox import (
    Locator,
    flat_globals,
    make_environments,
    render,
    render_with_text,
    runtime_error,
    syntax_error,
)

CONTEXT_NAMES: tuple[str, ...] = ("customer", "segment", "campaign", "variant", "links", "track")
"""The variables every template sees."""
_PAIRED = frozenset(
    channel
    for channel, parts in PARTS.items()
    if any(part.name == first for part in parts for first, _ in PAIRS)
)
"""Channels with parts that come in pairs (``cta_label`` and ``cta_url``)."""


@dataclass(frozen=True, slots=True)
class PartTemplate:
    """The compiled template behind one part, and the file it came from."""

    part: Part
    name: str
    """Template name relative to the templates folder."""
    shown: str
    """The file as a marketer sees it, e.g. ``templates/cart_abandoner/email.html.j2``."""
    template: jinja2.Template
    derived: bool = False
    """True for an email text part derived from the html template ``name``."""
    with_text: jinja2.Template | None = None
    """For an html part whose text is derived: both in one pass (``onepass.py``)."""


@dataclass(frozen=True)
class MessageTemplates:
    """Every part of one channel's message, resolved and compiled."""

    campaign: str
    channel: str
    variant: str | None
    locale: str | None
    parts: tuple[tuple[Part, PartTemplate | None], ...]
    locator: Locator
    globals: Mapping[str, Any]
    """The environments' globals (``range``, ``dict``…), merged into every context."""

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The message's part dict; raises the first ``RenderError``."""
        variables = {**self.globals, **context}
        message: dict[str, Any] = {}
        text: str | None = None  # made with the html, for the derived text part
        for part, compiled in self.parts:
            if compiled is None:
                message[part.name] = part.default
            elif compiled.with_text is not None:
                try:
                    html, text = render_with_text(compiled.with_text, variables)
                except Diverged:
                    message[part.name] = self._part(part, compiled, variables, context)
                    continue
                except Exception as exc:
                    raise self._error(exc, compiled, context) from exc
                message[part.name] = finish(part, html, compiled.shown)
            elif text is not None and compiled.derived:
                message[part.name] = finish(part, text, compiled.shown)
            else:
                message[part.name] = self._part(part, compiled, variables, context)
        if self.channel in _PAIRED:
            self._check_pairs(message)
        return message

    def problems(self, context: Mapping[str, Any]) -> list[RenderError]:
        """Every part rendered with ``context``; all the errors, not just the first."""
        variables = {**self.globals, **context}
        found: list[RenderError] = []
        message: dict[str, Any] = {}
        for part, compiled in self.parts:
            try:
                message[part.name] = self._part(part, compiled, variables, context)
            except RenderError as exc:
                found.append(exc)
        if not found and self.channel in _PAIRED:
            try:
                self._check_pairs(message)
            except RenderError as exc:
                found.append(exc)
        return found

    def _part(
        self,
        part: Part,
        compiled: PartTemplate | None,
        variables: dict[str, Any],
        context: Mapping[str, Any],
    ) -> Any:
        if compiled is None:
            return part.default
        try:
            rendered = render(compiled.template, variables)
        except Exception as exc:
            raise self._error(exc, compiled, context) from exc
        return finish(part, rendered, compiled.shown)

    def _error(
        self, exc: Exception, compiled: PartTemplate, context: Mapping[str, Any]
    ) -> RenderError:
        return runtime_error(
            exc, self.locator, template=compiled.shown, context=context, derived=compiled.derived
        )

    def _check_pairs(self, message: Mapping[str, Any]) -> None:
        for first, second in PAIRS:
            if first in message and (message[first] is None) != (message[second] is None):
                empty, full = (first, second) if message[first] is None else (second, first)
                shown = next((c.shown for p, c in self.parts if p.name == full and c), None)
                raise InvalidPart(
                    f"{full} rendered but {empty} is empty: render both or neither",
                    template=shown,
                )


class Templates:
    """One templates folder: resolution by convention, compiled-once templates, checks."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.locator = Locator(self.root)
        self.html, self.plain, self.text = make_environments(self.root)
        self._globals = flat_globals(self.plain)
        self._messages: dict[tuple[Any, ...], MessageTemplates | RenderError] = {}
        self._with_texts: dict[str, jinja2.Template | None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Templates({str(self.root)!r})"

    def message(
        self,
        campaign: str,
        channel: str,
        *,
        variant: str | None = None,
        locale: str | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> MessageTemplates:
        """The compiled templates of one channel's message; raises the first problem."""
        # Keyed by the locale as given: "es_ES" and "es-ES" resolve alike, and the
        # per-message lookup skips normalising.
        key = (campaign, channel, variant, locale, tuple(sorted(paths.items())) if paths else ())
        cached = self._messages.get(key)
        if cached is None:
            resolved, problems = self.resolve(
                campaign, channel, variant=variant, locale=normalise_locale(locale), paths=paths
            )
            cached = problems[0] if problems or resolved is None else resolved
            with self._lock:
                self._messages[key] = cached
        if isinstance(cached, RenderError):
            # The same error for every message of a broken campaign: drop the last
            # traceback, or each raise would grow it.
            raise cached.with_traceback(None)
        return cached

    def resolve(
        self,
        campaign: str,
        channel: str,
        *,
        variant: str | None = None,
        locale: str | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> tuple[MessageTemplates | None, list[RenderError]]:
        """Find and compile every part; collect every problem instead of stopping."""
        locale = normalise_locale(locale)
        paths = dict(paths or {})
        problems: list[RenderError] = []
        if channel not in PARTS:
            problems.append(
                RenderError(
                    f"unknown channel {channel!r}{did_you_mean(channel, CHANNELS)} "
                    f"(channels: {', '.join(CHANNELS)})"
                )
            )
            return None, problems
        known = {part.name for part in PARTS[channel]}
        for name in paths:
            if name not in known:
                problems.append(
                    RenderError(
                        f"{channel} has no part {name!r}{did_you_mean(name, known)} "
                        f"(parts: {', '.join(p.name for p in PARTS[channel])})"
                    )
                )
        for kind, value in (("campaign", campaign), ("variant", variant)):
            reason = folder_problem(kind, value) if value is not None else None
            if reason:
                problems.append(RenderError(reason))
        if problems:
            return None, problems

        resolved: list[tuple[Part, PartTemplate | None]] = []
        looked_for: dict[str, list[str]] = {}
        html_rank: int | None = None
        html: PartTemplate | None = None
        for part in PARTS[channel]:
            explicit = paths.get(part.name)
            if explicit is not None:
                reason = path_problem(explicit)
                if reason:
                    problems.append(RenderError(f"{channel} {part.name}: {reason}"))
                    resolved.append((part, None))
                    continue
                names = explicit_names(explicit, locale=locale)
            else:
                names = conventional_names(
                    campaign, channel, part.name, variant=variant, locale=locale
                )
                if channel == "email" and part.name == "text":
                    # Only a text template at least as specific as the html one.
                    names = names[: html_rank + 1] if html_rank is not None else []
            looked_for[part.name] = [self.locator.show(name) for name in names]
            found = self._first_file(names)
            compiled: PartTemplate | None = None
            try:
                if found is not None:
                    compiled = self._compile(part, found[1])
                    if part.kind == "html" and explicit is None:
                        html_rank = found[0]
                elif channel == "email" and part.name == "text" and html is not None:
                    compiled = self._derive(part, html)
                elif explicit is not None:
                    problems.append(
                        TemplateNotFound(
                            f"{channel} {part.name}: the campaign names the template "
                            f"{explicit!r}, which does not exist",
                            looked_for=looked_for[part.name],
                        )
                    )
                elif part.required:
                    problems.append(
                        MissingPart(
                            f"{campaign}: {channel} needs a {part.name} template",
                            looked_for=looked_for[part.name],
                        )
                    )
            except RenderError as exc:
                problems.append(exc)
            if part.kind == "html":
                html = compiled
            resolved.append((part, compiled))

        parts = dict((part.name, compiled) for part, compiled in resolved)
        text = parts.get("text") if channel == "email" else None
        if html is not None and text is not None and text.derived:
            with_text = self._with_text(html.name)
            resolved = [
                (
                    part,
                    dataclasses.replace(html, with_text=with_text)
                    if compiled is html
                    else compiled,
                )
                for part, compiled in resolved
            ]
        for first, second in PAIRS:
            if first in parts and (parts[first] is None) != (parts[second] is None):
                missing = first if parts[first] is None else second
                present = second if missing == first else first
                problems.append(
                    MissingPart(
                        f"{campaign}: {channel} has a {present} template but no {missing} "
                        "template — add both or neither",
                        looked_for=looked_for.get(missing, ()),
                    )
                )
        message = MessageTemplates(
            campaign, channel, variant, locale, tuple(resolved), self.locator, self._globals
        )
        return message, problems

    def check_syntax(self, names: Iterable[str] | None = None) -> list[RenderError]:
        """Compile templates without rendering them; every problem, not just the first.

        ``names`` are relative to the folder; default every ``*.j2`` file in it.
        Finds syntax errors, unreadable files, html whose derived text does not
        compile, and variables that no context has (``custmer``).
        """
        problems: list[RenderError] = []
        for name in names if names is not None else self.names():
            html = "html" in name.rsplit("/", 1)[-1].split(".")
            environment = self.html if html else self.plain
            try:
                self._load(environment, name)
                if html:
                    self._load(self.text, name, derived=True)
            except RenderError as exc:
                problems.append(exc)
                continue
            if name.rsplit("/", 1)[-1].split(".")[0] in CHANNELS:
                # A part template; includes and macros may use what their includer sets.
                problems.extend(self._unknown_names(environment, name))
        return problems

    def sources(self, message: MessageTemplates) -> list[str] | None:
        """The source text of every file ``message`` renders, with what they include,
        import or extend; None when one names its include at run time (unknowable).

        Lets a caller see which context values a message can use before building them.
        """
        environment = self.plain
        assert environment.loader is not None
        pending = [compiled.name for _, compiled in message.parts if compiled is not None]
        seen: set[str] = set()
        sources: list[str] = []
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                source = environment.loader.get_source(environment, name)[0]
                tree = environment.parse(source, name)
            except (jinja2.TemplateError, OSError):
                return None
            sources.append(source)
            for referenced in meta.find_referenced_templates(tree):
                if referenced is None:
                    return None
                pending.append(referenced)
        return sources

    def names(self) -> list[str]:
        """Every template file (``*.j2``) under the folder, sorted."""
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*.j2")
            if path.is_file()
        )

    def reload(self) -> None:
        """Forget every compiled template and resolution (files changed on disk)."""
        with self._lock:
            self._messages.clear()
            self._with_texts.clear()
            for environment in (self.html, self.plain, self.text):
                if environment.cache is not None:
                    environment.cache.clear()

    # -- compiling ------------------------------------------------------------------

    def _first_file(self, names: list[str]) -> tuple[int, str] | None:
        for rank, name in enumerate(names):
            if (self.root / name).is_file():
                return rank, name
        return None

    def _compile(self, part: Part, name: str) -> PartTemplate:
        environment = self.html if part.kind == "html" else self.plain
        return PartTemplate(part, name, self.locator.show(name), self._load(environment, name))

    def _derive(self, part: Part, html: PartTemplate) -> PartTemplate:
        template = self._load(self.text, html.name, derived=True)
        return PartTemplate(part, html.name, html.shown, template, derived=True)

    def _with_text(self, name: str) -> jinja2.Template | None:
        """The one-pass template of the html ``name`` and its derived text, if it can be made."""
        if name not in self._with_texts:
            made = onepass.build(self.html, self.text, name)
            with self._lock:
                self._with_texts[name] = made
        return self._with_texts[name]

    def _load(
        self, environment: jinja2.Environment, name: str, *, derived: bool = False
    ) -> jinja2.Template:
        try:
            return environment.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise syntax_error(exc, self.locator, name, derived=derived) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateNotFound(
                f"no template {exc.name!r}", template=self.locator.show(name)
            ) from exc

    def _unknown_names(self, environment: jinja2.Environment, name: str) -> list[RenderError]:
        assert environment.loader is not None
        source = environment.loader.get_source(environment, name)[0]
        tree = environment.parse(source, name)
        known = set(CONTEXT_NAMES) | set(environment.globals)
        unknown = meta.find_undeclared_variables(tree) - known
        problems: list[RenderError] = []
        for variable in sorted(unknown):
            line = next(
                (node.lineno for node in tree.find_all(nodes.Name) if node.name == variable), None
            )
            problems.append(
                UndefinedVariable(
                    f"undefined variable '{variable}'{did_you_mean(variable, CONTEXT_NAMES)} "
                    f"(templates see {', '.join(CONTEXT_NAMES)})",
                    name=variable,
                    template=self.locator.show(name),
                    line=line,
                )
            )
        return problems
