"""How ``GET /v1/web-messages`` reads the store: one statement, outside a transaction.

What it shows a visitor is ``test_web.py``; these check what the hot path's
shortcuts must not break — a pooled connection handed back after an
autocommit read still rolls a later write transaction back, and on PostgreSQL
the lookup is one fixed SQL text (so psycopg can prepare it) that answers
exactly what SQLAlchemy's execution of the same statement answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, insert, select

from narrowcast.api.web import _postgresql_targeting, _targeting, targeted
from narrowcast.store import Store
from narrowcast.store.schema import customers, web_messages, web_views

NOW = datetime.now(UTC).replace(microsecond=0)


def test_a_read_connection_leaves_no_autocommit_behind(store: Store) -> None:
    store.upgrade()
    for attempt in range(3):  # the pool hands the same connection back each time
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 0
        with pytest.raises(RuntimeError), store.begin() as conn:
            conn.execute(
                insert(customers).values(
                    id=f"c{attempt}", created_at=NOW, updated_at=NOW, attributes={}
                )
            )
            raise RuntimeError("roll back")
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 0


@pytest.mark.postgres
def test_the_postgresql_lookup_is_one_fixed_text(postgres_store: Store) -> None:
    dialect = postgres_store.engine.dialect
    for known_customer in (False, True):
        sql, constants = _postgresql_targeting(dialect, known_customer)
        assert "POSTCOMPILE" not in sql  # no IN list rendered per request
        assert "= ANY (%(keys)s" in sql
        assert {"keys", "visitors", "now"}.isdisjoint(constants)


@pytest.mark.postgres
def test_the_postgresql_lookup_answers_what_sqlalchemy_answers(postgres_store: Store) -> None:
    store = postgres_store
    store.upgrade()
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [{"id": c, "created_at": NOW, "updated_at": NOW, "attributes": {}} for c in "ab"],
        )
        rows: list[dict[str, Any]] = []
        for n, (customer, placement, visitor, referrers, path) in enumerate(
            [
                (None, "banner", "any", [], "*"),
                (None, "banner", "new", ["search"], "/shoes/*"),
                (None, "modal", "returning", ["email", "social"], "*"),
                (None, "toast", "any", ["direct"], "/sale?"),
                ("a", "banner", "any", [], "*"),
                ("b", "modal", "any", [], "/shoes/*"),
            ]
        ):
            rows.append(
                {
                    "outbox_id": 100 + n,
                    "customer_id": customer,
                    "campaign": f"c{n}",
                    "variant": None,
                    "placement": placement,
                    "visitor": visitor,
                    "referrers": referrers,
                    "path": path,
                    "survey": None,
                    "parts": {"title": f"t{n}", "body": 'ü "q" <b>'},
                    "created_at": NOW - timedelta(minutes=n),
                    "expires_at": NOW + timedelta(days=1) if n % 2 else None,
                }
            )
        ids = conn.execute(insert(web_messages).returning(web_messages.c.id), rows).scalars().all()
        conn.execute(
            insert(web_views),
            [
                {"web_message_id": ids[0], "visitor": "v:visitor-1", "views": 3,
                 "first_seen_at": NOW, "last_seen_at": NOW},
                {"web_message_id": ids[4], "visitor": "c:a", "views": 1,
                 "first_seen_at": NOW, "last_seen_at": NOW, "dismissed_at": NOW},
            ],
        )  # fmt: skip
    answered = 0
    for customer in (None, "a", "b"):
        for visitor in ("visitor-1", "visitor-2"):
            for returning in (False, True):
                for referrer in ("search", "email", "direct"):
                    for path in ("/", "/shoes/boots", "/sale1", "/sale12"):
                        visit = {
                            "customer": customer,
                            "visitor": visitor,
                            "returning": returning,
                            "referrer": referrer,
                            "path": path,
                            "now": NOW,
                            "max_views": 3,
                        }
                        with store.read() as conn:
                            fast = targeted(conn, **visit)
                        with store.connect() as conn:
                            slow = _through_sqlalchemy(conn, visit)
                        assert fast == slow, visit
                        answered += len(fast)
    assert answered > 100  # the visits were answered with messages, not all refused


def _through_sqlalchemy(conn: Any, visit: dict[str, Any]) -> list[dict[str, Any]]:
    keys = [f"v:{visit['visitor']}"] + ([f"c:{visit['customer']}"] if visit["customer"] else [])
    params = {
        "keys": keys,
        "visitors": ["any", "returning" if visit["returning"] else "new"],
        "referrer": visit["referrer"],
        "path": visit["path"],
        "now": visit["now"],
        "max_views": visit["max_views"],
        "customer": visit["customer"],
    }
    statement = _targeting("postgresql", visit["customer"] is not None)
    found = conn.execute(statement, params).mappings().all()
    return [{**row, "parts": orjson.loads(row["parts"])} for row in found]
