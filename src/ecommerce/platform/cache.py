"""A small cache with two implementations chosen at start-up: in-process, or Redis.

A Redis that is down or has lost its keys is a cache miss, never an error: callers then
read the database, which is the source of truth."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from redis.driver_info import DriverInfo
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.cache")
A = TypeVar("A")
R = TypeVar("R")

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


class PerTurn(Generic[A, R]):
    """Calls made in one turn of the event loop, answered together by one `send` of all
    their arguments, started once that turn is over. A call is never answered by a send
    that started before it was made, so what it reads is at least as new as the writes
    that had completed when it was made, as its own round trip's would be. `send` returns
    one result per argument, in order."""

    def __init__(self, send: Callable[[list[A]], Awaitable[list[R]]]):
        self._send = send
        self._asked: list[tuple[A, asyncio.Future[R]]] | None = None  # this turn's calls
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop they were made on
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, argument: A) -> R:
        loop = asyncio.get_running_loop()
        if self._asked is None or self._loop is not loop:  # (a loop that stopped mid-turn
            self._asked, self._loop = [], loop             # never sends its calls)
            task = loop.create_task(self._run(self._asked))  # its first step: next turn
            self._sending.add(task)  # a reference until it is done (asyncio keeps weak ones)
            task.add_done_callback(self._sending.discard)
        answer: asyncio.Future[R] = loop.create_future()
        self._asked.append((argument, answer))
        return await answer

    async def _run(self, asked: list[tuple[A, asyncio.Future[R]]]) -> None:
        if self._asked is asked:  # the turn is over: later calls make a batch of their own
            self._asked = None
        try:
            results = await self._send([argument for argument, _ in asked])
        except BaseException as error:  # nobody is left waiting unanswered
            cancelled = isinstance(error, asyncio.CancelledError)
            for _, answer in asked:
                if not answer.done():
                    answer.cancel() if cancelled else answer.set_exception(error)
            if cancelled:
                raise
            return
        for (_, answer), result in zip(asked, results, strict=True):
            if not answer.done():  # its caller may have stopped waiting (cancelled)
                answer.set_result(result)


class RedisCache:
    """The cache on Redis. Product lists read the listing generations and pages with every
    request, and every order bumps a generation: under load a worker's reads of one turn
    of the event loop share one MGET, and its bumps one pipeline (`PerTurn`), instead of
    each paying redis-py's cost (a quarter of a cached listing's CPU)."""

    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix
        self._reads = PerTurn(self._mget)
        self._bumps = PerTurn(self._incr)

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
        """Counters moved on (the bumps asked in one turn move each of their keys once,
        after all of them were asked)."""
        await self._bumps(keys)

    async def get_many(self, keys: list[str]) -> list[str | None] | None:
        """Values (counters among them) read together in one round trip (MGET); None if
        Redis is unreachable."""
        return await self._reads(keys)

    async def _mget(self, asked: list[list[str]]) -> list[list[str | None] | None]:
        names = list(dict.fromkeys(key for keys in asked for key in keys))
        try:
            values = await self._redis.mget([f"{self._prefix}:{name}" for name in names])
        except REDIS_DOWN as error:
            log.warning("cache get failed", extra={"error": type(error).__name__})
            return [None] * len(asked)
        found = dict(zip(names, values, strict=True))
        return [[found[key] for key in keys] for keys in asked]

    async def _incr(self, asked: list[list[str]]) -> list[None]:
        names = sorted({key for keys in asked for key in keys})
        try:
            if len(names) == 1:
                await self._redis.incr(f"{self._prefix}:{names[0]}")
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.incr(f"{self._prefix}:{name}")
                    await pipe.execute()
        except REDIS_DOWN as error:
            log.warning("cache incr failed", extra={"error": type(error).__name__})
        return [None] * len(asked)
