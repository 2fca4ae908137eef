"""How ``GET /v1/web-messages`` reads the store: one statement, outside a transaction.

What it shows a visitor is ``test_web.py``; these check what the hot path's
shortcuts must not break — autocommit reads leave write transactions as they
were, a read connection the server dropped is replaced without the lookup
failing (the ping it skips would have done that), and on PostgreSQL the lookup
is one fixed SQL text (so psycopg can prepare it) that answers exactly what
SQLAlchemy's execution of the same statement answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, create_engine, func, insert, select, text

from narrowcast.api.web import _postgresql_targeting, _targeting, targeted
from narrowcast.store import Store
from narrowcast.store.schema import customers, web_messages, web_views

NOW = datetime.now(UTC).replace(microsecond=0)


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(customers)).scalar_one())


def test_reads_leave_write_transactions_as_they_were(store: Store) -> None:
    store.upgrade()
    for attempt in range(3):
        assert store.read(_count) == 0
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
def test_a_read_connection_the_server_dropped_is_replaced(postgres_store: Store) -> None:
    store = postgres_store
    store.upgrade()
    admin = create_engine(store.url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def backend(conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def drop(pid: int) -> None:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    # The same pooled connection comes back, dead; a read through SQLAlchemy still answers,
    first = store.read(backend)
    drop(first)
    assert store.read(_count) == 0
    # and so does one on the driver's own cursor (the lookup's way).
    second = store.read(backend)
    assert second != first
    drop(second)
    visit = {"visitor": "visitor-1", "returning": False, "referrer": "direct", "path": "/"}
    assert (
        store.read(lambda conn: targeted(conn, customer=None, now=NOW, max_views=3, **visit)) == []
    )
    assert store.read(backend) not in (first, second)
    admin.dispose()


def test_a_failing_read_is_not_retried(store: Store) -> None:
    store.upgrade()
    calls = []

    def broken(conn: Connection) -> None:
        calls.append(1)
        conn.exec_driver_sql("SELECT no_such_column FROM customers")

    with pytest.raises(Exception, match="no_such_column"):
        store.read(broken)
    assert calls == [1]


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
                        fast = store.read(lambda conn, visit=visit: targeted(conn, **visit))
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
