"""Keyword search at 100,000 products, uncached: `python -m bench.search [--products N]`.

For each server database, makes a scratch database (dropped afterwards), loads N products
with Korean and English names and descriptions, then runs the listing's cache-miss path
(`catalog.repository.page_of_ids`: the filtered, sorted page of ids and the total) for a set of
keywords, each once, and reports p50/p90/max milliseconds and the query plan. This is the
cost of a search the listing cache has not seen yet."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from tests.scratch import create_scratch_database, drop_scratch_database

from ecommerce.catalog import repository
from ecommerce.catalog.models import categories, products
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import upgrade

SERVERS = {"postgres": "postgresql://postgres@127.0.0.1:5432/test",
           "mysql": "mysql://root@127.0.0.1:3306/test"}
ADJECTIVES = ["red", "blue", "green", "wireless", "organic", "leather", "compact", "vintage",
              "빨간", "파란", "무선", "유기농", "가죽", "미니", "프리미엄", "스마트"]
NOUNS = ["keyboard", "mouse", "kettle", "jacket", "backpack", "lamp", "speaker", "tea",
         "키보드", "마우스", "주전자", "재킷", "백팩", "조명", "스피커", "녹차"]
MATERIALS = ["cotton", "steel", "oak", "bamboo", "wool", "ceramic", "면", "스테인리스", "원목"]
KEYWORDS = ["keyboard", "wireless mouse", "oak", "빨간", "무선 키보드", "녹차", "ceramic",
            "vintage lamp", "스마트", "jacket", "bamboo", "미니 조명", "no-such-thing", "e",
            "가죽 재킷", "tea", "프리미엄", "steel kettle", "wool", "원목"]


async def load(db: Database, count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with db.uow() as uow:
        await uow.conn.execute(insert(categories), [
            {"slug": f"cat-{i}", "name": f"Category {i}", "created_at": now} for i in range(20)])
        ids = [row.id for row in await uow.conn.execute(text("SELECT id FROM categories"))]
    for start in range(0, count, 5_000):
        rows = []
        for i in range(start, min(start + 5_000, count)):
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i}"
            description = (f"{rng.choice(MATERIALS)} {rng.choice(ADJECTIVES)} "
                           f"{rng.choice(NOUNS)}, model {rng.randint(1000, 9999)}")
            rows.append({"category_id": rng.choice(ids), "name": name,
                         "description": description,
                         "search_text": f"{name} {description}".lower(),
                         "price": rng.randint(1, 2_000) * 100, "stock": rng.randint(0, 500),
                         "sold_quantity": 0, "active": True, "created_at": now,
                         "updated_at": now})
        async with db.uow() as uow:
            await uow.conn.execute(insert(products), rows)
    # As a table that has been in use: on PostgreSQL, VACUUM sets the rows' visibility
    # hints (else the first searches after the bulk load pay for writing them).
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        if db.dialect == "postgresql":
            await conn.execute(text("VACUUM ANALYZE products"))
        else:
            await conn.execute(text("ANALYZE TABLE products"))


async def one_search(db: Database, keyword: str, sort: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with db.uow(write=False) as uow:
        query = repository.listing_query(category_id=None, keyword=keyword, min_price=None,
                                         max_price=None, in_stock=None)
        _, total = await repository.page_of_ids(uow.conn, query, sort, 20, 0, keyword=True)
    return (time.perf_counter() - started) * 1000, total


async def plan(db: Database, keyword: str) -> str:
    async with db.uow(write=False) as uow:
        query = repository.listing_query(category_id=None, keyword=keyword, min_price=None,
                                         max_price=None, in_stock=None)
        compiled = query.order_by(*repository.SORTS["newest"]).limit(20).compile(
            uow.conn.sync_connection, compile_kwargs={"literal_binds": True})
        rows = await uow.conn.execute(text(f"EXPLAIN {compiled}"))
        return "\n".join(" | ".join(str(v) for v in row) for row in rows)


async def measure(kind: str, count: int) -> dict[str, Any]:
    url = await create_scratch_database(SERVERS[kind], "ecommerce_search_bench")
    try:
        upgrade(url)
        db = Database(url, pool_size=2)
        try:
            started = time.perf_counter()
            await load(db, count)
            print(f"{kind}: loaded {count:,} products in {time.perf_counter() - started:.0f} s",
                  flush=True)
            timings, totals, each = [], {}, []
            for keyword in KEYWORDS:
                for sort in ("newest", "price_asc"):
                    ms, total = await one_search(db, keyword, sort)
                    timings.append(ms)
                    totals[keyword] = total
                    each.append((ms, keyword, sort))
            return {"p50_ms": statistics.median(timings),
                    "p90_ms": statistics.quantiles(timings, n=10)[-1],
                    "max_ms": max(timings), "searches": len(timings), "totals": totals,
                    "slowest": sorted(each, reverse=True)[:6],
                    "plan": await plan(db, "keyboard")}
        finally:
            await db.dispose()
    finally:
        await drop_scratch_database(SERVERS[kind], url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--backend", default="postgres,mysql")
    args = parser.parse_args()
    for kind in args.backend.split(","):
        result = asyncio.run(measure(kind, args.products))
        print(f"{kind}: {result['searches']} uncached searches over {args.products:,} products:"
              f" p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
              f"max {result['max_ms']:.1f} ms")
        print("  matches:", ", ".join(f"{k}={v}" for k, v in result["totals"].items()))
        print("  slowest:", ", ".join(f"{k!r} {sort} {ms:.0f} ms"
                                      for ms, k, sort in result["slowest"]))
        print("  plan for 'keyboard', newest first:")
        for line in result["plan"].splitlines():
            print("   ", line)


if __name__ == "__main__":
    main()
