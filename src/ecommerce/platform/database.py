"""The unit of work: one database transaction, and the Database it runs on.

A unit of work is opened by a use case (`<domain>/usecases.py`), or by a consumer for its
batches, with `async with db.uow():`; it commits when the block ends cleanly and rolls
back otherwise. Services receive it and run their repositories' statements on `uow.conn`;
they never open or commit one. Domain events recorded on it are written to the outbox in
the same transaction by the `EventStore` the composition root gave the Database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.platform.engines import (
    InlineConnection,
    ThreadedConnection,
    behind_pgbouncer,
    create_engine,
    create_inline_reader,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)
log = logging.getLogger("ecommerce.database")


class EventStore(Protocol):
    """Where a unit of work's domain events go (the events domain's outbox)."""

    async def write(self, conn: AsyncConnection, events: list[Any]) -> None: ...

    def notify(self) -> None: ...


class Database:
    """The engine plus what the unit of work needs to know about the backend."""

    def __init__(self, url: str, *, pool_size: int = 20, overflow: int = 10,
                 events: EventStore | None = None):
        self.url = url
        self.events = events  # set by the composition root; None: recording is refused
        self.engine = create_engine(url, pool_size=pool_size, overflow=overflow)
        self.dialect = self.engine.dialect.name  # "sqlite", "postgresql" or "mysql"
        # Through PgBouncer in transaction mode every unit of work is a transaction: each
        # statement outside one would wait for a server connection twice (SQLAlchemy
        # prepares it in one round trip and runs it in the next), and under contention
        # that cost a flash sale on the cluster twice its time (decision 54).
        self.autocommit_allowed = self.dialect == "postgresql" and not behind_pgbouncer(url)
        self.inline_reader = create_inline_reader(url, pool_size=pool_size)
        # SQLite has one writer at a time: queue this process's writers here instead of
        # letting them spin on the file lock (other processes still wait on busy_timeout).
        self._sqlite_writer = asyncio.Lock() if self.dialect == "sqlite" else None

    def uow(self, *, write: bool = True, one_statement: bool = False) -> UnitOfWork:
        """A unit of work. `one_statement`: the work writes in at most one statement (and
        after it only to caches), so on PostgreSQL it may run without BEGIN and COMMIT."""
        return UnitOfWork(self, write=write, one_statement=one_statement)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.inline_reader is not None:
            self.inline_reader.dispose()


AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """One database transaction; commits on clean exit, rolls back on any exception."""

    def __init__(self, db: Database, *, write: bool = True, one_statement: bool = False):
        self.db = db
        self.write = write
        self.dialect = db.dialect
        # On PostgreSQL (READ COMMITTED, where each statement reads its own snapshot
        # anyway) a unit of work that reads, or writes in one statement, needs no BEGIN
        # and COMMIT: two round trips fewer. asyncpg's autocommit is a client-side
        # switch, free to set and reset. (On MySQL the switch is a round trip itself.)
        self.autocommit = db.autocommit_allowed and (one_statement or not write)
        self._conn: AsyncConnection | None = None
        self.inline = not write and db.inline_reader is not None
        self._after_commit: list[AfterCommit] = []
        self.events: list[Any] = []
        # An Idempotency-Key the work's one statement writes (platform/idempotency.py).
        self.claim: Any = None

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
                    await self._event_store().write(conn, self.events)
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
        """Outbox rows were written in this transaction: wake the consumers and the stream
        publisher of this process once it commits."""
        store = self._event_store()

        async def notify() -> None:
            store.notify()

        self.after_commit(notify)

    def _event_store(self) -> EventStore:
        if self.db.events is None:
            raise RuntimeError("this Database was built without an event store")
        return self.db.events

    def record(self, domain_event: Any) -> None:
        """Collect a domain event; it is written to the outbox in this transaction."""
        self.events.append(domain_event)


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


def shop_refusal(error: BaseException) -> tuple[str, str | None] | None:
    """What a PostgreSQL function of ours refused with (`RAISE EXCEPTION 'shop:<REASON>'`,
    SQLSTATE P0001): (reason, detail), or None if the error is anything else."""
    orig = getattr(error, "orig", None)
    cause = orig.__cause__ if orig is not None else None
    message = str(getattr(cause, "message", "") or "")
    if not message.startswith("shop:"):
        return None
    return message.removeprefix("shop:"), getattr(cause, "detail", None)
