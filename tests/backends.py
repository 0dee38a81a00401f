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

from tests.scratch import create_scratch_database, drop_scratch_database


def _url_for(kind: str) -> str | None:
    explicit = os.environ.get(f"TEST_{kind.upper()}_URL")
    if explicit:
        return explicit
    generic = os.environ.get("REDIS_URL" if kind == "redis" else "DATABASE_URL", "")
    prefixes = {"postgres": ("postgres",), "mysql": ("mysql", "mariadb"), "redis": ("redis",)}
    return generic if generic.startswith(prefixes[kind]) else None


# A refusal made before any database work (a body's shape, size or media type, a query's
# parameters): the same code on every backend, so such a test runs on SQLite only, and CI's
# minutes go to what differs between databases (docs/testing.md).
BEFORE_THE_DATABASE = pytest.mark.databases("sqlite")

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
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ecommerce-test-"))
        return f"sqlite:///{folder / 'shop.db'}"
    server = require(kind, POSTGRES_URL if kind == "postgres" else MYSQL_URL)
    return await create_scratch_database(server, f"ecommerce_test_{RUN_ID}")


async def drop_database(kind: str, url: str) -> None:
    if kind == "sqlite":
        return
    server = POSTGRES_URL if kind == "postgres" else MYSQL_URL
    assert server
    await drop_scratch_database(server, url)
