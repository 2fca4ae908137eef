"""The last look before a message leaves: is it still allowed, and where does it go?

Planning may be hours before sending (a send time tomorrow at 09:30), and in
between a customer may unsubscribe, bounce, lose their push token, get two
other messages, or buy what the reminder was about. So right before a batch is
sent, for every row:

* the campaign must still exist and be enabled (else ``canceled``);
* consent for the campaign's purpose and channel must still hold, and the
  email address must not have been suppressed (else ``suppressed``) — the same
  rules as planning (``planning/facts.py``);
* there must still be an address: an email, a valid push token (the most
  recently seen one), a phone for SMS;
* marketing messages must still fit the frequency caps, counting the messages
  *sent* since (else ``suppressed``); a lower-priority message that lost its
  slot to a higher-priority one ends here;
* a trigger's ``unless`` rule must not hold now (else ``canceled``).

All of it is read with a handful of set-based queries per batch.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, Integer, Select, any_, bindparam, literal, select
from sqlalchemy.dialects import postgresql

from narrowcast.campaigns.model import Campaign
from narrowcast.dispatch.outbox import Claimed
from narrowcast.planning.settings import PlanningSettings
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.errors import RuleError
from narrowcast.segments.evaluation import Evaluation
from narrowcast.store.bulk import among
from narrowcast.store.schema import (
    Instant,
    consents,
    device_tokens,
    outbox,
    suppressions,
)

_MARKETING_BLOCKS = ("unsubscribed", "hard_bounce", "spam_complaint", "manual")
_TRANSACTIONAL_BLOCKS = ("hard_bounce", "spam_complaint")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where the message goes (``to``), or why it does not (``state`` and ``reason``)."""

    to: str | None
    state: str | None = None
    reason: str | None = None


class Gate:
    def __init__(
        self,
        conn: Connection,
        definitions: Definitions,
        planning: PlanningSettings,
        campaigns: Mapping[str, Campaign],
        now: datetime,
    ) -> None:
        self.conn = conn
        self.definitions = definitions
        self.planning = planning
        self.campaigns = campaigns
        self.now = now

    def check(
        self, rows: Sequence[Claimed], people: Mapping[str, Mapping[str, Any]]
    ) -> dict[int, Verdict]:
        ids = sorted({r.customer_id for r in rows})
        granted = self._consents(ids)
        blocked = self._suppressed([p.get("email") for p in people.values()])
        tokens = self._tokens(ids) if any(r.channel == "push" for r in rows) else {}
        capped = self._capped(rows)
        cancelled = self._unless(rows)
        verdicts: dict[int, Verdict] = {}
        for row in rows:
            campaign = self.campaigns.get(row.campaign)
            person = people.get(row.customer_id)
            if campaign is None or not campaign.enabled:
                why = "the campaign is no longer defined" if campaign is None else "disabled"
                verdicts[row.id] = Verdict(None, "canceled", f"campaign {row.campaign}: {why}")
                continue
            if person is None:
                verdicts[row.id] = Verdict(None, "canceled", "the customer no longer exists")
                continue
            consent = granted.get((row.customer_id, row.channel, row.purpose))
            if not _consented(row.channel, row.purpose, consent):
                verdicts[row.id] = Verdict(
                    None, "suppressed", f"no {row.purpose} consent for {row.channel} any more"
                )
                continue
            email = person.get("email")
            if row.channel == "email":
                reasons = blocked.get(str(email).lower()) if email else None
                stops = _MARKETING_BLOCKS if row.purpose == "marketing" else _TRANSACTIONAL_BLOCKS
                if reasons and reasons & set(stops):
                    why = ", ".join(sorted(reasons))
                    verdicts[row.id] = Verdict(None, "suppressed", f"email address {why}")
                    continue
            if row.purpose == "marketing" and row.customer_id in capped:
                verdicts[row.id] = Verdict(
                    None,
                    "suppressed",
                    f"frequency cap reached at send time ({capped[row.customer_id]})",
                )
                continue
            if row.id in cancelled:
                verdicts[row.id] = Verdict(None, "canceled", f"unless holds: {campaign.unless}")
                continue
            to = _address(row, person, tokens)
            if to is None:
                verdicts[row.id] = Verdict(None, "suppressed", f"no {row.channel} address any more")
                continue
            verdicts[row.id] = Verdict(to)
        return verdicts

    def _consents(self, ids: list[str]) -> dict[tuple[str, str, str], bool]:
        rows = self.conn.execute(
            select(
                consents.c.customer_id, consents.c.channel, consents.c.purpose, consents.c.granted
            ).where(among(self.conn, consents.c.customer_id, ids))
        )
        return {(c, ch, p): bool(g) for c, ch, p, g in rows}

    def _suppressed(self, emails: list[Any]) -> dict[str, set[str]]:
        addresses = sorted({str(e).lower() for e in emails if e})
        if not addresses:
            return {}
        found: dict[str, set[str]] = defaultdict(set)
        rows = self.conn.execute(
            select(suppressions.c.address, suppressions.c.reason).where(
                suppressions.c.channel == "email",
                among(self.conn, suppressions.c.address, addresses),
            )
        )
        for address, reason in rows:
            found[address].add(reason)
        return found

    def _tokens(self, ids: list[str]) -> dict[str, str]:
        """The most recently seen valid push token of each customer."""
        rows = self.conn.execute(
            select(device_tokens.c.customer_id, device_tokens.c.token, device_tokens.c.last_seen_at)
            .where(
                among(self.conn, device_tokens.c.customer_id, ids),
                device_tokens.c.invalidated_at.is_(None),
            )
            .order_by(device_tokens.c.last_seen_at)
        )
        return {customer: token for customer, token, _ in rows}

    def _capped(self, rows: Sequence[Claimed]) -> dict[str, str]:
        """Customers of marketing rows who were sent as many marketing messages as a
        frequency cap allows, with the cap they reached ("2 in a day").

        Each cap is one correlated ``EXISTS`` per claimed row: is there a
        ``cap``-th message since then? That is a probe of the outbox's customer
        index, cheap whatever PostgreSQL's statistics say. One query grouping
        the batch's customers was planned from the statistics; after a big
        plan, with none yet, it read every sent row (state index) or the whole
        outbox, more with each batch — or, with a count per customer, its cost
        estimate set off JIT compilation (25 ms a batch).
        """
        frequency = self.planning.frequency
        caps = [
            (cap, self.now - timedelta(days=days), f"{cap} in a {unit}")
            for cap, days, unit in ((frequency.per_day, 1, "day"), (frequency.per_week, 7, "week"))
            if cap is not None
        ]
        marketing = [r.id for r in rows if r.purpose == "marketing"]
        if not caps or not marketing:
            return {}
        values: dict[str, Any] = {"ids": marketing}
        for n, (cap, since, _) in enumerate(caps):
            values |= {f"since_{n}": since, f"skip_{n}": cap - 1}
        query = _caps_query(self.conn.dialect.name, len(caps))
        capped: dict[str, str] = {}
        for customer, *hits in self.conn.execute(query, values):
            for hit, (_, _, text) in zip(hits, caps, strict=True):
                if hit:
                    capped[customer] = text
                    break
        return capped

    def _unless(self, rows: Sequence[Claimed]) -> set[int]:
        """Rows whose campaign's ``unless`` holds now."""
        by_campaign: dict[str, list[Claimed]] = defaultdict(list)
        for row in rows:
            campaign = self.campaigns.get(row.campaign)
            if campaign is not None and campaign.unless and row.trigger_at is not None:
                by_campaign[row.campaign].append(row)
        if not by_campaign:
            return set()
        evaluation = Evaluation(self.definitions, self.conn, self.now)
        cancelled: set[int] = set()
        for name, mine in by_campaign.items():
            unless = self.campaigns[name].unless
            assert unless is not None
            try:
                rule = evaluation.rule(where=unless)
            except RuleError:
                continue  # validate reports it; a broken rule cancels nothing
            holding = evaluation.query(rule).subquery()
            ids = [r.customer_id for r in mine]
            hits = set(
                self.conn.execute(
                    select(holding.c.id).where(among(self.conn, holding.c.id, ids))
                ).scalars()
            )
            cancelled |= {r.id for r in mine if r.customer_id in hits}
        return cancelled


@functools.cache
def _caps_query(dialect: str, caps: int) -> Select[Any]:
    """``Gate._capped``'s query for ``caps`` caps, built once per database: building it
    for every batch cost more than running it."""
    claimed, mine = outbox.alias("claimed"), outbox.alias("mine")
    reached = [
        select(literal(1))
        .where(
            mine.c.customer_id == claimed.c.customer_id,
            # Only sending sets sent_at: the state need not be tested.
            mine.c.sent_at > bindparam(f"since_{n}", type_=Instant),
            mine.c.purpose == "marketing",
        )
        .offset(bindparam(f"skip_{n}", type_=Integer))
        .limit(1)
        .exists()
        for n in range(caps)
    ]
    ids = (
        claimed.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger)))
        if dialect == "postgresql"
        else claimed.c.id.in_(bindparam("ids", expanding=True))
    )
    return select(claimed.c.customer_id, *reached).where(ids)


def _consented(channel: str, purpose: str, consent: bool | None) -> bool:
    if purpose == "marketing" and channel in ("email", "push"):
        return consent is True
    return consent is not False


def _address(row: Claimed, person: Mapping[str, Any], tokens: Mapping[str, str]) -> str | None:
    if row.channel == "email":
        email = person.get("email")
        return str(email) if email else None
    if row.channel == "push":
        return tokens.get(row.customer_id)
    if row.channel == "sms":
        phone = person.get("phone")
        return str(phone) if phone else None
    if row.channel == "webhook":
        return ""
    return row.customer_id  # in-app, web, and plugin channels address the customer


__all__ = ["Gate", "Verdict"]
