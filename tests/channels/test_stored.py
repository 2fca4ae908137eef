"""The in-app and web adapters write to the store exactly once per outbox id, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import insert, select

from narrowcast.channels import ChannelContext, Message, PermanentError, Receipt, Result
from narrowcast.channels.inapp import InAppChannel
from narrowcast.channels.settings import StoredSettings
from narrowcast.channels.stored import StoredChannel
from narrowcast.channels.web import WebChannel
from narrowcast.store import Store
from narrowcast.store.schema import customers, inbox_messages, web_messages

from .messages import NOW, in_app, web


def _customers(store: Store, *ids: str) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [{"id": i, "created_at": NOW, "updated_at": NOW, "attributes": {}} for i in ids],
        )


def send(adapter: type[StoredChannel], store: Store, batch: Sequence[Message]) -> list[Result]:
    channel = adapter(StoredSettings(), ChannelContext(store=store, clock=lambda: NOW))

    async def go() -> list[Result]:
        async with channel:
            return await channel.send(batch)

    return asyncio.run(go())


def test_in_app_messages_land_in_the_inbox_once(store: Store) -> None:
    _customers(store, "c1", "c2")
    first = send(InAppChannel, store, [in_app(1, "c1"), in_app(2, "c2", image="https://i/x.png")])
    again = send(InAppChannel, store, [in_app(1, "c1", title="changed")])
    assert [type(r) for r in first + again] == [Receipt] * 3
    assert first[0] == again[0]  # same row id: the resend was a no-op
    with store.connect() as conn:
        rows = conn.execute(select(inbox_messages).order_by(inbox_messages.c.outbox_id)).all()
    assert len(rows) == 2
    row = rows[0]._mapping
    assert row["customer_id"] == "c1" and row["campaign"] == "arrivals" and row["variant"] == "a"
    assert row["parts"] == {"title": "New arrivals", "body": "Have a look", "cta_label": "See"}
    assert row["created_at"] == NOW and row["expires_at"] == in_app(1).expires_at
    assert row["read_at"] is None and row["clicked_at"] is None and row["dismissed_at"] is None
    assert rows[1]._mapping["parts"]["image"] == "https://i/x.png"


def test_an_unknown_customer_or_missing_part_fails_alone(store: Store) -> None:
    _customers(store, "c1")
    results = send(InAppChannel, store, [in_app(1, "ghost"), in_app(2, "c1", body=""), in_app(3)])
    assert (
        isinstance(results[0], PermanentError)
        and "'ghost' is not in the store" in results[0].reason
    )
    assert isinstance(results[1], PermanentError) and "'body'" in results[1].reason
    assert isinstance(results[2], Receipt)


def test_web_messages_keep_their_targeting(store: Store) -> None:
    _customers(store, "c1")
    anonymous = web(2, customer_id="", placement="modal", survey="nps", targeting={})
    results = send(WebChannel, store, [web(1, "c1"), anonymous])
    assert [type(r) for r in results] == [Receipt, Receipt]
    with store.connect() as conn:
        rows = {r.outbox_id: r._mapping for r in conn.execute(select(web_messages))}
    assert rows[1]["customer_id"] == "c1"
    assert (rows[1]["placement"], rows[1]["visitor"], rows[1]["referrers"], rows[1]["path"]) == (
        "banner",
        "new",
        ["search"],
        "/products/*",
    )
    assert rows[1]["parts"]["cta_url"] == "https://shop.example/guide"
    assert rows[2]["customer_id"] is None
    assert (rows[2]["visitor"], rows[2]["referrers"], rows[2]["path"], rows[2]["survey"]) == (
        "any",
        [],
        "*",
        "nps",
    )


def test_bad_targeting_is_permanent(store: Store) -> None:
    _customers(store, "c1")
    bad = web(1, "c1", placement="popup", targeting={"visitor": "old", "referrer": ["tv"]})
    [result] = send(WebChannel, store, [bad])
    assert isinstance(result, PermanentError)
    assert "placement 'popup'" in result.reason and "'old'" in result.reason
    assert "'tv'" in result.reason


def test_a_store_that_cannot_be_written_is_transient(sqlite_store: Store) -> None:
    _customers(sqlite_store, "c1")
    channel = InAppChannel(StoredSettings(), ChannelContext(store=sqlite_store, clock=lambda: NOW))

    async def go() -> list[Result]:
        async with channel:
            with sqlite_store.begin() as conn:
                conn.exec_driver_sql("DROP TABLE inbox_messages")
            return await channel.send([in_app(1, "c1")])

    [result] = asyncio.run(go())
    assert result.__class__.__name__ == "TransientError" and "store refused" in result.reason  # type: ignore[union-attr]
