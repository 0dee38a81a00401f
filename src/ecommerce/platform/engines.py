"""Engines per backend: the async engine (WAL and immediate write locks on SQLite, READ
COMMITTED on MySQL), SQLite's inline reader and its connections, and the drivers'
"connection is gone" errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


PGBOUNCER_FLAG = "pgbouncer"


def behind_pgbouncer(url: str) -> bool:
    """Whether a PostgreSQL URL says it reaches the database through PgBouncer in
    transaction mode (`?pgbouncer=true`, the flag other clients use for the same)."""
    value = make_url(url).query.get(PGBOUNCER_FLAG, "")
    return str(value).lower() in ("1", "true", "yes", "on")


def _unnamed_statement() -> str:
    return ""  # PostgreSQL's unnamed statement: replaced by the next Parse, never kept


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else database


def create_engine(url: str, *, pool_size: int = 20, overflow: int = 10) -> AsyncEngine:
    """An async engine tuned for the backend (WAL and immediate write locks on SQLite);
    on a server database at most `pool_size` + `overflow` connections."""
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
    # LIFO: the connection used last is used next, so under light load the same few stay
    # busy with their prepared statements warm (each connection prepares each statement
    # once; FIFO handed every batch a different, colder one) and the rest may idle out.
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": overflow,
                               "pool_recycle": 1800, "pool_use_lifo": True}
    if dialect == "mysql":
        # READ COMMITTED: conditional updates see the latest row and InnoDB takes no gap locks.
        options["isolation_level"] = "READ COMMITTED"
    if PGBOUNCER_FLAG in make_url(url).query:
        if dialect != "postgresql":
            raise ValueError(f"?{PGBOUNCER_FLAG}= is for PostgreSQL URLs (PgBouncer pools "
                             f"PostgreSQL connections); remove it from this {dialect} URL")
        pooled = behind_pgbouncer(url)
        url = make_url(url).difference_update_query([PGBOUNCER_FLAG]).render_as_string(
            hide_password=False)
        if pooled:
            url, options["connect_args"] = _through_pgbouncer(url)
    return create_async_engine(url, **options)


def _through_pgbouncer(url: str) -> tuple[str, dict[str, Any]]:
    """PgBouncer in transaction mode (1.18, as Debian ships it, keeps no prepared
    statement across transactions) hands each transaction whichever server connection is
    free, so a statement prepared in one may be missing in the next (decision 54). Here
    SQLAlchemy and asyncpg keep no statement cache, and every statement is PostgreSQL's
    unnamed one, which asyncpg Parses again with its Bind and Execute (its mode for
    PgBouncer) and the next statement replaces: nothing is left on a server connection
    for another client to meet. Each statement costs a Parse and a round trip more."""
    url = make_url(url).update_query_dict({"prepared_statement_cache_size": "0"})
    return (url.render_as_string(hide_password=False),
            {"statement_cache_size": 0, "prepared_statement_name_func": _unnamed_statement})


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


