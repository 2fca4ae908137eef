"""Rendering one message: the template context for a customer, and the channel's parts.

What every template sees:

* ``customer`` — every column of the ``customers`` row, plus every key of its
  ``attributes`` that no column shadows (``customer.lifestyle``);
* ``segment`` — the mapping the caller passes: the segment's name and scores
  (``lead_score``, ``nps_class``, ``clv``, ``cart``, ``last_order``…);
* ``campaign`` — the campaign mapping (``name``, ``description``, …);
* ``variant`` — the A/B variant's name, or ``None``;
* ``links`` — ``links.unsubscribe`` and ``links.preferences``, signed per customer;
* ``track(url)`` — a signed click-tracking URL that redirects to ``url``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from narrowcast.render.errors import RenderError
from narrowcast.render.links import Links, MessageLinks, Signer
from narrowcast.render.settings import load_secret
from narrowcast.render.templates import MessageTemplates, Templates

if TYPE_CHECKING:
    from narrowcast.config import Settings

DEFAULT_TEMPLATES = Path("templates")


class Renderer:
    """Renders messages from one templates folder with signed links."""

    def __init__(self, templates: Templates | Path | str, links: Links) -> None:
        self.templates = templates if isinstance(templates, Templates) else Templates(templates)
        self.links = links

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        templates: Templates | Path | str = DEFAULT_TEMPLATES,
        *,
        env: Mapping[str, str] | None = None,
        folder: Path | None = None,
    ) -> Renderer:
        """A renderer signing with the secret ``[links]`` names (see ``load_secret``)."""
        secret = load_secret(settings.links, env=env, folder=folder)
        return cls(templates, Links(Signer(secret.value), settings.links.base_url))

    def message(
        self,
        campaign: Mapping[str, Any],
        channel: str,
        *,
        customer: Mapping[str, Any] | None = None,
        variant: str | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> MessageTemplates:
        """The compiled templates for this campaign, channel, variant and customer's locale."""
        locale = customer.get("locale") if customer is not None else None
        return self.templates.message(
            _campaign_name(campaign), channel, variant=variant, locale=locale, paths=paths
        )

    def context(
        self,
        customer: Mapping[str, Any],
        *,
        campaign: Mapping[str, Any],
        channel: str,
        variant: str | None = None,
        segment: Mapping[str, Any] | None = None,
        outbox_id: int | str | None = None,
    ) -> dict[str, Any]:
        """The variables a template sees for this customer and message."""
        purpose = campaign.get("purpose", "marketing")
        try:
            customer_id = str(customer["id"])
        except KeyError:
            raise RenderError(
                "the customer mapping needs an 'id' (its signed links name it)"
            ) from None
        links = MessageLinks(self.links, customer_id, channel, outbox_id, purpose)
        return {
            "customer": customer_context(customer),
            "segment": segment if segment is not None else {},
            "campaign": campaign,
            "variant": variant,
            "links": links,
            "track": links.track,
        }

    def render(
        self,
        channel: str,
        customer: Mapping[str, Any],
        *,
        campaign: Mapping[str, Any],
        variant: str | None = None,
        segment: Mapping[str, Any] | None = None,
        outbox_id: int | str | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The channel's part dict for one customer (``Message.parts``); raises ``RenderError``.

        ``outbox_id`` goes into every click token; ``None`` (a preview) makes
        links that redirect without recording a click.
        """
        templates = self.message(campaign, channel, customer=customer, variant=variant, paths=paths)
        context = self.context(
            customer,
            campaign=campaign,
            channel=channel,
            variant=variant,
            segment=segment,
            outbox_id=outbox_id,
        )
        return templates.render(context)

    def problems(
        self,
        channel: str,
        customer: Mapping[str, Any],
        *,
        campaign: Mapping[str, Any],
        variant: str | None = None,
        segment: Mapping[str, Any] | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> list[RenderError]:
        """Everything wrong with rendering this message for this customer, all of it."""
        templates, problems = self.templates.resolve(
            _campaign_name(campaign),
            channel,
            variant=variant,
            locale=customer.get("locale"),
            paths=paths,
        )
        if templates is not None:
            context = self.context(
                customer, campaign=campaign, channel=channel, variant=variant, segment=segment
            )
            problems.extend(templates.problems(context))
        return problems


def customer_context(customer: Mapping[str, Any]) -> dict[str, Any]:
    """The ``customer`` variable: the row's columns, and attributes no column shadows."""
    attributes = customer.get("attributes")
    if type(attributes) is dict:  # what the store gives: skip the ABC checks
        return {**attributes, **customer} if attributes else dict(customer)
    if isinstance(attributes, str | bytes):
        attributes = orjson.loads(attributes)
    if isinstance(attributes, Mapping) and attributes:
        return {**attributes, **customer}
    return dict(customer)


def distinct(problems: Iterable[RenderError]) -> list[RenderError]:
    """``problems`` without repeats (the same template error for many customers), in order."""
    seen: dict[str, RenderError] = {}
    for problem in problems:
        seen.setdefault(str(problem), problem)
    return list(seen.values())


def _campaign_name(campaign: Mapping[str, Any]) -> str:
    name = campaign.get("name")
    if not isinstance(name, str) or not name:
        raise RenderError("the campaign mapping needs a 'name' (its templates folder)")
    return name
