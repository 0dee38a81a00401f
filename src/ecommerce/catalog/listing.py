"""Cached product listings that are never stale.

Two levels, each tagged with a *generation* and never used under a newer one (it is
recomputed and overwritten), so a cached answer from before a change is never read again:

* the expensive part of a listing (filters, keyword scan, sort, count) as a list of ids and
  a total, tagged with the catalog's generation, which every change that could alter a
  listing's membership or order bumps; the rows (price, stock, name) are then read live by
  primary key;
* with Redis, the whole page as sent, tagged with that generation and the *rows'*
  generation, which every change to a listed product's row bumps (an order's stock, a
  price, a cancellation's returned units): a visitor's repeated page is answered from one
  Redis read, without the database.

With Redis both generations are Redis counters, bumped right after the change commits and
before its response, shared by every process, and read with the entries in one MGET: a
reader that saw the old generation read the database no later than the change's commit,
so what it stores is tagged old and is never served after the change's answer. Without
Redis the catalog's generation is a row in the database, bumped inside the change's own
transaction, and pages are not cached (a per-order bump of one row would serialise every
order on it). Should a bump fail (Redis unreachable just after a commit), a page can be
stale for at most PAGE_TTL_SECONDS and a list of ids for TTL_SECONDS.

Sorting by `popular` (sold units, which move with every sale) is cached as a page only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from ecommerce.catalog import repository
from ecommerce.platform.cache import Cache
from ecommerce.platform.database import UnitOfWork

TTL_SECONDS = 60.0
PAGE_TTL_SECONDS = 10.0
_GENERATION = "catalog:generation"
_ROWS = "catalog:rows"


@dataclass(frozen=True)
class Seen:
    """What the cache held for one listing, read before the database. `generation` None:
    Redis is unreachable, nothing is read from or stored in the cache; `rows` None: pages
    are not cached (no Redis)."""

    generation: int | None
    rows: int | None = None
    ids: tuple[list[int], int] | None = None
    page: tuple[orjson.Fragment, int] | None = None


class Listings:
    def __init__(self, cache: Cache, *, shared_generation: bool):
        self.cache = cache
        self.shared = shared_generation  # True: the generations live in Redis

    async def ahead(self, params: dict[str, Any]) -> Seen | None:
        """What the cache holds for this listing, asked before a transaction is opened:
        None when the generation is in the database (ask `lookup` inside one)."""
        if not self.shared:
            return None
        ids_key, page_key = self._keys(params)
        found = await self.cache.get_many([_GENERATION, _ROWS, ids_key, page_key])
        if found is None:
            return Seen(None)
        generation, rows = int(found[0] or 0), int(found[1] or 0)
        return Seen(generation, rows, self._ids(found[2], generation, params),
                    self._page(found[3], generation, rows))

    async def lookup(self, uow: UnitOfWork, params: dict[str, Any]) -> Seen:
        """What the cache holds for this listing (ids only, without Redis)."""
        seen = await self.ahead(params)
        if seen is not None:
            return seen
        generation = await repository.generation(uow.conn)
        ids_key, _ = self._keys(params)
        return Seen(generation, None,
                    self._ids(await self.cache.get(ids_key), generation, params))

    async def changed(self, uow: UnitOfWork) -> None:
        """Record that listings' membership or order may change (and rows with it); call
        inside the transaction that changes them."""
        if self.shared:
            self._bump(uow, _GENERATION)
        else:
            await repository.bump_generation(uow.conn)

    def rows_changed(self, uow: UnitOfWork) -> None:
        """Record that a listed product's row changes (stock, price, sold units); call
        inside the transaction that changes it."""
        if self.shared:
            self._bump(uow, _ROWS)

    async def store(self, seen: Seen, params: dict[str, Any], ids: list[int], total: int
                    ) -> None:
        if seen.generation is not None and self._ids_cached(params):
            await self.cache.set(self._keys(params)[0],
                                 orjson.dumps([seen.generation, ids, total]).decode(),
                                 TTL_SECONDS)

    async def keep(self, seen: Seen, params: dict[str, Any], views: list[dict[str, Any]],
                   total: int) -> orjson.Fragment:
        """The page as sent (JSON), stored tagged with the generations seen before it was
        read when pages are cached."""
        body = orjson.dumps(views).decode()
        if seen.generation is not None and seen.rows is not None:
            await self.cache.set(self._keys(params)[1],
                                 f"{seen.generation}.{seen.rows}.{total}.{body}",
                                 PAGE_TTL_SECONDS)
        return orjson.Fragment(body)

    def _bump(self, uow: UnitOfWork, counter: str) -> None:
        bumps: set[str] | None = getattr(uow, "_listing_bumps", None)
        if bumps is None:
            bumps = uow._listing_bumps = set()  # type: ignore[attr-defined]

            async def bump() -> None:
                await self.cache.incr_all(sorted(bumps | {_ROWS}))

            uow.after_commit(bump)
        bumps.add(counter)

    def _ids(self, cached: str | None, generation: int, params: dict[str, Any]
             ) -> tuple[list[int], int] | None:
        if cached is None or not self._ids_cached(params):
            return None
        tagged, ids, total = orjson.loads(cached)
        return (ids, total) if tagged == generation else None

    @staticmethod
    def _page(cached: str | None, generation: int, rows: int
              ) -> tuple[orjson.Fragment, int] | None:
        if cached is None:
            return None
        tagged, tagged_rows, total, body = cached.split(".", 3)
        if int(tagged) != generation or int(tagged_rows) != rows:
            return None
        return orjson.Fragment(body), int(total)

    @staticmethod
    def _ids_cached(params: dict[str, Any]) -> bool:
        return params["sort"] != "popular"

    @staticmethod
    def _keys(params: dict[str, Any]) -> tuple[str, str]:
        digest = hashlib.sha1(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"catalog:list:{digest}", f"catalog:page:{digest}"
