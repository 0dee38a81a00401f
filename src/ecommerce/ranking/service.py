"""Top sellers of the last N shop-calendar days.

Sales are counted per product per day (shop timezone) in `product_sales_daily`, in the same
transaction as the order or cancellation that causes them. The top list computed from it is
cached for half a second (in Redis when configured, else in-process), so an order shows up
within a second, a lost Redis costs one recomputation, and the database stays the truth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ecommerce.catalog import repository as catalog_repo
from ecommerce.platform.cache import Cache
from ecommerce.platform.database import Database, UnitOfWork

TOP_TTL_SECONDS = 0.5


def shop_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


async def record_sale(uow: UnitOfWork, lines: Iterable[tuple[int, int]], sold_at: datetime,
                      zone: ZoneInfo) -> None:
    """Count (product_id, quantity) lines as sold on `sold_at`'s shop day."""
    await catalog_repo.add_daily_sales(uow.conn, shop_day(sold_at, zone), list(lines))


async def record_cancellation(uow: UnitOfWork, lines: Iterable[tuple[int, int]],
                              sold_at: datetime, zone: ZoneInfo) -> None:
    """Take a cancelled order's lines off the day it was sold."""
    await catalog_repo.add_daily_sales(uow.conn, shop_day(sold_at, zone),
                                       [(pid, -qty) for pid, qty in lines])


class TopSellers:
    def __init__(self, db: Database, cache: Cache, zone: ZoneInfo,
                 ttl: float = TOP_TTL_SECONDS):
        self.db = db
        self.ttl = ttl
        self.cache = cache
        self.zone = zone
        self._inflight: dict[str, asyncio.Future[list[tuple[int, int]]]] = {}

    async def top_products(self, now: datetime, days: int, limit: int
                           ) -> list[tuple[Any, int]]:
        """[(live product row, sold)] for the top sellers, best first."""
        ranking = await self.top(now, days, limit)
        sold = dict(ranking)
        async with self.db.uow(write=False) as uow:  # in ranking order, active ones only
            rows = await catalog_repo.listed_products(uow.conn, list(sold))
        return [(row, sold[row.id]) for row in rows]

    async def top(self, now: datetime, days: int, limit: int) -> list[tuple[int, int]]:
        """[(product_id, sold)] best first, ties by product id."""
        first_day = shop_day(now, self.zone) - timedelta(days=days - 1)
        key = f"top:{first_day.isoformat()}:{limit}"
        cached = await self.cache.get(key)
        if cached is not None:
            return [tuple(pair) for pair in orjson.loads(cached)]  # type: ignore[misc]
        pending = self._inflight.get(key)
        if pending is not None:  # one computation per key and process at a time
            return await asyncio.shield(pending)
        future: asyncio.Future[list[tuple[int, int]]] = asyncio.get_running_loop(
        ).create_future()
        self._inflight[key] = future
        try:
            async with self.db.uow(write=False) as uow:
                rows = await catalog_repo.top_sellers(uow.conn, first_day, limit)
            result = [(int(row.product_id), int(row.sold)) for row in rows]
            if self.ttl > 0:
                await self.cache.set(key, orjson.dumps(result).decode(), self.ttl)
            future.set_result(result)
            return result
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]
