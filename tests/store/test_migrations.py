"""The migrations build exactly the schema the code queries, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from narrowcast.store import Store, StoreNotReady, head_revision
from narrowcast.store.schema import metadata


def test_migrations_match_the_schema_module(store: Store) -> None:
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent(store: Store) -> None:
    store.upgrade()
    store.upgrade()
    assert store.current_revision() == head_revision()
    store.require_current()


def test_a_new_database_is_not_ready_until_upgraded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        try:
            store.require_current()
        except StoreNotReady as exc:
            assert "narrowcast db upgrade" in str(exc)
        else:
            raise AssertionError("an empty database must not pass require_current()")
        store.upgrade()
        store.require_current()
        assert {"customers", "events", "consents"} <= set(inspect(store.engine).get_table_names())
    finally:
        store.dispose()
