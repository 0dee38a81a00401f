"""A small cache with two implementations chosen at start-up: in-process, or Redis.

A Redis that is down or has lost its keys is a cache miss, never an error: callers then
read the database, which is the source of truth."""

from __future__ import annotations

import asyncio
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
        self._asked: list[tuple[list[str], asyncio.Future[list[str | None] | None]]] | None
        self._asked = None  # the reads asked in this turn of the event loop, not yet sent
        self._sending: set[asyncio.Task[None]] = set()

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
        Redis is unreachable.

        The reads asked in one turn of the event loop go out as one MGET, sent once that
        turn is over: under load a worker's product lists share a round trip instead of
        paying redis-py's cost each (a quarter of a listing's CPU). A read is never
        answered by an MGET sent before it was asked, so it sees every write that had
        completed when it was asked, as its own MGET would."""
        loop = asyncio.get_running_loop()
        if self._asked is None:
            self._asked = []
            loop.call_soon(self._send)
        answer: asyncio.Future[list[str | None] | None] = loop.create_future()
        self._asked.append((keys, answer))
        return await answer

    def _send(self) -> None:
        asked, self._asked = self._asked or [], None
        task = asyncio.ensure_future(self._mget(asked))
        self._sending.add(task)  # a reference until it is done (asyncio keeps weak ones)
        task.add_done_callback(self._sending.discard)

    async def _mget(self, asked: list[tuple[list[str], asyncio.Future[list[str | None] | None]]]
                    ) -> None:
        names = list(dict.fromkeys(key for keys, _ in asked for key in keys))
        try:
            found = dict(zip(names, await self._redis.mget(
                [f"{self._prefix}:{name}" for name in names]), strict=True))
        except REDIS_DOWN as error:
            log.warning("cache get failed", extra={"error": type(error).__name__})
            found = None
        except BaseException as error:  # nobody is left waiting unanswered
            for _, answer in asked:
                if answer.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    answer.cancel()
                else:
                    answer.set_exception(error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        for keys, answer in asked:
            if not answer.done():  # its caller may have stopped waiting (cancelled)
                answer.set_result(None if found is None else [found[key] for key in keys])
