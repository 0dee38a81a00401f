from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ecommerce.ranking import service as ranking
from tests.backends import REDIS_URL, require
from tests.conftest import wipe_redis
from tests.factories import assert_error, make_admin, make_product

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 12:00 in Seoul, 24 November


async def sell(shop, lines, at: datetime, *, cancel: bool = False) -> None:
    """Record sales as the orders feature does, in one transaction."""
    async with shop.db.uow() as uow:
        record = ranking.record_cancellation if cancel else ranking.record_sale
        await record(uow, lines, ranking.shop_day(at, shop.settings.timezone))


async def top(client, query: str = "") -> list[tuple[int, int]]:
    response = await client.get(f"/api/products/top{query}")
    assert response.status_code == 200, response.text
    return [(p["productId"], p["soldQuantity"]) for p in response.json()]


async def test_ranks_by_quantity_then_id_with_live_product_fields(shop, client):
    shop.clock.travel_to(NOW)
    a, b, c = [await make_product(shop, price=p, stock=9) for p in (100, 200, 300)]
    await sell(shop, [(a, 2), (b, 5), (c, 2)], NOW)
    response = await client.get("/api/products/top")
    assert [(p["rank"], p["productId"], p["soldQuantity"]) for p in response.json()] == [
        (1, b, 5), (2, a, 2), (3, c, 2)]
    assert set(response.json()[0]) == {"rank", "productId", "name", "price", "stock",
                                       "soldQuantity"}
    assert response.json()[0]["price"] == 200 and response.json()[0]["stock"] == 9


async def test_limit_and_top_five_by_default(shop, client):
    shop.clock.travel_to(NOW)
    ids = [await make_product(shop) for _ in range(7)]
    await sell(shop, [(pid, 10 + i) for i, pid in enumerate(ids)], NOW)
    assert [pid for pid, _ in await top(client)] == list(reversed(ids))[:5]
    assert len(await top(client, "?limit=2")) == 2
    assert len(await top(client, "?limit=50")) == 7


async def test_last_n_calendar_days_in_the_shop_time_zone(shop, client):
    shop.clock.travel_to(NOW)  # 2026-11-24 12:00 KST
    today, yesterday, older = [await make_product(shop) for _ in range(3)]
    # 00:30 KST on the 24th is still the 23rd in UTC: it counts as today in Seoul.
    await sell(shop, [(today, 3)], datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
    # 23:59 KST on the 23rd: yesterday.
    await sell(shop, [(yesterday, 4)], datetime(2026, 11, 23, 14, 59, tzinfo=UTC))
    # 22nd, 21st in Seoul: inside 3 days, then outside.
    await sell(shop, [(older, 5)], datetime(2026, 11, 22, 1, 0, tzinfo=UTC))
    await sell(shop, [(older, 100)], datetime(2026, 11, 21, 1, 0, tzinfo=UTC))
    assert await top(client, "?days=1") == [(today, 3)]
    assert await top(client, "?days=2") == [(yesterday, 4), (today, 3)]
    assert await top(client, "?days=3") == [(older, 5), (yesterday, 4), (today, 3)]
    assert await top(client, "?days=4") == [(older, 105), (yesterday, 4), (today, 3)]
    # Just after midnight in Seoul, the window moves on by a day.
    shop.clock.travel_to(datetime(2026, 11, 24, 15, 1, tzinfo=UTC))  # 25th 00:01 KST
    assert await top(client, "?days=1") == []
    assert await top(client, "?days=2") == [(today, 3)]


class TestUtcShop:
    @pytest.fixture
    def settings_overrides(self):
        return {"shop_timezone": "UTC"}

    async def test_days_follow_the_configured_zone(self, shop, client):
        shop.clock.travel_to(NOW)
        product = await make_product(shop)
        await sell(shop, [(product, 3)], datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
        assert await top(client, "?days=1") == []  # the 23rd in UTC
        assert await top(client, "?days=2") == [(product, 3)]


async def test_cancellations_subtract_from_the_day_of_sale(shop, client):
    shop.clock.travel_to(NOW)
    a, b = await make_product(shop), await make_product(shop)
    sold_at = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    await sell(shop, [(a, 5), (b, 3)], sold_at)
    await sell(shop, [(a, 4)], sold_at, cancel=True)
    assert await top(client) == [(b, 3), (a, 1)]
    await sell(shop, [(a, 1)], sold_at, cancel=True)
    assert await top(client) == [(b, 3)]  # nothing sold: not listed


async def test_inactive_products_are_left_out(shop, client):
    shop.clock.travel_to(NOW)
    admin = await make_admin(shop)
    a, b = await make_product(shop), await make_product(shop)
    await sell(shop, [(a, 5), (b, 3)], NOW)
    await client.patch(f"/api/admin/products/{a}", headers=admin.headers, json={"active": False})
    assert await top(client) == [(b, 3)]


@pytest.mark.parametrize("query", ["?days=0", "?days=31", "?limit=0", "?limit=51", "?days=x",
                                   "?limit=2.5"])
async def test_invalid_parameters_are_400(client, query):
    assert_error(await client.get(f"/api/products/top{query}"), 400, "INVALID_REQUEST")


class TestWithCache:
    """With the real half-second cache (in-process, or Redis): a sale shows within 1 s."""

    @pytest.fixture(params=["embedded", "redis"])
    def settings_overrides(self, request):
        values = {"top_sellers_cache_seconds": 0.5}
        if request.param == "redis":
            values["redis_url"] = require("redis", REDIS_URL)
        return values

    async def test_a_sale_shows_within_a_second(self, shop, client):
        shop.clock.travel_to(NOW)
        a, b = await make_product(shop), await make_product(shop)
        await sell(shop, [(a, 2)], NOW)
        assert await top(client) == [(a, 2)]
        await sell(shop, [(b, 3)], NOW)
        await asyncio.sleep(0.6)
        assert await top(client) == [(b, 3), (a, 2)]

    async def test_rebuilt_from_the_database_after_a_redis_flush(self, shop, client):
        shop.clock.travel_to(NOW)
        a = await make_product(shop)
        await sell(shop, [(a, 7)], NOW)
        assert await top(client) == [(a, 7)]
        redis, prefix = shop.ctx.redis, shop.settings.redis_prefix
        if redis is not None:
            await wipe_redis(shop.settings.redis_url, prefix)
            assert await redis.keys(f"{prefix}:ranking:*") == []
        await asyncio.sleep(0.6)  # past this process's own copy too
        assert await top(client) == [(a, 7)]  # rebuilt from the database
        if redis is not None:
            assert len(await redis.keys(f"{prefix}:ranking:*")) == 1  # and shared again


class Timer:
    """A wall clock the test moves by hand (the rankings' expiry times)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def renewed(rankings: ranking.TopSellers) -> None:
    await asyncio.gather(*rankings._renewals)


async def test_a_process_keeps_a_ranking_until_it_expires_and_renews_it_ahead(shop):
    """Embedded (in-process cache): the ranking is reused for the cache time, never
    longer; in its last 30 % a request gets it and starts a renewal in the background."""
    from ecommerce.platform.cache import MemoryCache

    shop.clock.travel_to(NOW)
    a, b, c = [await make_product(shop) for _ in range(3)]
    await sell(shop, [(a, 2)], NOW)
    timer = Timer()
    rankings = ranking.TopSellers(shop.db, MemoryCache(), shop.settings.timezone, 10,
                                  timer=timer)
    assert await rankings.top(NOW, 3, 5) == [(a, 2)]
    await sell(shop, [(b, 3)], NOW)
    timer.now += 6.9  # 3.1 s left: not yet renewed
    assert await rankings.top(NOW, 3, 5) == [(a, 2)]
    assert not rankings._renewals
    timer.now += 0.2  # 2.9 s left: answered at once, renewed behind
    assert await rankings.top(NOW, 3, 5) == [(a, 2)]
    assert len(rankings._renewals) == 1
    await renewed(rankings)
    assert await rankings.top(NOW, 3, 5) == [(b, 3), (a, 2)]
    await sell(shop, [(c, 9)], NOW)
    timer.now += 10.0  # past the renewed one's expiry, with no request in its last 30 %
    assert await rankings.top(NOW, 3, 5) == [(c, 9), (b, 3), (a, 2)]  # waited for it
    await sell(shop, [(a, 20)], NOW)
    timer.now -= 3_600  # the wall clock is set back an hour: the copy is not kept an hour
    rankings.cache._data.clear()  # (while the shared entry expires, in real time)
    assert await rankings.top(NOW, 3, 5) == [(a, 22), (c, 9), (b, 3)]
    await rankings.close()


async def test_processes_share_one_ranking_and_its_expiry(shop, redis_url):
    """Two processes' rankings on one Redis: the second takes the first's ranking (not
    the database's newer one) with the same expiry; a renewal takes a newer shared
    ranking when another process has made one, and recomputes only when none has."""
    from redis.asyncio import Redis

    from ecommerce.platform.cache import RedisCache

    shop.clock.travel_to(NOW)
    a, b, c = [await make_product(shop) for _ in range(3)]
    await sell(shop, [(a, 2)], NOW)
    redis = Redis.from_url(redis_url, decode_responses=True)
    prefix = f"{shop.settings.redis_prefix}:shared"
    timer = Timer()
    try:
        first, second = (ranking.TopSellers(shop.db, RedisCache(redis, prefix),
                                            shop.settings.timezone, 10, timer=timer)
                         for _ in range(2))
        assert await first.top(NOW, 3, 5) == [(a, 2)]
        await sell(shop, [(b, 3)], NOW)
        assert await second.top(NOW, 3, 5) == [(a, 2)]  # the shared entry
        [(expiry, _)] = second._seen.values()
        assert expiry == timer.now + 10  # the first's, not extended by the copy
        timer.now += 8
        assert await first.top(NOW, 3, 5) == [(a, 2)]
        await renewed(first)  # nothing newer shared: recomputed and shared
        await sell(shop, [(c, 9)], NOW)
        assert await second.top(NOW, 3, 5) == [(a, 2)]
        await renewed(second)  # takes the first's renewal, not the database's newest
        assert await second.top(NOW, 3, 5) == [(b, 3), (a, 2)]
        [(expiry, _)] = second._seen.values()
        assert expiry == timer.now + 10
    finally:
        await wipe_redis(redis_url, prefix)
        await redis.aclose()
