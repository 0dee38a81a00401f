"""Group commit for claims: the claims that passed the gate are written to the database in
batches, one transaction per batch, and each is answered after its batch commits.

A flash sale's claims all want one row, the coupon's. Written one transaction each, every
claim waits its turn for that row lock, which is held across several round trips plus the
event loop's delay in a busy process: about 80-130 issues a second, however fast the rest
is. Here each process keeps, per coupon, the claims waiting to be written; while one batch
is being written the next claims gather, and the next batch takes them all (up to
MAX_BATCH). With no queue a claim is written at once, alone, so nothing waits on a timer;
under a storm one transaction issues hundreds. The rules are the database's, in
`service.issue`, the same for a batch of one: a batch only changes how many claims share
a transaction.

If the database refuses a holder row of a batch (a user that does not exist, or a holder
written meanwhile by another process while the Redis gate was stepping aside), the batch
rolls back and its claims are written again one by one, so that one claim's refusal is not
the others'."""

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

    def __init__(self, db: Database):
        self._db = db
        self._waiting: dict[str, list[_Waiting]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def issue(self, code: str, user_id: int, now: datetime) -> service.Claimed:
        """The user's claim, written with whichever others are waiting for the same coupon:
        the held coupon once committed, or the claim's refusal (CouponSoldOut,
        CouponAlreadyClaimed, CouponNotActive, CouponNotFound, HolderRefused) raised."""
        answer: asyncio.Future[service.Claimed] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(code, []).append(_Waiting(user_id, now, answer))
        if code not in self._writers:
            self._writers[code] = asyncio.create_task(self._write(code))
        # A request that goes away cancels only its wait: its batch is written all the same.
        return await answer

    async def _write(self, code: str) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting.get(code):
                batch = self._next_batch(code)
                await self._settle(code, batch)
        except BaseException:  # cancelled at shutdown: nobody is left waiting
            for waiting in batch + self._waiting.pop(code, []):
                waiting.answer.cancel()
            raise
        finally:
            del self._writers[code]
            if not self._waiting.get(code):
                self._waiting.pop(code, None)

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
            async with self._db.uow() as uow:
                outcomes = await service.issue(uow, code, [(w.user_id, w.now) for w in batch])
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
