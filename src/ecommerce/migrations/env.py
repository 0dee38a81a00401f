"""Alembic environment: async engines, one history for SQLite, PostgreSQL and MySQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ecommerce.models import metadata
from ecommerce.platform.engines import create_engine
from ecommerce.platform.settings import Settings

config = context.config
_LOCK = 7_305_001  # any constant: serialises concurrent upgrades from several processes


def _url() -> str:
    return config.attributes.get("database_url") or Settings().database_url


def _migrate(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect == "mysql":  # DDL commits as it goes in MySQL: a lock for the session
        connection.execute(text(f"SELECT GET_LOCK('ecommerce_migrate_{_LOCK}', 120)"))
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=dialect == "sqlite", compare_type=True)
        with context.begin_transaction():
            if dialect == "postgresql":
                # PostgreSQL runs every migration in this one transaction, so the lock is
                # the transaction's: released at its end, also through PgBouncer in
                # transaction mode, where a session's lock would stay on a server
                # connection that another client gets next.
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))
            context.run_migrations()
        connection.commit()
    finally:
        if dialect == "mysql":
            connection.execute(text(f"SELECT RELEASE_LOCK('ecommerce_migrate_{_LOCK}')"))
        connection.commit()


async def _run() -> None:
    engine = create_engine(_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _in_thread_if_loop_running() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run())
        return
    # Called from async code (tests): run on a fresh loop in another thread.
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_run())
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    _in_thread_if_loop_running()
