"""Message rendering: sandboxed Jinja templates per channel, localised, with signed links.

The names below are imported on first use (PEP 562): ``narrowcast.config``
imports ``narrowcast.render.settings`` for its ``[links]`` section, and every
command would otherwise load Jinja and Babel just to read config.toml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from narrowcast.render.errors import (
        HelperError,
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

_EXPORTS = {
    "CHANNELS": "narrowcast.render.naming",
    "CONTEXT_NAMES": "narrowcast.render.templates",
    "Click": "narrowcast.render.links",
    "HelperError": "narrowcast.render.errors",
    "InvalidPart": "narrowcast.render.errors",
    "LinkError": "narrowcast.render.errors",
    "Links": "narrowcast.render.links",
    "LinksSettings": "narrowcast.render.settings",
    "MessageLinks": "narrowcast.render.links",
    "MessageTemplates": "narrowcast.render.templates",
    "MissingPart": "narrowcast.render.errors",
    "PARTS": "narrowcast.render.parts",
    "PATHS": "narrowcast.render.links",
    "Part": "narrowcast.render.parts",
    "PartTemplate": "narrowcast.render.templates",
    "Preferences": "narrowcast.render.links",
    "RenderError": "narrowcast.render.errors",
    "Renderer": "narrowcast.render.renderer",
    "SandboxViolation": "narrowcast.render.errors",
    "Signer": "narrowcast.render.links",
    "SigningSecret": "narrowcast.render.settings",
    "TemplateFailed": "narrowcast.render.errors",
    "TemplateNotFound": "narrowcast.render.errors",
    "TemplateSyntax": "narrowcast.render.errors",
    "Templates": "narrowcast.render.templates",
    "TokenExpired": "narrowcast.render.errors",
    "TokenInvalid": "narrowcast.render.errors",
    "UndefinedVariable": "narrowcast.render.errors",
    "Unsubscribe": "narrowcast.render.links",
    "customer_context": "narrowcast.render.renderer",
    "distinct": "narrowcast.render.renderer",
    "load_secret": "narrowcast.render.settings",
    "locale_chain": "narrowcast.render.naming",
    "required_parts": "narrowcast.render.parts",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'narrowcast.render' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CHANNELS",
    "CONTEXT_NAMES",
    "PARTS",
    "PATHS",
    "Click",
    "HelperError",
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
