"""A campaign's messages: which templates, which channels, and what ``campaign`` means in them.

Used alike by ``validate``, ``dry-run`` and the dispatcher, so that what is
checked and previewed is what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from narrowcast.campaigns.model import Campaign
from narrowcast.planning.context import segment_keys_used
from narrowcast.render.errors import RenderError, TemplateNotFound
from narrowcast.render.renderer import Renderer
from narrowcast.render.templates import MessageTemplates

KeysCache: TypeAlias = dict[int, tuple[MessageTemplates, set[str] | None]]
"""What ``segment_keys`` learnt per compiled message (kept with it, so a reload misses)."""


def campaign_variables(campaign: Campaign) -> dict[str, Any]:
    """The ``campaign`` template variable."""
    return {
        "name": campaign.name,
        "description": campaign.description,
        "purpose": campaign.purpose,
        "priority": campaign.priority,
        "goal": campaign.goal,
        "segment": campaign.segment,
    }


def template_paths(campaign: Campaign, channel: str, variant: str | None) -> dict[str, str]:
    """Explicit template paths for ``channel``: the campaign's, overridden by the variant's."""
    paths = dict(campaign.templates.get(channel, {}))
    for candidate in campaign.variants:
        if candidate.name == variant:
            paths.update(candidate.templates.get(channel, {}))
    return paths


def render_message(
    renderer: Renderer,
    campaign: Campaign,
    channel: str,
    customer: Mapping[str, Any],
    *,
    variant: str | None,
    segment: Mapping[str, Any],
    outbox_id: int | None,
) -> dict[str, Any]:
    """The channel's parts for one customer, as every adapter receives them.

    For web messages the campaign's ``[web]`` table supplies the targeting, and the
    placement and survey unless a template renders them (a template wins).
    """
    paths = template_paths(campaign, channel, variant) or None
    parts = renderer.render(
        channel,
        customer,
        campaign=campaign_variables(campaign),
        variant=variant,
        segment=segment,
        outbox_id=outbox_id,
        paths=paths,
    )
    if channel == "web":
        compiled = renderer.message(
            campaign_variables(campaign), channel, customer=customer, variant=variant, paths=paths
        )
        templated = {part.name for part, template in compiled.parts if template is not None}
        web = campaign.web
        if "placement" not in templated:
            parts["placement"] = web.placement
        if "survey" not in templated:
            parts["survey"] = web.survey
        parts["targeting"] = {
            "visitor": web.visitor,
            "referrer": list(web.referrer),
            "path": web.path,
        }
    return parts


def channels_with_templates(
    renderer: Renderer, campaign: Campaign, candidates: tuple[str, ...]
) -> tuple[str, ...]:
    """The candidate channels for which every variant of the campaign has its templates."""
    variants: list[str | None] = [v.name for v in campaign.variants] or [None]
    found = []
    for channel in candidates:
        if all(not _missing(renderer, campaign, channel, variant) for variant in variants):
            found.append(channel)
    return tuple(found)


def template_problems(
    renderer: Renderer, campaign: Campaign, channel: str, variant: str | None
) -> list[RenderError]:
    """Missing or broken templates of one channel and variant (no customer needed)."""
    _, problems = renderer.templates.resolve(
        campaign.name,
        channel,
        variant=variant,
        locale=None,
        paths=template_paths(campaign, channel, variant) or None,
    )
    return problems


def _missing(renderer: Renderer, campaign: Campaign, channel: str, variant: str | None) -> bool:
    return any(
        isinstance(p, TemplateNotFound)
        for p in template_problems(renderer, campaign, channel, variant)
    )


def segment_keys(
    renderer: Renderer,
    campaign: Campaign,
    messages: Iterable[tuple[str, str | None, str | None]],
    *,
    cache: KeysCache | None = None,
) -> set[str] | None:
    """The ``segment.*`` values the templates of these (channel, variant, locale)
    messages use, includes and macros followed; None when that cannot be known
    (an include named at run time, a template that does not compile) — build all.

    Building a value no template reads (a cart, the favourite category, the RFM
    ranks…) is a query per batch; most messages need one or two.
    """
    variables = campaign_variables(campaign)
    keys: set[str] = set()
    for channel, variant, locale in messages:
        try:
            message = renderer.message(
                variables,
                channel,
                customer={"locale": locale},
                variant=variant,
                paths=template_paths(campaign, channel, variant) or None,
            )
        except RenderError:
            return None
        known = cache.get(id(message)) if cache is not None else None
        if known is None or known[0] is not message:
            sources = renderer.templates.sources(message)
            known = (message, None if sources is None else segment_keys_used(sources))
            if cache is not None:
                cache[id(message)] = known
        if known[1] is None:
            return None
        keys |= known[1]
    return keys
