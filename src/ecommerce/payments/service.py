"""Card payments as the shop keeps them, and the one way the gateway is asked.

A payment row is opened with its order or balance charge (READY), moved to CONFIRMING in
the transaction before the gateway is asked, and settled after the answer in another one:
DONE, FAILED, or left CONFIRMING when no answer came (a lookup settles it later). Every move
is conditional on the status it leaves, so two requests or job runs never both make one,
and no database transaction is open while the gateway is waited on (docs/architecture.md,
"Card payments"). What a payment pays for (an order, a recharge) is its domain's business:
orders/card.py and wallet/charges.py."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecommerce.payments import repository
from ecommerce.payments.errors import PaymentMethodUnavailable
from ecommerce.payments.gateway import (
    CANCELED,
    DONE,
    Gateway,
    GatewayPayment,
    GatewayRefused,
    GatewayUnreachable,
)
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.settings import Settings

log = logging.getLogger("ecommerce.payments")


def required(gateway: Gateway | None) -> Gateway:
    """The configured gateway, or 409 PAYMENT_METHOD_UNAVAILABLE."""
    if gateway is None:
        raise PaymentMethodUnavailable()
    return gateway


def settled_after(settings: Settings) -> float:
    """Seconds after a confirm's call began by which it has surely ended at the gateway
    (its timeout plus a grace): a lookup then tells what happened, and "no payment there"
    means "none", not "not yet"."""
    return settings.payment_timeout_seconds + settings.payment_settle_grace_seconds


def unanswered_long_enough(payment: Any, settings: Settings, now: datetime) -> bool:
    """A CONFIRMING payment whose confirm call has surely ended: a lookup that finds no
    approval then means it failed. (A READY one was never sent: "no approval" there only
    means the customer has not paid yet.)"""
    return bool(payment.status == "CONFIRMING" and payment.attempted_at is not None
                and payment.attempted_at + timedelta(seconds=settled_after(settings)) <= now)


async def open_payment(uow: UnitOfWork, *, kind: str, user_id: int, order_id: int | None,
                       amount: int, now: datetime, hold_seconds: int) -> Any:
    """A READY payment of `amount` with a new gateway order id; the row."""
    pg_order_id = f"{'ORD' if kind == 'ORDER' else 'CHG'}-{secrets.token_hex(12)}"
    payment_id = await repository.add(uow.conn, {
        "kind": kind, "user_id": user_id, "order_id": order_id, "pg_order_id": pg_order_id,
        "amount": amount, "status": "READY", "created_at": now,
        "expires_at": now + timedelta(seconds=hold_seconds)})
    return await repository.get(uow.conn, payment_id)


def checkout_view(payment: Any, client_key: str | None) -> dict[str, Any]:
    """What the customer's checkout needs to pay it at the gateway."""
    return {"pg_order_id": payment.pg_order_id, "amount": payment.amount,
            "client_key": client_key, "expires_at": payment.expires_at,
            "status": payment.status, "payment_key": payment.payment_key}


def admin_view(payment: Any) -> dict[str, Any]:
    return {"payment_id": payment.id, "kind": payment.kind, "user_id": payment.user_id,
            "order_id": payment.order_id,
            "charge_id": payment.id if payment.kind == "CHARGE" else None,
            "pg_order_id": payment.pg_order_id, "payment_key": payment.payment_key,
            "amount": payment.amount, "status": payment.status,
            "failure_code": payment.failure_code, "created_at": payment.created_at,
            "expires_at": payment.expires_at, "approved_at": payment.approved_at,
            "cancelled_at": payment.cancelled_at}


async def of_order(uow: UnitOfWork, order_id: int) -> Any:
    return await repository.of_order(uow.conn, order_id)


async def of_orders(uow: UnitOfWork, order_ids: Sequence[int]) -> dict[int, Any]:
    return await repository.of_orders(uow.conn, order_ids)


async def get(uow: UnitOfWork, payment_id: int) -> Any:
    return await repository.get(uow.conn, payment_id)


async def by_pg_order_id(uow: UnitOfWork, pg_order_id: str) -> Any:
    return await repository.by_pg_order_id(uow.conn, pg_order_id)


async def begin_confirm(uow: UnitOfWork, payment: Any, payment_key: str, now: datetime) -> bool:
    """READY -> CONFIRMING with the customer's payment key, before the gateway is asked;
    False if another request got there first."""
    return await repository.move(uow.conn, payment.id, ("READY",), "CONFIRMING",
                                 {"payment_key": payment_key, "attempted_at": now})


async def approved(uow: UnitOfWork, payment: Any, answer: GatewayPayment, now: datetime,
                   from_statuses: Sequence[str] = ("CONFIRMING", "READY")) -> bool:
    """The gateway charged it: DONE (once; False if it was settled already)."""
    return await repository.move(uow.conn, payment.id, from_statuses, "DONE", {
        "payment_key": answer.payment_key, "approved_at": answer.approved_at or now})


async def failed(uow: UnitOfWork, payment: Any, code: str, message: str) -> bool:
    """Declined, or no approval at the gateway: FAILED (once)."""
    return await repository.move(uow.conn, payment.id, ("CONFIRMING", "READY"), "FAILED", {
        "failure_code": code[:64], "failure_message": message[:255]})


async def looked_again(uow: UnitOfWork, payment: Any, now: datetime) -> None:
    """A FAILED payment was looked up again and is still not approved."""
    await repository.touch(uow.conn, payment.id, "FAILED", now)


async def orphaned(uow: UnitOfWork, payment: Any, answer: GatewayPayment, now: datetime
                   ) -> bool:
    """The gateway charged a payment whose order or charge no longer takes it (it expired
    or failed meanwhile): to be refunded (CANCEL_PENDING); False if it is DONE, or its
    refund is under way already."""
    return await repository.move(
        uow.conn, payment.id, ("READY", "CONFIRMING", "FAILED", "EXPIRED"), "CANCEL_PENDING",
        {"payment_key": answer.payment_key, "approved_at": answer.approved_at or now,
         "attempted_at": now})


async def expired(uow: UnitOfWork, payment: Any) -> bool:
    return await repository.move(uow.conn, payment.id, ("READY",), "EXPIRED", {})


async def refund_pending(uow: UnitOfWork, payment: Any, now: datetime,
                         from_statuses: Sequence[str] = ("DONE",)) -> bool:
    """A refund is to be asked of the gateway (retried until it answers)."""
    return await repository.move(uow.conn, payment.id, from_statuses, "CANCEL_PENDING",
                                 {"attempted_at": now})


async def refunded(uow: UnitOfWork, payment: Any, now: datetime) -> bool:
    return await repository.move(uow.conn, payment.id, ("CANCEL_PENDING",), "CANCELLED",
                                 {"cancelled_at": now})


# Failures a lookup decided ("the gateway holds no approval"), as opposed to the
# gateway's own refusal of a confirm: a gateway that processed the confirm later than the
# lookup could still approve one, so the job looks again for a while.
DECIDED_BY_LOOKUP = ("NOT_FOUND_PAYMENT", "IN_PROGRESS", "READY")


async def due(uow: UnitOfWork, now: datetime, settings: Settings, limit: int = 100
              ) -> dict[str, Sequence[Any]]:
    """What the reconcile job has to do: READY payments past their hold, CONFIRMING ones
    whose gateway call has surely ended, refunds still to be asked, and payments a lookup
    failed, looked at again every PAYMENT_RECHECK_SECONDS for PAYMENT_RECHECK_HOURS."""
    settled_before = now - timedelta(seconds=settled_after(settings))
    return {
        "recheck": await repository.failed_by_lookup(
            uow.conn, DECIDED_BY_LOOKUP, now - timedelta(seconds=settings.payment_recheck_seconds),
            now - timedelta(hours=settings.payment_recheck_hours), limit),
        "expire": await repository.due(uow.conn, "READY", now, "expires_at", limit),
        "settle": await repository.due(uow.conn, "CONFIRMING", settled_before,
                                       "attempted_at", limit),
        "refund": await repository.due(uow.conn, "CANCEL_PENDING", now, "attempted_at",
                                       limit),
    }


async def all_payments(uow: UnitOfWork) -> Sequence[Any]:
    return await repository.all_payments(uow.conn)


async def search(uow: UnitOfWork, *, status: str | None, kind: str | None, limit: int,
                 offset: int) -> tuple[list[dict[str, Any]], int]:
    rows, total = await repository.search(uow.conn, status, kind, limit, offset)
    return [admin_view(row) for row in rows], total


# The gateway's answers, as the flows need them.

@dataclass(frozen=True)
class Outcome:
    """APPROVED (the card was charged this amount), DECLINED (it was not, and will not
    be by this call), or UNKNOWN (no answer: only a later lookup tells)."""

    verdict: str
    payment: GatewayPayment | None = None
    code: str = ""
    message: str = ""


APPROVED, DECLINED, UNKNOWN = "APPROVED", "DECLINED", "UNKNOWN"


async def confirm(gateway: Gateway, payment: Any, payment_key: str) -> Outcome:
    """Ask the gateway to charge the payment the customer authorised (no transaction may
    be open). A refusal that means "already processed" is read back instead."""
    try:
        answer = await gateway.confirm(payment_key, payment.pg_order_id, payment.amount)
    except GatewayUnreachable as error:
        log.warning("confirm of %s: no answer (%s)", payment.pg_order_id, error)
        return Outcome(UNKNOWN)
    except GatewayRefused as refused:
        if refused.code in ("ALREADY_PROCESSED_PAYMENT", "PROVIDER_ERROR"):
            return await look_up(gateway, payment)
        return Outcome(DECLINED, code=refused.code, message=refused.message)
    return _judged(payment, answer)


async def look_up(gateway: Gateway, payment: Any) -> Outcome:
    """What the gateway holds for this payment: APPROVED, DECLINED (nothing charged) or
    UNKNOWN (it did not answer)."""
    try:
        answer = await gateway.by_order_id(payment.pg_order_id)
    except (GatewayUnreachable, GatewayRefused) as error:
        log.warning("lookup of %s: no answer (%s)", payment.pg_order_id, error)
        return Outcome(UNKNOWN)
    if answer is None:
        return Outcome(DECLINED, code="NOT_FOUND_PAYMENT",
                       message="The gateway holds no payment for this order")
    return _judged(payment, answer)


def _judged(payment: Any, answer: GatewayPayment) -> Outcome:
    if answer.approved and answer.total_amount == payment.amount:
        return Outcome(APPROVED, answer)
    if answer.approved:  # charged another amount: never ours to keep
        log.error("payment %s: the gateway charged %s, not %s", payment.pg_order_id,
                  answer.total_amount, payment.amount)
        return Outcome(APPROVED, answer, code="AMOUNT_MISMATCH")
    return Outcome(DECLINED, answer, code=answer.status,
                   message=f"The gateway's payment is {answer.status}")


async def refund(gateway: Gateway, payment: Any, reason: str) -> bool:
    """Ask the gateway to refund the whole payment, once whatever the retries (the
    Idempotency-Key is the payment's); True when it is refunded."""
    if payment.payment_key is None:
        return True  # never charged
    try:
        await gateway.cancel(payment.payment_key, payment.amount, reason,
                             idempotency_key=f"refund-{payment.pg_order_id}")
    except GatewayUnreachable as error:
        log.warning("refund of %s: no answer (%s)", payment.pg_order_id, error)
        return False
    except GatewayRefused as refused:
        if refused.code == "ALREADY_CANCELED_PAYMENT":
            return True
        if refused.code in ("NOT_FOUND_PAYMENT", "NOT_CANCELABLE_PAYMENT"):
            state = await look_up(gateway, payment)
            if state.verdict == DECLINED or (  # nothing charged, or refunded already
                    state.payment is not None and state.payment.status == CANCELED):
                return True
        log.error("refund of %s refused: %s %s", payment.pg_order_id, refused.code,
                  refused.message)
        return False
    return True


def is_done(answer: GatewayPayment | None) -> bool:
    return answer is not None and answer.status == DONE


Finish = Callable[[UnitOfWork, Any, datetime], Awaitable[bool]]


async def retry_refund(db: Database, gateway: Gateway, payment_id: int,
                       now: Callable[[], datetime], finish: Finish | None = None) -> None:
    """Ask the gateway to refund a CANCEL_PENDING payment (idempotent there, so any number
    of tries refund once). Once it did: `finish(uow, payment, now)` completes what the
    refund was for (an order's cancellation, which marks the payment CANCELLED itself),
    or, without it or if it had nothing to do, just the payment is marked. No answer: it
    stays CANCEL_PENDING for the job's next run."""
    async with db.uow(write=False) as uow:
        payment = await repository.get(uow.conn, payment_id)
    if payment is None or payment.status != "CANCEL_PENDING":
        return
    if not await refund(gateway, payment, "주문 취소 / cancelled"):
        async with db.uow() as uow:
            await refund_pending(uow, payment, now(), from_statuses=("CANCEL_PENDING",))
        return
    moment = now()
    async with db.uow() as uow:
        if finish is None or not await finish(uow, payment, moment):
            await refunded(uow, payment, moment)
