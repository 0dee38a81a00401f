"""Fixtures: every API test runs on SQLite, PostgreSQL and MariaDB, each in its own fresh
database built by the migrations, through the real app over HTTP (httpx)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from ecommerce.app import create_app
from ecommerce.models import metadata
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import upgrade
from ecommerce.platform.settings import Settings
from tests.backends import REDIS_URL, RUN_ID, create_database, drop_database, require

DB_KINDS = ["sqlite", "postgres", "mysql"]
TEST_SECRET = "test-signing-key-that-is-long-enough-for-hs256"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "redis_prefix": f"test:{RUN_ID}",
        "jwt_secret": TEST_SECRET,
        "jwt_ttl_seconds": 400 * 86400,  # tests move the clock by days and weeks
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "rate_limit_login": "0",
        "rate_limit_login_account": "0",
        "rate_limit_claim": "0",
        "rate_limit_signup": "0",
        "admin_username": None,
        "admin_password": None,
        "data_platform_url": None,
        "access_log": False,
        "run_consumers": False,
        # xdist runs four test processes against one PostgreSQL of 100 connections (see
        # tests/e2e/conftest.py for the servers they start): at most 4 + 4 each in process.
        "db_pool_size": 4,
        "db_pool_overflow": 4,
        "top_sellers_cache_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session", params=DB_KINDS)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """One fresh, migrated database per backend for the whole session."""
    kind = request.param
    url = await create_database(kind)
    try:
        upgrade(url)
        yield url
    finally:
        await drop_database(kind, url)


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by database
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `databases("postgres")` runs on those databases only. Then the order:
    the tests on no database first, then each database's, and within each the ones that
    start servers or command-line processes (tests/e2e/, tests/test_cli.py: the slowest)
    first, so the test processes end on short
    tests together instead of one running a long one alone (each process still goes
    through the databases in turn, creating each once)."""
    dropped = []
    for item in items:
        marker = item.get_closest_marker("databases")
        callspec = getattr(item, "callspec", None)
        if marker and callspec and callspec.params.get("database_url") not in marker.args:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]
    databases = {kind: n for n, kind in enumerate(DB_KINDS, start=1)}

    def place(item: pytest.Item) -> tuple[int, bool]:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("database_url") if callspec else None
        slow = item.nodeid.startswith(("tests/e2e/", "tests/test_cli.py"))
        return databases.get(kind, 0), not slow

    items.sort(key=place)  # stable: the order within each part stays pytest's


@pytest.fixture
def db_kind(database_url: str) -> str:
    return database_url.split(":")[0].split("+")[0].replace("postgresql", "postgres")


@pytest.fixture
def redis_url() -> str:
    return require("redis", REDIS_URL)


async def wipe(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            for table in reversed(metadata.sorted_tables):
                if table.name == "catalog_state":  # one row the migration made; keep it
                    continue
                await uow.conn.execute(delete(table))
    finally:
        await db.dispose()


async def wipe_redis(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@dataclass
class Shop:
    """A running app for one test: its HTTP client, context and clock."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    settings: Settings
    # What the test opened that holds connections (a consumer's runner): closed after it.
    closing: list[Any] = field(default_factory=list)

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    @property
    def db(self) -> Database:
        return self.ctx.db


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the app's settings."""
    return {}


@pytest.fixture
async def shop(database_url: str, settings_overrides: dict[str, Any]) -> AsyncIterator[Shop]:
    await wipe(database_url)
    settings = make_settings(database_url, **settings_overrides)
    if settings.redis_url:
        await wipe_redis(settings.redis_url, settings.redis_prefix)
    clock = Clock()
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            shop = Shop(app, client, clock, settings)
            try:
                yield shop
            finally:
                for opened in shop.closing:
                    await opened.close()


@pytest.fixture
def client(shop: Shop) -> httpx.AsyncClient:
    return shop.client


os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
