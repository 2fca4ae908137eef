"""The set-based statements the worker runs per batch, on SQLite and PostgreSQL.

``insert_columns`` (the planner's outbox rows, the delivery rows and
``message_sent`` events) travels as one array per column on PostgreSQL and
``among`` as one array parameter; both must mean exactly what the plain
``INSERT`` and ``IN`` mean on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, select

from narrowcast.store import Store
from narrowcast.store.bulk import among, insert_columns
from narrowcast.store.schema import campaign_runs, customers, events, outbox

NOW = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _run(store: Store, n: int) -> int:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {"id": f"c{i}", "created_at": NOW, "updated_at": NOW, "attributes": {}}
                for i in range(n)
            ],
        )
        return int(
            conn.execute(
                insert(campaign_runs)
                .values(
                    campaign="blast",
                    key="k",
                    kind="scheduled",
                    occurrence=NOW,
                    state="planning",
                    created_at=NOW,
                )
                .returning(campaign_runs.c.id)
            ).scalar_one()
        )


def _row(run: int, i: int, probability: float | int | None) -> dict[str, object]:
    return {
        "run_id": run,
        "campaign": "blast",
        "customer_id": f"c{i}",
        "dedupe_key": f"blast:k:c{i}",
        "variant": "b" if i % 2 else None,
        "channel": "email",
        "purpose": "marketing",
        "priority": 0,
        "state": "planned",
        "send_at": NOW,
        "expires_at": NOW + timedelta(hours=2),
        "trigger_at": None,
        "choice_probability": probability,
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_insert_columns_counts_what_it_inserted_and_skips_repeated_keys(store: Store) -> None:
    run = _run(store, 5)
    # 1 next to 0.5 and None: one column may mix ints, floats and NULLs.
    first = [_row(run, i, p) for i, p in zip(range(3), (1, 0.5, None), strict=True)]
    with store.begin() as conn:
        assert insert_columns(conn, outbox, first, ignoring_conflicts_on=["dedupe_key"]) == 3
    again = [_row(run, i, 0.25) for i in range(5)]
    with store.begin() as conn:
        assert insert_columns(conn, outbox, again, ignoring_conflicts_on=["dedupe_key"]) == 2
    with store.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.customer_id,
                outbox.c.variant,
                outbox.c.choice_probability,
                outbox.c.send_at,
                outbox.c.trigger_at,
            ).order_by(outbox.c.customer_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("c0", None, 1.0, NOW, None),
        ("c1", "b", 0.5, NOW, None),
        ("c2", None, None, NOW, None),
        ("c3", "b", 0.25, NOW, None),
        ("c4", None, 0.25, NOW, None),
    ]


def test_insert_columns_writes_json_as_json(store: Store) -> None:
    _run(store, 1)
    properties = {"outbox_id": 7, "local_hour": None, "campaign": "blast", "quote": 'it\'s "x"'}
    row = {
        "event_id": "sent:7",
        "customer_id": "c0",
        "type": "message_sent",
        "ts": NOW,
        "value": None,
        "properties": properties,
    }
    with store.begin() as conn:
        assert insert_columns(conn, events, [row]) == 1
    with store.connect() as conn:
        stored = conn.execute(select(events.c.properties, events.c.ts)).one()
    assert stored == (properties, NOW)


def test_among_means_in(store: Store) -> None:
    run = _run(store, 4)
    with store.begin() as conn:
        insert_columns(conn, outbox, [_row(run, i, 1.0) for i in range(4)])
    with store.connect() as conn:
        ids = sorted(conn.execute(select(outbox.c.id)).scalars())

        def matching(column: ColumnElement[Any], values: list[Any]) -> list[str]:
            query = select(outbox.c.customer_id).where(among(conn, column, values))
            return sorted(conn.execute(query).scalars())

        assert matching(outbox.c.id, [ids[0], ids[2], -1]) == ["c0", "c2"]
        assert matching(outbox.c.customer_id, ["c3", "c1", "nobody"]) == ["c1", "c3"]
        assert matching(outbox.c.id, []) == []
