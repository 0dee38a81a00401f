"""Card payments' use cases: every transaction around a gateway call is opened here, one
short transaction before the call and one after it, never one around it (the machine's
moves, payments/machine.py, run inside them). A confirm of any purpose, the read-back
that settles what a confirm left unknown, refunds, the gateway's webhook, the reconcile
job's pass and the admin's list."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from ecommerce.payments import machine, reading, repository
from ecommerce.payments.errors import (
    PaymentAmountMismatch,
    PaymentDeclined,
    PaymentMethodUnavailable,
)
from ecommerce.payments.gateway import Gateway
from ecommerce.payments.machine import DECLINED, Purpose, Reading
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database, UnitOfWork, is_deadlock
from ecommerce.platform.errors import ServerBusy
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, require_admin

log = logging.getLogger("ecommerce.payments")
T = TypeVar("T")
REFUND_REASON = "주문 취소 / cancelled"


@dataclass(frozen=True)
class PaymentTerms:
    """The card payment settings the use cases need."""

    timeout_seconds: float = 10.0  # a gateway call's bound
    settle_grace_seconds: float = 5.0
    hold_seconds: int = 600
    recheck_seconds: float = 600.0
    recheck_hours: float = 24.0

    @property
    def settle_after(self) -> float:
        return machine.settled_after(self.timeout_seconds, self.settle_grace_seconds)


class Payments:
    """The card payments of one process: its gateway client (None: card payment is off)
    and the purposes payments pay for, registered by the composition root."""

    def __init__(self, db: Database, clock: Clock, gateway: Gateway | None,
                 terms: PaymentTerms):
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.terms = terms
        self.purposes: dict[str, Purpose] = {}
        self._confirming: dict[int, asyncio.Event] = {}  # this process's calls in flight
        self._notices = 0  # webhook read-backs in flight

    def register(self, purpose: Purpose) -> None:
        self.purposes[purpose.kind] = purpose

    @property
    def available(self) -> bool:
        return self.gateway is not None

    def required(self) -> Gateway:
        """The gateway, or 409 PAYMENT_METHOD_UNAVAILABLE."""
        if self.gateway is None:
            raise PaymentMethodUnavailable()
        return self.gateway

    # Confirm ---------------------------------------------------------------------------

    async def confirm(self, kind: str, subject_id: int, caller: Principal, payment_key: str,
                      amount: int) -> tuple[int, Any]:
        """Charge what the customer authorised at the gateway's checkout for this subject
        (an order, a charge): the purpose's answer, 200 once applied, 202 while the
        gateway's answer is unknown (settled later from a read-back); 402 declined, with
        every hold given back. The gateway is asked at most once per payment: a repeat of
        a confirm that succeeded answers it again, and one that arrives while another is
        at the gateway waits for its outcome (bounded by the gateway call's timeout)."""
        purpose = self.purposes[kind]
        now = self.clock.now()
        expiring = expired = False
        # A purpose that begins in one statement needs no transaction around this read
        # and that statement (an expiry, several writes, is a transaction of its own).
        async with self.db.uow(one_statement=purpose.in_one_call) as uow:
            payment = await purpose.owned(uow, subject_id, caller)
            gateway = self.required()  # 409 without one, once the subject is found
            if payment.status == "DONE" and payment.payment_key == payment_key:
                return await purpose.answer(uow, payment)  # a repeat
            if payment.status == "CONFIRMING":
                begun = None
            elif payment.status == "FAILED" and payment.payment_key == payment_key and \
                    payment.failure_code not in machine.DECIDED_BY_LOOKUP:
                raise PaymentDeclined(payment.failure_code or "DECLINED",
                                      payment.failure_message or "")  # a repeat
            elif payment.status != "READY":
                raise await purpose.refusal(uow, payment)
            elif amount != payment.amount:
                raise PaymentAmountMismatch(f"amount: {amount} won, but {payment.amount} won "
                                            "is to be paid by card")
            elif payment.expires_at <= now:
                expiring, begun = True, None
            elif await machine.begin(uow, purpose, payment, payment_key, now):
                begun = SimpleNamespace(**{  # the row as that move left it
                    **machine.fields_of(payment), "status": "CONFIRMING",
                    "payment_key": payment_key, "attempted_at": now})
            else:
                begun = None  # another confirm moved it first
        if expiring:  # False: another request moved it first (its outcome is answered)
            async with self.db.uow() as uow:
                expired = await machine.expire(uow, purpose, payment, now)
        if expired:
            async with self.db.uow(write=False) as uow:
                raise await purpose.refusal(uow, await repository.get(uow.conn, payment.id))
        if begun is None:
            return await self._outcome_of_another(purpose, payment.id, payment_key)
        settled = self._confirming.setdefault(payment.id, asyncio.Event())
        try:
            answer = await reading.confirm(gateway, begun, payment_key)
            # A refusal of the confirm itself is final; a read-back's decline counts as
            # one too (the call has ended: the gateway answered).
            shown = await self._settle(purpose, begun, answer, surely_ended=True,
                                       answering=True)
        finally:
            self._confirming.pop(payment.id, None)
            settled.set()
        if answer.verdict == DECLINED:
            raise PaymentDeclined(answer.code, answer.message)
        return shown or await self._answer(purpose, payment.id)

    async def _outcome_of_another(self, purpose: Purpose, payment_id: int, payment_key: str
                                  ) -> tuple[int, Any]:
        """Another request is confirming this payment: wait until it has settled it (or
        its gateway call's bound has passed), then answer its outcome."""
        deadline = time.monotonic() + self.terms.timeout_seconds + 1.0
        while True:
            async with self.db.uow(write=False) as uow:
                payment = await repository.get(uow.conn, payment_id)
                if payment.status != "CONFIRMING" or time.monotonic() >= deadline:
                    if payment.payment_key == payment_key and payment.status == "FAILED":
                        raise PaymentDeclined(payment.failure_code or "DECLINED",
                                              payment.failure_message or "")
                    if payment.status in ("READY", "FAILED", "EXPIRED", "VOIDED") or (
                            payment.payment_key != payment_key):
                        raise await purpose.refusal(uow, payment)
                    return await purpose.answer(uow, payment)
            here = self._confirming.get(payment_id)
            wait = min(0.1, max(deadline - time.monotonic(), 0.0))
            if here is not None:  # in this process: woken the moment it settles
                try:
                    async with asyncio.timeout(wait):
                        await here.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(wait)

    async def _answer(self, purpose: Purpose, payment_id: int) -> tuple[int, Any]:
        async with self.db.uow(write=False) as uow:
            return await purpose.answer(uow, await repository.get(uow.conn, payment_id))

    # Settling from the gateway -----------------------------------------------------------

    async def _settle(self, purpose: Purpose, payment: Any, answer: Reading, *,
                      surely_ended: bool, answering: bool = False) -> tuple[int, Any] | None:
        """Settle from the gateway's answer in one transaction, then ask for the refunds
        it left to do. `answering`: an approval applied with nothing to refund is answered
        from that same transaction (the purpose's answer); else None."""
        if answer.verdict == machine.UNKNOWN and not answer.strays:
            return None
        if answering and purpose.in_one_call:
            now = self.clock.now()
            charged = machine.plain_approval(payment, answer, now)
            if charged is not None:
                shown = await self._applied_in_one_call(purpose, payment, charged, now)
                if shown is not None:
                    return shown

        async def work(uow: UnitOfWork) -> tuple[machine.Settled, tuple[int, Any] | None]:
            settled = await machine.settle(uow, purpose, payment, answer, self.clock.now(),
                                           surely_ended=surely_ended)
            if answering and settled.applied is not None and not settled.strays:
                return settled, await purpose.answer(uow, settled.applied, settled.done)
            return settled, None

        settled, shown = await self._in_uow(work)
        if settled.refund:
            await self.refund(payment.id)
        for key in settled.strays:
            await self.refund_stray(key)
        return shown

    async def _applied_in_one_call(self, purpose: Purpose, payment: Any,
                                   charged: dict[str, Any], now: Any
                                   ) -> tuple[int, Any] | None:
        """A plain approval applied in the purpose's one statement, answered from what it
        wrote; None if that found a guard failed or met a deadlock (nothing written: the
        usual settling then decides, in a transaction)."""
        try:
            async with self.db.uow(one_statement=True) as uow:
                done = await purpose.applied_in_one_call(uow, payment, charged, now)
                return await purpose.answer(uow, machine.as_applied(payment, charged), done)
        except machine.NotInOneCall:
            return None
        except DBAPIError as error:
            if not is_deadlock(error):
                raise
            return None

    async def settle_from_gateway(self, payment: Any, gateway: Gateway | None = None
                                  ) -> Reading:
        """Read a payment back from the gateway and settle it by what it holds."""
        answer = await reading.read_back(gateway or self.required(), payment)
        ended = machine.surely_ended(payment, self.clock.now(), self.terms.settle_after)
        await self._settle(self.purposes[payment.kind], payment, answer, surely_ended=ended)
        return answer

    async def recheck(self, payment: Any) -> None:
        """A payment a read-back failed: approved since, it is refunded (what it paid for
        gave everything back already); still not, it is looked at again later."""
        answer = await self.settle_from_gateway(payment)
        if answer.verdict == DECLINED:
            async with self.db.uow() as uow:
                await machine.looked_again(uow, payment, self.clock.now())

    async def expire(self, payment: Any) -> None:
        purpose = self.purposes[payment.kind]
        await self._in_uow(lambda uow: machine.expire(uow, purpose, payment,
                                                      self.clock.now()))

    # Refunds ------------------------------------------------------------------------------

    async def refund(self, payment_id: int) -> None:
        """Ask the gateway to refund a CANCEL_PENDING payment (idempotent there, so any
        number of tries refund once); once it did, CANCELLED and the purpose finishes. No
        answer: it stays CANCEL_PENDING for the job's next pass."""
        async with self.db.uow(write=False) as uow:
            payment = await repository.get(uow.conn, payment_id)
        if payment is None or payment.status != "CANCEL_PENDING":
            return
        done = payment.payment_key is None or await reading.refund(
            self.required(), payment.payment_key, REFUND_REASON)
        purpose = self.purposes[payment.kind]

        async def record(uow: UnitOfWork) -> None:
            if done:
                await machine.finish_refund(uow, purpose, payment, self.clock.now())
            else:
                await machine.refund_tried(uow, payment, self.clock.now())

        await self._in_uow(record)

    async def refund_stray(self, payment_key: str) -> None:
        """Refund an approval the shop never confirmed; asked again by the job until the
        gateway has done it."""
        done = await reading.refund(self.required(), payment_key, REFUND_REASON)
        async with self.db.uow() as uow:
            if done:
                await repository.stray_refunded(uow.conn, payment_key, self.clock.now())
            else:
                await repository.stray_tried(uow.conn, payment_key, self.clock.now())

    # The gateway's notice -----------------------------------------------------------------

    async def webhook(self, pg_order_id: str | None) -> None:
        """The gateway says a payment changed: read it back (the notice's body is never
        believed) and settle it, if it is ours. Read-backs for notices go through the
        gateway client's own small pool; past it this process answers 503, so a flood of
        forged notices never delays a confirm, a refund or the job (and a real gateway
        sends its notice again later)."""
        if not pg_order_id or self.gateway is None:
            return
        lane = self.gateway.notices
        if self._notices >= lane.capacity:
            raise ServerBusy("Too many payment notices are being checked; retry shortly")
        self._notices += 1
        try:
            async with self.db.uow(write=False) as uow:
                payment = await repository.by_pg_order_id(uow.conn, pg_order_id)
            if payment is None:
                return
            if payment.status == "CANCEL_PENDING":
                await self.refund(payment.id)
            else:
                await self.settle_from_gateway(payment, lane)
        finally:
            self._notices -= 1

    # The reconcile job's pass --------------------------------------------------------------

    async def reconcile_once(self) -> dict[str, int]:
        """One pass over what is due: READY payments past their hold expire (everything
        they held given back); CONFIRMING ones whose call has surely ended are read back
        and settled; refunds still to be done are asked again; payments a read-back failed
        are read back again for a day, in case the gateway approved them later. Every
        step is a conditional move, so any number of processes may run it at once; the
        worst a race costs is a read-back or an idempotent refund call made twice."""
        terms = self.terms
        async with self.db.uow(write=False) as uow:
            due = await machine.due(uow, self.clock.now(), settle_after=terms.settle_after,
                                    recheck_seconds=terms.recheck_seconds,
                                    recheck_hours=terms.recheck_hours)
        for payment in due.expire:
            await self.expire(payment)
        if self.gateway is not None:
            for payment in due.settle:
                await self.settle_from_gateway(payment)
            for payment in due.recheck:
                await self.recheck(payment)
            for payment in due.refund:
                await self.refund(payment.id)
            for stray in due.strays:
                await self.refund_stray(stray.payment_key)
        return due.counts()

    # Reads ----------------------------------------------------------------------------------

    async def admin_payments(self, caller: Principal, status: str | None, kind: str | None,
                             page: Page) -> tuple[list[dict[str, Any]], int]:
        """Card payments, newest first, each with the stray approvals found for it."""
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            rows, total = await repository.search(uow.conn, status, kind, page.size,
                                                  page.offset)
            strays = await repository.strays_of(uow.conn, [row.id for row in rows])
        by_payment: dict[int, list[Any]] = {}
        for stray in strays:
            by_payment.setdefault(stray.payment_id, []).append(stray)
        return [admin_view(row, by_payment.get(row.id, [])) for row in rows], total

    async def _in_uow(self, work: Callable[[UnitOfWork], Awaitable[T]],
                      attempts: int = 3) -> T:
        """`work` in one transaction, again from scratch on a deadlock (its moves are
        conditional: a repeat makes none twice)."""
        for attempt in range(attempts):
            try:
                async with self.db.uow() as uow:
                    return await work(uow)
            except DBAPIError as error:
                if not is_deadlock(error) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")


def checkout_view(payment: Any) -> dict[str, Any]:
    """What a customer's checkout needs to pay a payment at the gateway, and how far it
    got."""
    return {"pg_order_id": payment.pg_order_id, "amount": payment.amount,
            "expires_at": payment.expires_at, "status": payment.status,
            "payment_key": payment.payment_key}


def admin_view(payment: Any, strays: list[Any]) -> dict[str, Any]:
    return {"payment_id": payment.id, "kind": payment.kind, "user_id": payment.user_id,
            "order_id": payment.order_id,
            "charge_id": payment.id if payment.kind == "CHARGE" else None,
            "pg_order_id": payment.pg_order_id, "payment_key": payment.payment_key,
            "amount": payment.amount, "status": payment.status,
            "failure_code": payment.failure_code, "created_at": payment.created_at,
            "expires_at": payment.expires_at, "approved_at": payment.approved_at,
            "cancelled_at": payment.cancelled_at,
            "stray_approvals": [{"payment_key": s.payment_key, "amount": s.amount,
                                 "status": s.status, "found_at": s.found_at,
                                 "refunded_at": s.refunded_at} for s in strays]}

