"""Group commit for claims: the claims that passed the gate are written to the database in
batches, one transaction per batch, and each is answered after its batch commits.

A flash sale's claims all want one row, the coupon's. Written one transaction each, every
claim waits its turn for that row lock, which is held across several round trips plus the
event loop's delay in a busy process: about 80-130 issues a second, however fast the rest
is. Here each process has, per coupon, one writer: while it writes a batch the next claims
gather, and its next batch takes them all (up to MAX_BATCH). A claim that finds no writer
starts one and is written at once, alone, so nothing waits on a timer when the shop is
quiet. During a storm the writer, right after a batch, waits up to LINGER_SECONDS for as
many claims as that batch had (its claimers are already sending their next), so that the
first to arrive does not leave alone in a batch the others must then wait for.

The rules are the database's, in `service.issue`, the same for a batch of one: a batch
only changes how many claims share a transaction. Its reads take no lock and its writes
are guarded; if another process issued some meanwhile (the guard refuses), the batch is
decided again under the coupon's row lock. If the database refuses a holder row (a user
that does not exist, or a holder written meanwhile while the Redis gate was stepping
aside), the batch rolls back and its claims are written again one by one, so that one
claim's refusal is not the others'."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ecommerce.coupons import service
from ecommerce.platform.database import Database


@dataclass(frozen=True)
class _Waiting:
    user_id: int
    now: datetime
    answer: asyncio.Future[service.Claimed]


class Issuer:
    MAX_BATCH = 500
    LINGER_SECONDS = 0.01

    def __init__(self, db: Database):
        self._db = db
        self._in_one_call = service.issues_in_one_statement(db.dialect)
        self._waiting: dict[str, list[_Waiting]] = {}
        self._writing: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._enough: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._terms: dict[str, service.Terms] = {}

    async def issue(self, code: str, user_id: int, now: datetime) -> service.Claimed:
        """The user's claim, written with whichever others are waiting for the same coupon:
        the held coupon once committed, or the claim's refusal (CouponSoldOut,
        CouponAlreadyClaimed, CouponNotActive, CouponNotFound, HolderRefused) raised."""
        answer: asyncio.Future[service.Claimed] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(code, [])
        waiting.append(_Waiting(user_id, now, answer))
        expected, enough = self._enough.get(code, (0, None))
        if enough is not None and len(waiting) >= expected and not enough.done():
            enough.set_result(None)
        if code not in self._writing:
            self._start(code)
        # A request that goes away cancels only its wait: its batch is written all the same.
        return await answer

    def _start(self, code: str) -> None:
        """The coupon's writer: it writes batch after batch while claims wait. Its first
        batch takes, when its task first runs, every claim waiting by then."""
        task = asyncio.create_task(self._write(code))
        self._writing[code] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, code: str) -> None:
        batch: list[_Waiting] = []
        try:
            while True:
                if batch:
                    await self._gather(code, len(batch))
                batch = self._next_batch(code)
                if not batch:
                    break
                await self._settle(code, batch)
        except BaseException:  # cancelled at shutdown: nobody is left waiting
            for waiting in batch + self._waiting.pop(code, []):
                waiting.answer.cancel()
            raise
        finally:
            self._writing.pop(code, None)
            if not self._waiting.get(code):
                self._waiting.pop(code, None)

    async def _gather(self, code: str, expected: int) -> None:
        """Right after a batch, wait (up to LINGER_SECONDS) until as many claims wait as
        that batch had. In a storm its claimers are already sending their next; taking only
        the first to arrive would make the rest wait for a batch of one. When the shop is
        quiet the writer waits out the linger alone and ends; a claim that comes meanwhile
        and makes up the number is written at once."""
        if len(self._waiting.get(code, ())) >= expected:
            return
        enough: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enough[code] = (expected, enough)
        try:
            async with asyncio.timeout(self.LINGER_SECONDS):
                await enough
        except TimeoutError:
            pass
        finally:
            self._enough.pop(code, None)

    def _next_batch(self, code: str) -> list[_Waiting]:
        """The waiting claims in arrival order, up to MAX_BATCH, each user once (a second
        claim of a user stays for the next batch, which finds the first's outcome)."""
        batch: list[_Waiting] = []
        later: list[_Waiting] = []
        users: set[int] = set()
        for waiting in self._waiting[code]:
            if len(batch) >= self.MAX_BATCH or waiting.user_id in users:
                later.append(waiting)
            else:
                users.add(waiting.user_id)
                batch.append(waiting)
        self._waiting[code] = later
        return batch

    async def _settle(self, code: str, batch: Sequence[_Waiting]) -> None:
        outcomes: Sequence[service.Outcome | Exception]
        try:
            outcomes = await self._decide(code, [(w.user_id, w.now) for w in batch])
        except service.HolderRefused as refused:
            if len(batch) > 1:
                for waiting in batch:
                    await self._settle(code, [waiting])
                return
            outcomes = [refused]
        except Exception as error:  # the database failed them all (a 503 for each)
            outcomes = [error] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.answer.done():
                continue
            if isinstance(outcome, Exception):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)

    async def _decide(self, code: str, claims: list[tuple[int, datetime]]
                      ) -> list[service.Outcome]:
        """With the coupon's terms known, nothing is read (the writes' guards check the
        count, the window and each holder); if a guard refuses, the batch is decided again
        from a read, and if the count's guard refuses again, under the row lock."""
        terms = self._terms.get(code)
        if terms is not None:
            try:
                return await self._decide_once(code, claims, terms, locked=False)
            except (service.Stale, service.HolderRefused):
                pass
        try:
            return await self._decide_once(code, claims, None, locked=False)
        except service.Stale:  # another process issued some meanwhile
            return await self._decide_once(code, claims, None, locked=True)

    async def _decide_once(self, code: str, claims: list[tuple[int, datetime]],
                           terms: service.Terms | None, *, locked: bool
                           ) -> list[service.Outcome]:
        # On PostgreSQL the unlocked reads and the one write call need no BEGIN and COMMIT.
        async with self._db.uow(one_statement=self._in_one_call and not locked) as uow:
            terms, outcomes = await service.issue(uow, code, claims, terms=terms,
                                                  locked=locked, in_one_call=self._in_one_call)
        if len(self._terms) > 10_000:
            self._terms.clear()
        self._terms[code] = terms
        return outcomes
