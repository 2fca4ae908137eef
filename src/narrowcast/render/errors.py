"""Errors of message rendering and of signed links.

    NarrowcastError
    ├── RenderError              a template cannot become a message: .template, .line
    │   ├── TemplateNotFound     missing or unreadable; .looked_for lists every name tried
    │   │   └── MissingPart      a part the channel requires has no template at all
    │   ├── TemplateSyntax       Jinja cannot parse the template (Jinja's own message)
    │   ├── UndefinedVariable    the template uses a name the context does not have
    │   ├── SandboxViolation     the template reached for Python internals; nothing ran
    │   ├── TemplateFailed       anything else raised while rendering (a HelperError from a
    │   │                        filter or track(), 1/0…)
    │   └── InvalidPart          the rendered text is not what the channel takes (JSON, choice)
    └── LinkError                a signed link token cannot be trusted
        ├── TokenInvalid         truncated, altered, malformed, or signed for another purpose
        └── TokenExpired         genuine but past its expiry

Every ``RenderError`` message starts with ``template:line`` when a template
line is known — the line in the template file, never in Python — so that a
marketer can open the file at that line. ``validate`` collects them instead
of stopping at the first; ``Renderer.render`` raises the first one.

``LinkError`` is what the HTTP API catches around ``Signer.verify``: it
answers 400 for ``TokenInvalid`` and 410 for ``TokenExpired``.
"""

from __future__ import annotations

from collections.abc import Sequence

from narrowcast.errors import NarrowcastError


class RenderError(NarrowcastError):
    """A template cannot be turned into a message; the message says where and why."""

    exit_code = 2

    def __init__(self, reason: str, *, template: str | None = None, line: int | None = None):
        self.reason = reason
        self.template = template
        self.line = line
        super().__init__(self._render())

    @property
    def where(self) -> str:
        """``template:line``, ``template``, or ``""`` when neither is known."""
        if self.template is None:
            return ""
        return f"{self.template}:{self.line}" if self.line is not None else self.template

    def _render(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


class TemplateNotFound(RenderError):
    """No template file answers, or the one found cannot be read."""

    def __init__(
        self,
        reason: str,
        *,
        looked_for: Sequence[str] = (),
        template: str | None = None,
    ):
        self.looked_for = tuple(looked_for)
        if self.looked_for:
            reason += " — looked for " + ", ".join(self.looked_for)
        super().__init__(reason, template=template)


class MissingPart(TemplateNotFound):
    """A part the channel requires (an email's subject, a push body…) has no template."""


class TemplateSyntax(RenderError):
    """Jinja cannot parse the template."""


class UndefinedVariable(RenderError):
    """The template uses a variable or key that the context does not have."""

    def __init__(
        self,
        reason: str,
        *,
        name: str,
        template: str | None = None,
        line: int | None = None,
    ):
        self.name = name
        super().__init__(reason, template=template, line=line)


class SandboxViolation(RenderError):
    """The template tried to reach Python internals or call an unsafe method; refused."""


class TemplateFailed(RenderError):
    """Rendering raised an error of the template's making (bad filter argument, 1/0…)."""


class InvalidPart(RenderError):
    """The rendered part is not what the channel takes (not JSON, not a known choice…)."""


class HelperError(ValueError):
    """A filter or helper (``money``, ``track``…) was given something it cannot use.

    Raised inside a template; the renderer turns it into ``TemplateFailed`` at the
    template's file and line. Not a ``NarrowcastError`` by itself: it has no place yet.
    """


class LinkError(NarrowcastError):
    """A signed link token cannot be trusted."""

    exit_code = 1


class TokenInvalid(LinkError):
    """The token is truncated, altered, malformed, or was signed for another purpose."""


class TokenExpired(LinkError):
    """The token is genuine but its expiry has passed."""
