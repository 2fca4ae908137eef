"""A chunk of demo customers turned into rows the store takes as they are.

This is the part of the demo that is pure Python work, so it runs in worker
processes (see ``generator``) and hands the main process nothing but rows:
customer, consent and token rows for ``upsert``, and events already in the
``StagedEvent`` form the ``EventWriter`` copies into its staging table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from narrowcast.demo.behaviour import draw_customer
from narrowcast.ingest.coerce import kind
from narrowcast.store.bulk import StagedEvent


@dataclass(slots=True)
class Chunk:
    customers: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    events: list[StagedEvent] = field(default_factory=list)
    properties: set[tuple[str, str, str]] = field(default_factory=set)
    """(event type, property, value type) of every property in ``events``."""
    attributes: dict[str, str] = field(default_factory=dict)
    """Value type of every attribute key in ``customers``."""
    personas: Counter[str] = field(default_factory=Counter)


def draw_chunk(
    seed: int, numbers: range, now: datetime, encode_ts: Callable[[datetime], Any]
) -> Chunk:
    """Customers ``numbers`` of the demo shop, with their events encoded by ``encode_ts``.

    Event ids are ``demo-{seed}-{customer number}-{n}``, so a rerun finds them
    already stored; ``line`` is the event's position in the chunk.
    """
    chunk = Chunk()
    events = chunk.events
    seen: dict[str, set[str]] = {}
    line = 0
    for number in numbers:
        customer = draw_customer(seed, number, now)
        chunk.customers.append(customer.row)
        chunk.consents.extend(customer.consents)
        if customer.token is not None:
            chunk.tokens.append(customer.token)
        chunk.personas[customer.persona.name] += 1
        for key, value in customer.row["attributes"].items():
            if key not in chunk.attributes:
                chunk.attributes[key] = kind(value)
        prefix = f"demo-{seed}-{number:06d}-"
        owner = customer.row["id"]
        for n, (type_, at, properties) in enumerate(customer.events):
            line += 1
            value = properties.get("value")
            events.append(
                (
                    line,
                    f"{prefix}{n}",
                    owner,
                    type_,
                    encode_ts(at),
                    None if value is None else float(value),
                    orjson.dumps(properties).decode(),
                )
            )
            # Most events repeat a known shape: one set comparison instead of a loop.
            known = seen.setdefault(type_, set())
            if not properties.keys() <= known:
                for key in properties.keys() - known:
                    chunk.properties.add((type_, key, kind(properties[key])))
                known.update(properties)
    return chunk
