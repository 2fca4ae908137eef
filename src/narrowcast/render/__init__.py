"""Message rendering: sandboxed Jinja templates per channel, localised, with signed links."""

from narrowcast.render.errors import (
    InvalidPart,
    LinkError,
    MissingPart,
    RenderError,
    SandboxViolation,
    TemplateFailed,
    TemplateNotFound,
    TemplateSyntax,
    TokenExpired,
    TokenInvalid,
    UndefinedVariable,
)
from narrowcast.render.links import (
    PATHS,
    Click,
    Links,
    MessageLinks,
    Preferences,
    Signer,
    Unsubscribe,
)
from narrowcast.render.naming import CHANNELS, locale_chain
from narrowcast.render.parts import PARTS, Part, required_parts
from narrowcast.render.renderer import Renderer, customer_context, distinct
from narrowcast.render.settings import LinksSettings, SigningSecret, load_secret
from narrowcast.render.templates import CONTEXT_NAMES, MessageTemplates, PartTemplate, Templates

__all__ = [
    "CHANNELS",
    "CONTEXT_NAMES",
    "PARTS",
    "PATHS",
    "Click",
    "InvalidPart",
    "LinkError",
    "Links",
    "LinksSettings",
    "MessageLinks",
    "MessageTemplates",
    "MissingPart",
    "Part",
    "PartTemplate",
    "Preferences",
    "RenderError",
    "Renderer",
    "SandboxViolation",
    "Signer",
    "SigningSecret",
    "TemplateFailed",
    "TemplateNotFound",
    "TemplateSyntax",
    "Templates",
    "TokenExpired",
    "TokenInvalid",
    "UndefinedVariable",
    "Unsubscribe",
    "customer_context",
    "distinct",
    "load_secret",
    "locale_chain",
    "required_parts",
]
