"""A small cache with two implementations chosen at start-up: in-process, or Redis.

A Redis that is down or has lost its keys is a cache miss, never an error: callers then
read the database, which is the source of truth."""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from redis.driver_info import DriverInfo
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.cache")

# What a Redis call raises when Redis is unreachable or the connection died under it. The
# RuntimeError is uvloop's "handler is closed", seen when Redis dies while redis-py is
# (re)connecting; inside a Redis call it means the same thing.
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError, RuntimeError)


@functools.cache
def redis_driver() -> DriverInfo:
    """The one description of our Redis client that every connection is given: without it
    redis-py 8 reads its own version from the installed package's metadata for each new
    connection (0.6 ms here), and a flash sale's burst opens them by the dozen."""
    return DriverInfo()


def redis_client(url: str, **options: Any) -> Redis:
    """A Redis client (with its own connection pool) for `url`."""
    from redis.asyncio import Redis

    return Redis.from_url(url, driver_info=redis_driver(), **options)


class Cache(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float) -> None: ...
    async def incr_all(self, keys: list[str]) -> None: ...
    async def get_many(self, keys: list[str]) -> list[str | None] | None: ...


class MemoryCache:
    def __init__(self, max_entries: int = 10_000):
        self._data: dict[str, tuple[float, str]] = {}
        self._counters: dict[str, int] = {}
        self._max = max_entries

    async def get(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    async def set(self, key: str, value: str, ttl: float) -> None:
        if len(self._data) >= self._max:
            self._data.clear()  # crude but bounded; entries are cheap to recompute
        self._data[key] = (time.monotonic() + ttl, value)

    async def incr_all(self, keys: list[str]) -> None:
        for key in keys:
            self._counters[key] = self._counters.get(key, 0) + 1

    async def get_many(self, keys: list[str]) -> list[str | None] | None:
        return [str(self._counters[key]) if key in self._counters else await self.get(key)
                for key in keys]


class RedisCache:
    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        try:
            return await self._redis.get(f"{self._prefix}:{key}")
        except REDIS_DOWN as error:
            log.warning("cache get failed", extra={"error": type(error).__name__})
            return None

    async def set(self, key: str, value: str, ttl: float) -> None:
        try:
            await self._redis.set(f"{self._prefix}:{key}", value, px=max(1, int(ttl * 1000)))
        except REDIS_DOWN as error:
            log.warning("cache set failed", extra={"error": type(error).__name__})

    async def incr_all(self, keys: list[str]) -> None:
        """Counters bumped, in one round trip."""
        try:
            if len(keys) == 1:
                await self._redis.incr(f"{self._prefix}:{keys[0]}")
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incr(f"{self._prefix}:{key}")
                await pipe.execute()
        except REDIS_DOWN as error:
            log.warning("cache incr failed", extra={"error": type(error).__name__})

    async def get_many(self, keys: list[str]) -> list[str | None] | None:
        """Values (counters among them) read together in one round trip (MGET); None if
        Redis is unreachable."""
        try:
            return await self._redis.mget([f"{self._prefix}:{key}" for key in keys])
        except REDIS_DOWN as error:
            log.warning("cache get failed", extra={"error": type(error).__name__})
            return None
