"""Alembic environment: always run on the connection ``Store.upgrade`` passes in."""

from __future__ import annotations

from alembic import context

from narrowcast.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
