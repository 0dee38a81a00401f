"""Scratch databases on a PostgreSQL or MySQL server, for tests and benchmarks."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from ecommerce.platform.engines import create_engine


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
