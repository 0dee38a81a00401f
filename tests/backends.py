"""Which real backends this test run has, and fresh databases on them.

SQLite always runs. PostgreSQL, MySQL/MariaDB and Redis run when their URL is set:
TEST_POSTGRES_URL / TEST_MYSQL_URL / TEST_REDIS_URL, or DATABASE_URL / REDIS_URL of that
kind. With REQUIRE_BACKENDS=1 (CI) a missing backend fails the run instead of skipping."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ecommerce.platform.database import create_engine


def _url_for(kind: str) -> str | None:
    explicit = os.environ.get(f"TEST_{kind.upper()}_URL")
    if explicit:
        return explicit
    generic = os.environ.get("REDIS_URL" if kind == "redis" else "DATABASE_URL", "")
    prefixes = {"postgres": ("postgres",), "mysql": ("mysql", "mariadb"), "redis": ("redis",)}
    return generic if generic.startswith(prefixes[kind]) else None


POSTGRES_URL = _url_for("postgres")
MYSQL_URL = _url_for("mysql")
REDIS_URL = _url_for("redis")
REQUIRED = os.environ.get("REQUIRE_BACKENDS") == "1"
RUN_ID = uuid.uuid4().hex[:10]


def require(kind: str, url: str | None) -> str:
    """The URL, or skip (fail under REQUIRE_BACKENDS=1) with a clear reason."""
    if url:
        return url
    reason = f"{kind} not configured: set TEST_{kind.upper()}_URL to run these tests"
    if REQUIRED:
        pytest.fail(f"REQUIRE_BACKENDS=1 but {reason}")
    pytest.skip(reason)


async def create_database(kind: str) -> str:
    """A new empty database of this kind; returns its URL."""
    name = f"ecommerce_test_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ecommerce-test-"))
        return f"sqlite:///{folder / 'shop.db'}"
    server = require(kind, POSTGRES_URL if kind == "postgres" else MYSQL_URL)
    engine = create_engine(server, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if kind == "mysql" else ""
        await conn.execute(text(f"CREATE DATABASE {name}{suffix}"))
    await engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def drop_database(kind: str, url: str) -> None:
    if kind == "sqlite":
        return
    server = POSTGRES_URL if kind == "postgres" else MYSQL_URL
    assert server
    name = make_url(url).database
    engine = create_engine(server, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        force = " WITH (FORCE)" if kind == "postgres" else ""
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
    await engine.dispose()
