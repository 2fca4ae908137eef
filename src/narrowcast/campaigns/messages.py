"""A campaign's messages: which templates, which channels, and what ``campaign`` means in them.

Used alike by ``validate``, ``dry-run`` and the dispatcher, so that what is
checked and previewed is what is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from narrowcast.campaigns.model import Campaign
from narrowcast.render.errors import RenderError, TemplateNotFound
from narrowcast.render.renderer import Renderer


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
