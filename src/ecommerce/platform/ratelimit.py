"""Rate limits by `limits`: in-process storage on the embedded default, Redis when set."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from ecommerce.platform.errors import RateLimited
from ecommerce.platform.settings import parse_rate

_ITEMS = {1: RateLimitItemPerSecond, 60: RateLimitItemPerMinute, 3600: RateLimitItemPerHour}


class RateLimit:
    """One named limit, e.g. login attempts: `await limit.hit("alice", "10.0.0.1")`."""

    def __init__(self, name: str, rate: str, limiter: SlidingWindowCounterRateLimiter | None):
        parsed = parse_rate(rate)
        self.name = name
        self.item = _ITEMS[parsed[1]](parsed[0], namespace=name) if parsed else None
        self.limiter = limiter

    async def hit(self, *identifiers: str) -> None:
        """Count one attempt; raise RateLimited (429 with Retry-After) past the limit."""
        if self.item is None or self.limiter is None:
            return
        if await self.limiter.hit(self.item, *identifiers):
            return
        stats = await self.limiter.get_window_stats(self.item, *identifiers)
        raise RateLimited(math.ceil(max(stats.reset_time - time.time(), 1)))


def make_storage(redis_url: str | None, prefix: str = "ecommerce") -> Storage:
    if redis_url:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1)
        return RedisStorage(uri, implementation="redispy", key_prefix=f"{prefix}:rl")
    return MemoryStorage()


def make_limiter(storage: Storage) -> SlidingWindowCounterRateLimiter:
    return SlidingWindowCounterRateLimiter(storage)
