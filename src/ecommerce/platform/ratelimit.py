"""Rate limits by `limits`: in-process storage on the embedded default, Redis when set.

A moving window: N per minute means at most N in any 60 seconds, exactly. `limits`' sliding
window counter guesses the last window's share and rounds it down, so 3/minute let a fourth
login through just after a minute turned (a flaky CI run found it)."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from limits import RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from ecommerce.platform.cache import REDIS_DOWN, redis_driver
from ecommerce.platform.errors import RateLimited
from ecommerce.platform.settings import parse_rate

_ITEMS = {1: RateLimitItemPerSecond, 60: RateLimitItemPerMinute, 3600: RateLimitItemPerHour}
log = logging.getLogger("ecommerce.ratelimit")


class RateLimit:
    """One named limit, e.g. login attempts: `await limit.hit("alice", "10.0.0.1")`.

    With Redis, counts are shared by every process; while Redis is unreachable each process
    counts on its own (the `fallback`) for a few seconds at a time, so a Redis outage
    neither fails requests nor lifts the limit."""

    BACKOFF_SECONDS = 3.0
    TIMEOUT_SECONDS = 2.0

    def __init__(self, name: str, rate: str, limiter: MovingWindowRateLimiter | None,
                 fallback: MovingWindowRateLimiter | None = None):
        parsed = parse_rate(rate)
        self.name = name
        self.item = _ITEMS[parsed[1]](parsed[0], namespace=name) if parsed else None
        self.limiter = limiter
        self.fallback = fallback
        self._down_until = 0.0

    async def hit(self, *identifiers: str) -> None:
        """Count one attempt; raise RateLimited (429 with Retry-After) past the limit."""
        await self._run(True, identifiers)

    async def check(self, *identifiers: str) -> None:
        """Raise RateLimited if the limit is used up, without counting an attempt (for
        limits that count only failures: check first, `hit` on a failure)."""
        await self._run(False, identifiers)

    async def _run(self, count: bool, identifiers: tuple[str, ...]) -> None:
        if self.item is None or self.limiter is None:
            return
        limiter = self.limiter
        if self.fallback is not None and time.monotonic() < self._down_until:
            limiter = self.fallback
        try:
            # A deadline here rather than redis-py's socket timeout (off in make_storage),
            # whose asyncio.wait_for costs a task per call: every claim is counted.
            async with asyncio.timeout(self.TIMEOUT_SECONDS):
                allowed = (await limiter.hit(self.item, *identifiers) if count
                           else await limiter.test(self.item, *identifiers))
                if allowed:
                    return
                stats = await limiter.get_window_stats(self.item, *identifiers)
        except REDIS_DOWN as error:
            if self.fallback is None or limiter is self.fallback:
                raise
            log.warning("rate limit: Redis unavailable, counting in this process",
                        extra={"limit": self.name, "error": type(error).__name__})
            self._down_until = time.monotonic() + self.BACKOFF_SECONDS
            return await self._run(count, identifiers)
        raise RateLimited(math.ceil(max(stats.reset_time - time.time(), 1)))


def make_storage(redis_url: str | None, prefix: str = "ecommerce") -> Storage:
    if redis_url:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1)
        return RedisStorage(uri, implementation="redispy", key_prefix=f"{prefix}:rl",
                            socket_timeout=None, socket_connect_timeout=2,
                            driver_info=redis_driver())
    return MemoryStorage()


def make_limiter(storage: Storage) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage)
