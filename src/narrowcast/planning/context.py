"""What a template knows about its customer: the row, and the ``segment`` variable.

The renderer gives templates ``customer`` (the row and its attributes) and
``segment``, which this module fills for a batch of customers at once:

* ``segment.name`` — the campaign's audience segment (or ``None``);
* the scores ``lead_score``, ``nps``, ``nps_class``, ``intent``, ``clv``,
  ``rfm_r``, ``rfm_f`` and ``rfm_m``;
* ``cart`` — the properties of the latest ``cart_add`` (``product``, ``name``,
  ``brand``, ``value``, ``currency``, …) and its ``ts``;
* ``last_order`` and ``last_product`` — the latest ``order`` and ``product_view``;
* ``favourite_category`` — the category of most of the customer's orders.

Callers pass the keys their templates use (``campaigns.messages.segment_keys``)
so that only those are built: the RFM ranks rank every ordering customer.

A value the customer does not have is ``None`` (a template can write
``{% if segment.cart %}``), never a missing key, so templates stay strict
about typos (``segment.crat`` is an error) but not about data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, literal, select

from narrowcast.segments.compiler import Compiler
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.language import Score
from narrowcast.segments.scores import SCORE_TYPES
from narrowcast.segments.sql import json_property
from narrowcast.store.schema import Instant, customers, events

_LATEST = {"cart_add": "cart", "order": "last_order", "product_view": "last_product"}
_CHEAP_SCORES = ("lead_score", "nps", "nps_class", "intent", "clv")
_RANKED_SCORES = ("rfm_r", "rfm_f", "rfm_m")
SEGMENT_KEYS = ("name", *SCORE_TYPES, *_LATEST.values(), "favourite_category")


def segment_keys_used(sources: Iterable[str]) -> set[str]:
    """The ``segment.<key>`` names some template sources use (all when they index it)."""
    used: set[str] = set()
    for source in sources:
        if re.search(r"segment\s*\[", source):
            return set(SEGMENT_KEYS)
        used.update(re.findall(r"segment\.(\w+)", source))
    return used


class ContextReader:
    """Customer rows and ``segment`` mappings for batches of customers, as of ``now``."""

    def __init__(self, conn: Connection, definitions: Definitions, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.compiler = Compiler(now, definitions.scores)

    def customers(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(ids)
        rows = self.conn.execute(select(customers).where(customers.c.id.in_(wanted))).mappings()
        return {row["id"]: dict(row) for row in rows}

    def segments(
        self, ids: Iterable[str], segment: str | None, keys: set[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The ``segment`` variable of each customer: every value, or only ``keys``
        (see ``campaigns.messages.segment_keys``); the others are None."""
        wanted = list(ids)
        out: dict[str, dict[str, Any]] = {
            i: dict.fromkeys(SEGMENT_KEYS, None) | {"name": segment} for i in wanted
        }
        if not wanted:
            return out
        scores = [s for s in _CHEAP_SCORES if keys is None or s in keys]
        if scores:
            columns = [self.compiler.value(Score(s, SCORE_TYPES[s])).label(s) for s in scores]
            query = select(customers.c.id, *columns).where(customers.c.id.in_(wanted))
            for row in self.conn.execute(query).mappings():
                out[row["id"]].update({s: _whole(row[s]) if s == "nps" else row[s] for s in scores})
        for name in _RANKED_SCORES:
            if keys is None or name in keys:
                rows = self.compiler.per_customer(Score(name, "number"))
                assert rows is not None
                ranked = rows.rows.subquery()
                query = select(ranked.c.customer_id, ranked.c.value).where(
                    ranked.c.customer_id.in_(wanted)
                )
                for customer_id, value in self.conn.execute(query):
                    out[customer_id][name] = value
        latest = [kind for kind, key in _LATEST.items() if keys is None or key in keys]
        if latest:
            self._latest(wanted, latest, out)
        if keys is None or "favourite_category" in keys:
            self._favourites(wanted, out)
        return out

    def _latest(self, wanted: list[str], kinds: list[str], out: dict[str, dict[str, Any]]) -> None:
        e = events
        ranked = (
            select(
                e.c.customer_id,
                e.c.type,
                e.c.ts,
                e.c.properties,
                func.row_number()
                .over(
                    partition_by=(e.c.customer_id, e.c.type),
                    order_by=(e.c.ts.desc(), e.c.id.desc()),
                )
                .label("rank"),
            )
            .where(
                e.c.customer_id.in_(wanted),
                e.c.type.in_(kinds),
                e.c.ts <= literal(self.now, Instant),
            )
            .subquery()
        )
        query = select(ranked.c.customer_id, ranked.c.type, ranked.c.ts, ranked.c.properties).where(
            ranked.c.rank == 1
        )
        for customer_id, kind, ts, properties in self.conn.execute(query):
            out[customer_id][_LATEST[kind]] = {**_properties(properties), "ts": ts}

    def _favourites(self, wanted: list[str], out: dict[str, dict[str, Any]]) -> None:
        category = json_property(events, "category", "text")
        query = (
            select(events.c.customer_id, category, func.count(), func.max(events.c.ts))
            .where(
                events.c.customer_id.in_(wanted),
                events.c.type == "order",
                events.c.ts <= literal(self.now, Instant),
                category.is_not(None),
            )
            .group_by(events.c.customer_id, category)
        )
        best: dict[str, tuple[int, Any, str]] = {}
        for customer_id, name, count, latest in self.conn.execute(query):
            candidate = (count, latest, name)
            if customer_id not in best or candidate > best[customer_id]:
                best[customer_id] = candidate
        for customer_id, (_, _, name) in best.items():
            out[customer_id]["favourite_category"] = name


def _whole(value: Any) -> Any:
    """An NPS answer is a whole number: 9, not 9.0, in a template."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _properties(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        loaded: Mapping[str, Any] = json.loads(value)
        return loaded
    return dict(value or {})


__all__ = ["SEGMENT_KEYS", "ContextReader", "segment_keys_used"]
