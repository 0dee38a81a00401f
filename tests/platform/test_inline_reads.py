"""SQLite's read-only units of work run their statements on the event loop's thread
(decision 33); keyword scans go to a worker thread. These tests pin what makes that safe."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import OperationalError

from ecommerce.catalog import service
from ecommerce.catalog.listing import Listings
from ecommerce.catalog.models import categories, products
from ecommerce.platform.cache import MemoryCache
from ecommerce.platform.database import Database
from ecommerce.platform.engines import InlineConnection
from ecommerce.platform.migrate import upgrade

NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path}/shop.db"
    upgrade(url)
    database = Database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


async def add_category(db: Database, slug: str) -> None:
    async with db.uow() as uow:
        await uow.conn.execute(insert(categories).values(slug=slug, name=slug, created_at=NOW))


async def slugs(db: Database) -> list[str]:
    async with db.uow(write=False) as uow:
        assert uow.inline and isinstance(uow.conn, InlineConnection)
        return list((await uow.conn.execute(
            select(categories.c.slug).order_by(categories.c.slug))).scalars())


async def test_an_inline_read_sees_the_last_commit_and_never_an_open_write(db: Database):
    await add_category(db, "books")
    assert await slugs(db) == ["books"]
    async with db.uow() as writer:  # holds SQLite's write lock until the block ends
        await writer.conn.execute(insert(categories).values(slug="games", name="games",
                                                            created_at=NOW))
        assert await slugs(db) == ["books"]  # answered at once, from the last commit
    assert await slugs(db) == ["books", "games"]


async def test_an_inline_connection_refuses_to_write(db: Database):
    with pytest.raises(OperationalError, match="readonly"):
        async with db.uow(write=False) as uow:
            await uow.conn.execute(insert(categories).values(slug="x", name="x",
                                                             created_at=NOW))
    assert await slugs(db) == []


async def test_more_reads_at_once_than_the_pool_holds_never_block_the_loop(db: Database):
    """Each read holds its connection across an await (as one does across a Redis call).
    A pool that made the 3rd wait would block the event loop's own thread for good."""
    await add_category(db, "books")

    async def read() -> list[str]:
        async with db.uow(write=False) as uow:
            await asyncio.sleep(0.01)
            return list((await uow.conn.execute(select(categories.c.slug))).scalars())

    answers = await asyncio.wait_for(asyncio.gather(*(read() for _ in range(20))), 10)
    assert answers == [["books"]] * 20


async def test_a_keyword_scan_runs_off_the_event_loop(db: Database):
    await add_category(db, "books")
    async with db.uow() as uow:
        category = (await uow.conn.execute(select(categories.c.id))).scalar_one()
        await uow.conn.execute(insert(products), [
            {"category_id": category, "name": name, "description": "", "search_text": name,
             "price": 1000, "stock": 5, "sold_quantity": 0, "active": True,
             "created_at": NOW, "updated_at": NOW}
            for name in ("red pen", "blue pen", "red cup")])
    threads: list[tuple[str, int]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        threads.append(("LIKE" in statement, threading.get_ident()))

    assert db.inline_reader is not None
    event.listen(db.inline_reader, "before_cursor_execute", seen)
    listings = Listings(MemoryCache(), shared_generation=False)

    async def names(keyword: str | None) -> list[str]:
        async with db.uow(write=False) as uow:
            rows, _, _ = await service.list_products(
                uow, listings, category=None, keyword=keyword, min_price=None,
                max_price=None, in_stock=None, sort="name", limit=20, offset=0)
        return [row.name for row in rows]

    assert await names("red") == ["red cup", "red pen"]
    loop_thread = threading.get_ident()
    scans = {thread for like, thread in threads if like}
    assert scans and loop_thread not in scans  # the page of ids and the count
    assert {thread for like, thread in threads if not like} == {loop_thread}

    threads.clear()
    assert await names(None) == ["blue pen", "red cup", "red pen"]
    assert {thread for _, thread in threads} == {loop_thread}  # indexed: inline
