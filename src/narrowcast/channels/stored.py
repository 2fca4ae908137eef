"""Adapters whose "provider" is the store: the in-app inbox and web messages.

The message is written to a table that the HTTP API serves to apps and
browsers. The write is an insert keyed by the outbox id that does nothing when
the row is already there, so a resend after a crash is a no-op: in-app and web
messages are delivered exactly once, and a resend never resets what the
customer already read or dismissed.

Database work runs in a thread (``asyncio.to_thread``) so the event loop keeps
serving the network adapters; the transaction is the store's
(``Store.begin()``), one per batch.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from narrowcast.channels.base import Channel, ChannelContext, Message, Receipt, Result, check_batch
from narrowcast.channels.errors import ChannelConfigError, PermanentError, TransientError
from narrowcast.channels.settings import StoredSettings
from narrowcast.store import Store, StoreError
from narrowcast.store.schema import customers

CONTENT_PARTS = ("title", "body", "cta_label", "cta_url", "image")


class StoredChannel(Channel[StoredSettings]):
    """Write each message as one row of ``table``, keyed by its outbox id."""

    settings_model = StoredSettings
    table: ClassVar[Table]

    def __init__(self, settings: StoredSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch

    @property
    def store(self) -> Store:
        if self.context.store is None:
            raise ChannelConfigError(f"the {self.name} channel needs the store; none was given")
        return self.context.store

    async def open(self) -> None:
        await asyncio.to_thread(self.store.require_current)

    @abc.abstractmethod
    def row(self, message: Message) -> dict[str, Any] | PermanentError:
        """The table row for ``message`` (without id), or why it cannot be stored."""

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        return await asyncio.to_thread(self._store_all, batch)

    def _store_all(self, batch: Sequence[Message]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        rows: dict[int, dict[str, Any]] = {}
        for index, message in enumerate(batch):
            row = self.row(message)
            if isinstance(row, PermanentError):
                results[index] = row
            else:
                rows[index] = row
        try:
            with self.store.begin() as conn:
                ids = self._write(conn, batch, rows, results)
        except (SQLAlchemyError, StoreError) as exc:
            detail = getattr(exc, "orig", None) or exc
            for index in rows:
                results[index] = TransientError(
                    f"{self.name}: the store refused the write: {type(detail).__name__}: {detail}",
                    outbox_id=batch[index].outbox_id,
                )
        else:
            for index in rows:
                if results[index] is None:
                    outbox_id = batch[index].outbox_id
                    results[index] = Receipt(outbox_id, self.name, str(ids[outbox_id]))
        return [result for result in results if result is not None]

    def _write(
        self,
        conn: Connection,
        batch: Sequence[Message],
        rows: dict[int, dict[str, Any]],
        results: list[Result | None],
    ) -> dict[int, int]:
        wanted = {row["customer_id"] for row in rows.values() if row["customer_id"] is not None}
        known = set(
            conn.scalars(select(customers.c.id).where(customers.c.id.in_(wanted))) if wanted else []
        )
        for index, row in list(rows.items()):
            if row["customer_id"] is not None and row["customer_id"] not in known:
                results[index] = PermanentError(
                    f"{self.name}: customer {row['customer_id']!r} is not in the store",
                    outbox_id=batch[index].outbox_id,
                )
                del rows[index]
        if not rows:
            return {}
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(self.table).on_conflict_do_nothing(index_elements=["outbox_id"]),
            list(rows.values()),
        )
        outbox_ids = [row["outbox_id"] for row in rows.values()]
        found = conn.execute(
            select(self.table.c.outbox_id, self.table.c.id).where(
                self.table.c.outbox_id.in_(outbox_ids)
            )
        )
        return {outbox_id: row_id for outbox_id, row_id in found}


def content(message: Message) -> dict[str, Any]:
    """The parts an app or browser shows, without empty ones."""
    return {name: message.parts[name] for name in CONTENT_PARTS if message.parts.get(name)}
