"""The Redis cache on a real Redis: the reads of one turn of the event loop share one
MGET and its bumps one round trip, each read gets its own keys' values, none is older
than its call, and a Redis that is unreachable is a miss for every read of the batch."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ecommerce.platform.cache import RedisCache
from tests.backends import REDIS_URL, require
from tests.scratch import free_port


@pytest.fixture
async def named():
    """A cache on its own client, whose connections Redis lists under one name."""
    from redis.asyncio import Redis

    name = f"cachetest-{uuid.uuid4().hex[:12]}"
    redis = Redis.from_url(require("redis", REDIS_URL), decode_responses=True,
                           client_name=name)
    try:
        yield RedisCache(redis, f"test:{name}"), redis, name
    finally:
        keys = [key async for key in redis.scan_iter(f"test:{name}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def connections_named(redis, name: str) -> int:
    return sum(client.get("name") == name for client in await redis.client_list())


async def test_reads_asked_together_share_one_round_trip_and_get_their_own_values(named):
    cache, redis, name = named
    for n in range(50):
        await cache.set(f"k{n}", f"v{n}", 60)
    await cache.incr_all(["counter"])
    await redis.connection_pool.disconnect()  # none open: each read must open its own

    answers = await asyncio.gather(*(cache.get_many([f"k{n}", "counter", "missing"])
                                     for n in range(50)))

    assert answers == [[f"v{n}", "1", None] for n in range(50)]
    # Fifty reads asked at once: one MGET, so one connection (redis-py opens one for each
    # command sent while the others are busy).
    assert await connections_named(redis, name) == 1


async def test_bumps_asked_together_share_one_round_trip_and_move_each_counter(named):
    cache, redis, name = named
    await cache.incr_all(["a"])
    await redis.connection_pool.disconnect()

    await asyncio.gather(*(cache.incr_all(["a", "b"] if n % 2 else ["a"]) for n in range(50)))

    assert await cache.get_many(["a", "b"]) == ["2", "1"]  # each moved on once more
    assert await connections_named(redis, name) == 1


async def test_a_read_sees_every_write_that_completed_before_it_was_asked(named):
    """Readers keep asking while a writer bumps a counter: a read asked after a bump had
    completed never answers the value from before it (as joining an MGET already sent
    would)."""
    cache, _redis, _name = named
    written = 0
    stale: list[tuple[int, int]] = []

    async def writer() -> None:
        nonlocal written
        for _ in range(200):
            await cache.incr_all(["counter"])
            written += 1
            await asyncio.sleep(0)

    async def reader() -> None:
        while written < 200:
            before = written
            [value] = await cache.get_many(["counter"])
            if int(value or 0) < before:
                stale.append((before, int(value or 0)))

    await asyncio.gather(writer(), *(reader() for _ in range(20)))
    assert stale == []


async def test_an_unreachable_redis_is_a_miss_for_every_read_of_the_batch():
    from redis.asyncio import Redis

    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    try:
        cache = RedisCache(redis, "test:down")
        assert await asyncio.gather(*(cache.get_many(["a", "b"]) for _ in range(5))) == \
            [None] * 5
    finally:
        await redis.aclose()


async def test_a_reader_that_stops_waiting_leaves_the_others_answered(named):
    cache, _redis, _name = named
    await cache.set("k", "v", 60)
    gone = asyncio.ensure_future(cache.get_many(["k"]))
    kept = asyncio.ensure_future(cache.get_many(["k"]))
    await asyncio.sleep(0)  # both asked, their MGET not yet answered
    gone.cancel()
    assert await kept == ["v"]
    with pytest.raises(asyncio.CancelledError):
        await gone
