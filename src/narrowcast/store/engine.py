"""One ``Store`` per database: the engine, its transactions and its schema version.

Only this package opens connections and transactions; everything else receives
a ``Connection`` from ``Store.begin()`` (a write transaction) or
``Store.connect()`` (reads) and never commits behind its caller's back.

SQLite is configured for a worker that writes while others read: WAL, foreign
keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions —
a deferred transaction that later upgrades to a write fails with "database is
locked" at once, whatever the busy timeout.
See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from narrowcast.store.errors import StoreError, StoreNotReady

T = TypeVar("T")

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any 64-bit constant works; it only has to be the same in every worker.
_UPGRADE_LOCK = 0x6E6172726F77  # "narrow"
SQLITE_BUSY_TIMEOUT_MS = 30_000


POOL_SIZE = 16
"""Connections each process keeps open (the API's request threads, the worker's loops)."""
POOL_OVERFLOW = 16
"""More, opened for a burst and closed after it."""
READ_POOL_SIZE = 2
"""Connections each process keeps for ``read`` (the API answers lookups one at a time
per process, on its event loop), and as many more for a burst."""


class Store:
    """The customer store behind one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"database url {url!r} is not a valid URL: {exc}") from exc
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(
                f"database url {parsed.render_as_string(hide_password=True)!r}: narrowcast runs on "
                "SQLite (sqlite:///file.db) or PostgreSQL (postgresql+psycopg://…)"
            )
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        # A restarted or failed-over server leaves dead connections in the pool: test
        # each on checkout (one round trip) rather than fail the next statement.
        pre_ping = parsed.get_backend_name() == "postgresql"
        # Kept connections: the API serves requests from a thread pool, and a connection
        # opened per request beyond the pool (then closed) costs more than the query.
        self.engine: Engine = create_engine(
            parsed,
            echo=echo,
            future=True,
            pool_pre_ping=pre_ping,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )
        self._reader: Engine | None = None
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        else:
            # ``read``'s own small pool: autocommit, no ping on checkout, nothing to
            # reset on return (see ``read``). No connection is opened until one is used.
            self._reader = create_engine(
                parsed,
                echo=echo,
                future=True,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                pool_size=READ_POOL_SIZE,
                max_overflow=READ_POOL_SIZE,
            )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        with self._connect() as conn:
            conn = conn.execution_options(narrowcast_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads; nothing it does is committed."""
        with self._connect() as conn, conn.begin() as tx:
            yield conn
            tx.rollback()

    def read(self, statement: Callable[[Connection], T]) -> T:
        """``statement(conn)``: a hot read of one statement; nothing may be written.

        On PostgreSQL the connection is in autocommit mode and is not pinged
        first: a pooled read otherwise costs four round trips (the pool's ping,
        BEGIN, the statement, ROLLBACK) where one does — and a lookup answered on
        every page view of a shop waits on each. A connection that turns out dead
        (a restarted or failed-over server) is replaced and ``statement`` run
        again once, so callers see no more failures than with the ping — hence
        reads only. A write through it would be committed at once: writes use
        ``begin()``. On SQLite it is ``connect()``.
        """
        if self._reader is None:
            with self.connect() as conn:
                return statement(conn)
        for attempt in (1, 2):
            with self._connect(self._reader) as conn:
                driver = conn.connection.dbapi_connection
                try:
                    return statement(conn)
                except Exception as exc:
                    if attempt == 2 or not self._lost(exc, driver):
                        raise
                    conn.invalidate()
            # The other pooled read connections date from before the loss too.
            self._reader.dispose(close=False)
        raise AssertionError("unreachable")

    def _lost(self, exc: Exception, driver: Any) -> bool:
        """Whether ``exc`` says the connection is gone (SQLAlchemy's or the driver's own)."""
        if isinstance(exc, DBAPIError):
            return exc.connection_invalidated
        dialect = self.engine.dialect
        return isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
            exc, driver, None
        )

    @contextmanager
    def _connect(self, engine: Engine | None = None) -> Iterator[Connection]:
        try:
            conn = (engine or self.engine).connect()
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self!r}: {exc.orig}") from exc
        with conn:
            yield conn

    def upgrade(self) -> None:
        """Bring the schema to the newest version; safe to call any number of times."""
        with self.begin() as conn:
            if self.dialect == "postgresql":
                # Several workers starting at once must not race through the migrations.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def current_revision(self) -> str | None:
        with self.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def require_current(self) -> None:
        """Raise ``StoreNotReady`` unless the schema is at the newest version."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        current = self.current_revision()
        if current != head:
            raise StoreNotReady(
                f"the database {self!r} is at schema version {current or 'none'}, "
                f"this narrowcast needs {head} — run `narrowcast db upgrade`"
            )

    def dispose(self) -> None:
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("narrowcast_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
