"""The database: engine creation per backend, and the unit of work (one transaction).

A unit of work is opened at the boundary (a request handler, a CLI command, a relay batch)
with `async with uow:`; it commits when the block ends cleanly and rolls back otherwise.
Services receive it and run their repositories' statements on `uow.conn`; they never commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy import Engine, MetaData, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)
log = logging.getLogger("ecommerce.database")

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg", "mysql": "mysql+asyncmy", "mariadb": "mysql+asyncmy"}


def driver_connection_errors() -> tuple[type[BaseException], ...]:
    """The drivers' own "the connection is gone" errors. SQLAlchemy wraps those raised by
    statements, but not those raised while the pool sets up a new connection."""
    import asyncmy.errors
    import asyncpg.exceptions

    return (asyncpg.exceptions.InterfaceError, asyncpg.exceptions.PostgresConnectionError,
            asyncmy.errors.OperationalError, asyncmy.errors.InterfaceError)


def async_url(url: str) -> str:
    """Map a plain `postgresql://`, `mysql://` or `sqlite:///` URL to its async driver."""
    parsed = make_url(url)
    backend = parsed.drivername.split("+")[0]
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else database


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine tuned for the backend (WAL and immediate write locks on SQLite)."""
    url = async_url(url)
    dialect = make_url(url).get_backend_name()
    if dialect == "sqlite":
        path = _sqlite_file(url)
        if path:
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0,
                                     connect_args={"timeout": 30})
        _sqlite_transactions(engine)
        return engine
    # No pre-ping (it costs a round trip per checkout): a dead connection surfaces as a
    # 503 once and is replaced; pool_recycle retires connections before servers drop them.
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 10,
                               "pool_recycle": 1800}
    if dialect == "mysql":
        # READ COMMITTED: conditional updates see the latest row and InnoDB takes no gap locks.
        options["isolation_level"] = "READ COMMITTED"
    return create_async_engine(url, **options)


def _sqlite_transactions(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writing transaction takes the write lock up front, so two writers never
        # deadlock upgrading a read lock; readers use a plain deferred BEGIN.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_inline_reader(url: str, *, pool_size: int = 20) -> Engine | None:
    """For a SQLite file: a synchronous engine whose read-only connections run their
    statements on the calling thread, the event loop's (decision 33). None otherwise.

    Through aiosqlite every statement is several hand-offs to a connection's thread and
    back (~0.2 ms each, more while the loop is busy); a read of a few indexed rows takes
    tens of microseconds. In WAL mode a reader never waits for a writer, so running it
    inline does not stall the loop. The pool never blocks (unbounded overflow): a read
    that awaits something else (Redis) while holding a connection cannot starve the loop.
    Reads that may scan go to a thread anyway: `UnitOfWork.scan_conn`."""
    path = _sqlite_file(url)
    if make_url(url).get_backend_name() != "sqlite" or path is None:
        return None
    engine = create_sync_engine(
        make_url(url).set(drivername="sqlite"), pool_size=pool_size, max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": 1})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":  # e.g. a file system without shared memory: reads may wait
            log.warning("SQLite is not in WAL mode", extra={"journal_mode": mode})
        cursor.execute("PRAGMA query_only=ON")  # these connections never write
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN DEFERRED")  # one snapshot for the unit of work's reads

    return engine


class InlineConnection:
    """A synchronous SQLite connection behind the part of `AsyncConnection` the
    repositories use (`await conn.execute(...)`, `conn.dialect`). Nothing here suspends:
    the statement runs on the event loop's thread and the awaits return at once."""

    __slots__ = ("sync",)

    def __init__(self, sync: Connection):
        self.sync = sync

    @property
    def dialect(self) -> Any:
        return self.sync.dialect

    async def execute(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        return self.sync.execute(statement, parameters, **options)

    async def commit(self) -> None:
        self.sync.commit()

    async def rollback(self) -> None:
        self.sync.rollback()

    async def close(self) -> None:
        self.sync.close()


class ThreadedConnection(InlineConnection):
    """The same connection, each statement run and its rows read in a worker thread."""

    __slots__ = ()

    async def execute(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        def run() -> Any:
            return self.sync.execute(statement, parameters, **options).freeze()

        return (await asyncio.to_thread(run))()


class Database:
    """The engine plus what the unit of work needs to know about the backend."""

    def __init__(self, url: str, *, pool_size: int = 20):
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name  # "sqlite", "postgresql" or "mysql"
        self.inline_reader = create_inline_reader(url, pool_size=pool_size)
        # SQLite has one writer at a time: queue this process's writers here instead of
        # letting them spin on the file lock (other processes still wait on busy_timeout).
        self._sqlite_writer = asyncio.Lock() if self.dialect == "sqlite" else None

    def uow(self, *, write: bool = True, one_write: bool = False) -> UnitOfWork:
        """A unit of work. `one_write`: the work writes in at most one statement (and
        after it only to caches), so on PostgreSQL it may run without BEGIN and COMMIT."""
        return UnitOfWork(self, write=write, one_write=one_write)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.inline_reader is not None:
            self.inline_reader.dispose()


AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """One database transaction; commits on clean exit, rolls back on any exception."""

    def __init__(self, db: Database, *, write: bool = True, one_write: bool = False):
        self.db = db
        self.write = write
        self.dialect = db.dialect
        # On PostgreSQL (READ COMMITTED, where each statement reads its own snapshot
        # anyway) a unit of work that reads, or writes in one statement, needs no BEGIN
        # and COMMIT: two round trips fewer. asyncpg's autocommit is a client-side
        # switch, free to set and reset. (On MySQL the switch is a round trip itself.)
        self.autocommit = db.dialect == "postgresql" and (one_write or not write)
        self._conn: AsyncConnection | None = None
        self.inline = not write and db.inline_reader is not None
        self._after_commit: list[AfterCommit] = []
        self.events: list[Any] = []

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._locked = False
        if self.write and self.db._sqlite_writer is not None:
            await self.db._sqlite_writer.acquire()
            self._locked = True
        if self.inline:
            sync = cast(Engine, self.db.inline_reader).connect()
            try:
                sync.begin()
            except BaseException:
                sync.close()
                raise
            return self._opened(cast(AsyncConnection, InlineConnection(sync)))
        try:
            conn = await self.db.engine.connect()
            try:
                if self.dialect == "sqlite":
                    mode = "IMMEDIATE" if self.write else "DEFERRED"
                    conn = await conn.execution_options(sqlite_begin=mode)
                elif self.autocommit:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            self._release()
            raise
        return self._opened(conn)

    def _opened(self, conn: AsyncConnection) -> UnitOfWork:
        self._conn = conn
        self._after_commit = []
        self.events = []
        return self

    @property
    def scan_conn(self) -> AsyncConnection:
        """The connection for a statement that may take long (a keyword scan): this unit
        of work's own, except that an inline SQLite read runs it in a worker thread, so
        that the event loop goes on serving meanwhile (one hand-off each way)."""
        if isinstance(self._conn, InlineConnection):
            return cast(AsyncConnection, ThreadedConnection(self._conn.sync))
        return self.conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self.conn
        committed = False
        try:
            if exc_type is None:
                if self.events:
                    from ecommerce.events import outbox

                    await outbox.write(conn, self.events)
                    self.wrote_events()
                await conn.commit()
                committed = True
            else:
                await conn.rollback()
        finally:
            try:
                await conn.close()
            finally:
                self._conn = None
                self._release()
        if committed:
            for callback in self._after_commit:
                await callback()

    def _release(self) -> None:
        if self._locked and self.db._sqlite_writer is not None:
            self.db._sqlite_writer.release()
            self._locked = False

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction has committed (cache, Redis, wake-ups)."""
        self._after_commit.append(callback)

    def wrote_events(self) -> None:
        """Outbox rows were written in this transaction: wake the relay once it commits."""
        self.after_commit(_notify_relay)

    def record(self, domain_event: Any) -> None:
        """Collect a domain event; it is written to the outbox in this transaction."""
        self.events.append(domain_event)


async def _notify_relay() -> None:
    from ecommerce.events import outbox

    outbox.notify()


class RetryTransaction(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a unit of work to have it rolled back and run again from scratch."""


def is_deadlock(error: BaseException) -> bool:
    """A deadlock or serialisation failure: the whole transaction may simply be retried."""
    if isinstance(error, RetryTransaction):
        return True
    if not isinstance(error, DBAPIError):
        return False
    text = str(error.orig).lower()
    return any(marker in text for marker in ("deadlock", "1213", "40p01", "40001",
                                             "could not serialize"))


async def create_scratch_database(server_url: str, prefix: str) -> str:
    """A new, empty database named `prefix_<random>` on this PostgreSQL or MySQL server
    (for tests and benchmarks); returns its URL."""
    import uuid

    from sqlalchemy import text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(server_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            charset = (" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                       if engine.dialect.name == "mysql" else "")
            await conn.execute(text(f"CREATE DATABASE {name}{charset}"))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(server_url: str, url: str) -> None:
    """Drop a database made by `create_scratch_database` (closing its sessions on PG)."""
    from sqlalchemy import text

    engine = create_engine(server_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
            await conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database}{force}"))
    finally:
        await engine.dispose()
