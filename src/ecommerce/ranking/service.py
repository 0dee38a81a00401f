"""Top sellers of the last N shop-calendar days.

Sales are counted per product per day (shop timezone) in `product_sales_daily`, in the same
transaction as the order or cancellation that causes them. The ranking computed from it is
shared for half a second (in Redis when configured, else in-process), so an order shows up
within a second, a lost Redis costs one recomputation, and the database stays the truth.

The shared entry carries the moment it expires. Each process keeps the ranking it last
saw until that moment, never longer, and asks for the next one ahead of it: a request in
the last 30 % of an entry's life starts, in the background, a read of the shared entry (or,
if no process has renewed it yet, a recomputation) and is answered with the current one.
Under steady traffic no request waits for a recomputation, and a process asks Redis about
twice a second, not once per request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ecommerce.catalog import repository as catalog_repo
from ecommerce.platform.cache import Cache
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.ranking import repository

log = logging.getLogger("ecommerce.ranking")
TOP_TTL_SECONDS = 0.5
RENEW_AHEAD = 0.3  # of the cache time: renew in the background in an entry's last 30 %
Ranking = list[tuple[int, int]]  # [(product_id, sold)], best first


def shop_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


async def record_sale(uow: UnitOfWork, lines: Iterable[tuple[int, int]], day: date) -> None:
    """Count (product_id, quantity) lines as sold on this shop day."""
    await repository.add_daily_sales(uow.conn, day, list(lines))


async def record_cancellation(uow: UnitOfWork, lines: Iterable[tuple[int, int]], day: date
                              ) -> None:
    """Take a cancelled order's lines off the day it was sold."""
    await repository.add_daily_sales(uow.conn, day, [(pid, -qty) for pid, qty in lines])


class TopSellers:
    def __init__(self, db: Database, cache: Cache, zone: ZoneInfo,
                 ttl: float = TOP_TTL_SECONDS, *, timer: Callable[[], float] = time.time):
        self.db = db
        self.ttl = ttl
        self.cache = cache
        self.zone = zone
        self._timer = timer  # wall clock: the shared entries' expiry crosses processes
        self._inflight: dict[str, asyncio.Future[Ranking]] = {}
        self._seen: dict[str, tuple[float, Ranking]] = {}  # key -> (expiry, ranking)
        self._renewals: set[asyncio.Task[None]] = set()

    async def top_products(self, now: datetime, days: int, limit: int
                           ) -> list[tuple[Any, int]]:
        """[(live product row, sold)] for the top sellers, best first."""
        ranking = await self.top(now, days, limit)
        sold = dict(ranking)
        async with self.db.uow(write=False) as uow:  # in ranking order, active ones only
            rows = await catalog_repo.listed_products(uow.conn, list(sold))
        return [(row, sold[row.id]) for row in rows]

    async def top(self, now: datetime, days: int, limit: int) -> Ranking:
        """[(product_id, sold)] best first, ties by product id."""
        first_day = shop_day(now, self.zone) - timedelta(days=days - 1)
        key = f"ranking:{first_day.isoformat()}:{limit}"  # shared as [expiry, ranking]
        seen = self._seen.get(key)
        if seen is not None:
            left = seen[0] - self._timer()
            if 0 < left <= self.ttl:  # (more left than the cache time: the clock went back)
                if left < self.ttl * RENEW_AHEAD and key not in self._inflight:
                    task = asyncio.create_task(self._renew(key, first_day, limit, seen[0]))
                    self._renewals.add(task)
                    task.add_done_callback(self._renewals.discard)
                return seen[1]
        return await self._load(key, first_day, limit, newer_than=0.0)

    async def close(self) -> None:
        """Cancel the background renewals (at shutdown, before the database closes)."""
        for task in list(self._renewals):
            task.cancel()
        await asyncio.gather(*self._renewals, return_exceptions=True)

    async def _renew(self, key: str, first_day: date, limit: int, expiry: float) -> None:
        try:
            await self._load(key, first_day, limit, newer_than=expiry)
        except Exception as error:  # the next request past the expiry retries, and answers
            log.warning("top sellers renewal failed", extra={"error": type(error).__name__})

    async def _load(self, key: str, first_day: date, limit: int, *, newer_than: float
                    ) -> Ranking:
        """The shared ranking if it expires after `newer_than`, else a new one from the
        database (shared for the cache time); one at a time per key and process."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Ranking] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._shared(key, newer_than)
            if result is None:
                async with self.db.uow(write=False) as uow:
                    rows = await repository.top_sellers(uow.conn, first_day, limit)
                result = [(int(row.product_id), int(row.sold)) for row in rows]
                if self.ttl > 0:
                    expiry = self._timer() + self.ttl
                    await self.cache.set(key, orjson.dumps([expiry, result]).decode(),
                                         self.ttl)
                    self._keep(key, expiry, result)
            future.set_result(result)
            return result
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]

    async def _shared(self, key: str, newer_than: float) -> Ranking | None:
        cached = await self.cache.get(key)
        if cached is None:
            return None
        expiry, ranking = orjson.loads(cached)
        now = self._timer()
        if expiry <= max(newer_than, now):  # the one this process has, or past its time
            return None
        # Another host's clock may run ahead: never keep it past our own cache time.
        expiry = min(expiry, now + self.ttl)
        result = [(pid, sold) for pid, sold in ranking]
        self._keep(key, expiry, result)
        return result

    def _keep(self, key: str, expiry: float, ranking: Ranking) -> None:
        if len(self._seen) >= 1_000:  # one key per (first day, limit): bounded, cheap to refill
            self._seen.clear()
        self._seen[key] = (expiry, ranking)
