"""Cached product listings that are never stale.

A listing's expensive part (filters, keyword scan, sort, count) is cached as a list of ids
and a total, tagged with the catalog's *generation*; the rows themselves (price, stock, name)
are always read live by primary key. Every change that could alter a listing's membership
or order bumps the generation, and an entry tagged with an older one is never used (it is
recomputed and overwritten), so a cached answer from before the change is never read again:

* with Redis, the generation is a Redis counter, bumped right after the change commits
  (before the response), shared by every process; it and the entry are read in one MGET;
* without Redis, it is a row in the database, bumped inside the change's own transaction.

Sorting by `popular` is not cached: it moves with every sale."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ecommerce.catalog import repository
from ecommerce.platform.cache import Cache
from ecommerce.platform.database import UnitOfWork

TTL_SECONDS = 60.0
_KEY = "catalog:generation"


class Listings:
    def __init__(self, cache: Cache, *, shared_generation: bool):
        self.cache = cache
        self.shared = shared_generation  # True: the generation lives in Redis

    async def lookup(self, uow: UnitOfWork, params: dict[str, Any]
                     ) -> tuple[int | None, tuple[list[int], int] | None]:
        """(the current generation, the cached ids and total or None). The generation is
        None when Redis is unreachable: the listing is then neither read nor stored."""
        key = self._key(params)
        if self.shared:
            both = await self.cache.get_counter_and(_KEY, key)
            if both is None:
                return None, None
            generation, cached = both
        else:
            generation = await repository.generation(uow.conn)
            cached = await self.cache.get(key)
        if cached is None:
            return generation, None
        tagged, ids, total = orjson.loads(cached)
        return generation, ((ids, total) if tagged == generation else None)

    async def changed(self, uow: UnitOfWork) -> None:
        """Record that listings may change; call inside the transaction that changes them."""
        if self.shared:
            if not getattr(uow, "_listing_bump", False):
                uow._listing_bump = True  # type: ignore[attr-defined]

                async def bump() -> None:
                    await self.cache.incr(_KEY)

                uow.after_commit(bump)
        else:
            await repository.bump_generation(uow.conn)

    async def store(self, generation: int | None, params: dict[str, Any], ids: list[int],
                    total: int) -> None:
        if generation is not None:
            await self.cache.set(self._key(params),
                                 orjson.dumps([generation, ids, total]).decode(), TTL_SECONDS)

    @staticmethod
    def _key(params: dict[str, Any]) -> str:
        digest = hashlib.sha1(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"catalog:list:{digest}"
