"""The claim gate: turns away the losers of a flash sale before they reach the database.

Two implementations, chosen at start-up. Neither decides who wins: the database does
(a unique key per holder and a conditional update on the issued count). A gate only answers
"sold out" or "already claimed" early, and must never turn away a claim the database would
accept for long:

* `LocalGate` (no Redis) remembers, per process, which coupons sold out (issued coupons
  never return to the pool, so that is final) and which users already hold one.
* `RedisGate` keeps, per coupon, a Redis set of holders and the coupon's quantity and issue
  window, and decides in one Lua script. The set is loaded from the database when missing
  (a flush or restart) and reloaded every minute, so a reservation left behind by a crashed
  process costs at most a minute. Redis unreachable: the gate steps aside for a few seconds
  and every claim takes the database path."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ecommerce.platform.cache import REDIS_DOWN

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.coupons.gate")

PASS, SOLD_OUT, ALREADY, NOT_ACTIVE = "PASS", "SOLD_OUT", "ALREADY", "NOT_ACTIVE"


@dataclass(frozen=True)
class CouponState:
    total: int
    starts_at: datetime
    ends_at: datetime | None
    holders: list[int]


StateLoader = Callable[[str], Awaitable[CouponState | None]]


class LocalGate:
    def __init__(self) -> None:
        self._sold_out: set[str] = set()
        self._holders: set[tuple[str, int]] = set()

    async def enter(self, code: str, user_id: int, now: datetime, load: StateLoader) -> str:
        if (code, user_id) in self._holders:
            return ALREADY
        return SOLD_OUT if code in self._sold_out else PASS

    async def won(self, code: str, user_id: int) -> None:
        if len(self._holders) > 1_000_000:
            self._holders.clear()
        self._holders.add((code, user_id))

    async def lost(self, code: str, user_id: int, reason: str) -> None:
        if reason == SOLD_OUT:
            self._sold_out.add(code)
        elif reason == ALREADY:
            await self.won(code, user_id)


# KEYS: meta hash, holders set. ARGV: user id, now (epoch ms), the holders' ttl (ms).
# Returns MISS when the coupon's state is not loaded.
_ENTER = """
local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends')
if not meta[1] then return 'MISS' end
local now = tonumber(ARGV[2])
if now < tonumber(meta[2]) or (meta[3] ~= '' and now >= tonumber(meta[3])) then
  return 'NOT_ACTIVE'
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'ALREADY' end
if redis.call('SCARD', KEYS[2]) >= tonumber(meta[1]) then return 'SOLD_OUT' end
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < 0 then
  -- the first holder creates the set (the install found none to expire): same lifetime
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 'PASS'
"""

# KEYS: meta, holders, staging set. ARGV: total, starts, ends, ttl ms.
# Installs a loaded state unless another process installed one meanwhile.
_INSTALL = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'starts', ARGV[2], 'ends', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 2)
return 1
"""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RedisGate:
    RELOAD_MS = 60_000
    BACKOFF_SECONDS = 3.0
    TIMEOUT_SECONDS = 2.0
    # Issued coupons never return to the pool, so "sold out" is final; each process keeps
    # that answer this long, sparing Redis the rest of a sale's losers. Kept short so that a
    # premature "sold out" (a reservation orphaned by a crash, until the next reload) is
    # not prolonged by it.
    SOLD_OUT_MEMORY_SECONDS = 1.0

    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix
        self._enter = redis.register_script(_ENTER)
        self._install = redis.register_script(_INSTALL)
        self._down_until = 0.0
        self._sold_out_until: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[bool]] = {}

    async def close(self) -> None:
        await self._redis.aclose()

    def _keys(self, code: str) -> tuple[str, str]:
        base = f"{self._prefix}:coupon:{{{code}}}"
        return f"{base}:meta", f"{base}:holders"

    async def enter(self, code: str, user_id: int, now: datetime, load: StateLoader) -> str:
        clock = time.monotonic()
        if clock < self._sold_out_until.get(code, 0.0):
            return SOLD_OUT
        if clock < self._down_until:
            return PASS
        meta, holders = self._keys(code)
        try:
            for _ in range(3):
                # A deadline here rather than redis-py's socket timeout, whose per-call
                # asyncio.wait_for costs a task on Python 3.11 on the flash sale's hot path.
                async with asyncio.timeout(self.TIMEOUT_SECONDS):
                    verdict = await self._enter(keys=[meta, holders],
                                                args=[user_id, _ms(now), self.RELOAD_MS * 2])
                if verdict == SOLD_OUT:
                    self._remember_sold_out(code)
                if verdict != "MISS":
                    return verdict
                if not await self._loaded(code, load):
                    return PASS  # unknown code: the database path answers 404
            return PASS
        except REDIS_DOWN as error:
            self._step_aside(error)
            return PASS

    async def _loaded(self, code: str, load: StateLoader) -> bool:
        """Load the coupon's state into Redis, once per process however many claims found
        it missing at once (a sale's first moment); False if there is no such coupon."""
        loading = self._loading.get(code)
        if loading is None:
            loading = self._loading[code] = asyncio.ensure_future(self._load_from(code, load))
            loading.add_done_callback(lambda _: self._loading.pop(code, None))
        return await asyncio.shield(loading)

    async def _load_from(self, code: str, load: StateLoader) -> bool:
        state = await load(code)
        if state is None:
            return False
        async with asyncio.timeout(self.TIMEOUT_SECONDS * 5):
            await self._load(code, state)
        return True

    async def _load(self, code: str, state: CouponState) -> None:
        meta, holders = self._keys(code)
        staging = f"{holders}:loading:{uuid.uuid4().hex}"
        for start in range(0, len(state.holders), 5_000):
            await self._redis.sadd(staging, *state.holders[start:start + 5_000])
        await self._redis.pexpire(staging, 60_000)
        ends = str(_ms(state.ends_at)) if state.ends_at else ""
        await self._install(keys=[meta, holders, staging],
                            args=[state.total, _ms(state.starts_at), ends, self.RELOAD_MS])

    async def won(self, code: str, user_id: int) -> None:
        """The database issued it: the reservation stands."""

    async def lost(self, code: str, user_id: int, reason: str) -> None:
        """The database refused (or failed): give the reservation back, unless the user
        does hold one."""
        if reason == SOLD_OUT:
            self._remember_sold_out(code)
        if reason == ALREADY or time.monotonic() < self._down_until:
            return
        try:
            async with asyncio.timeout(self.TIMEOUT_SECONDS):
                await self._redis.srem(self._keys(code)[1], user_id)
        except REDIS_DOWN as error:
            self._step_aside(error)

    def _remember_sold_out(self, code: str) -> None:
        if len(self._sold_out_until) > 10_000:
            self._sold_out_until.clear()
        self._sold_out_until[code] = time.monotonic() + self.SOLD_OUT_MEMORY_SECONDS

    def _step_aside(self, error: BaseException) -> None:
        log.warning("coupon gate: Redis unavailable, using the database alone",
                    extra={"error": type(error).__name__})
        self._down_until = time.monotonic() + self.BACKOFF_SECONDS
