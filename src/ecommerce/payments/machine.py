"""The card payment state machine: one for whatever a card pays for (an order, a balance
top-up, and whatever comes next), told apart only by its `Purpose`.

    READY --begin--> CONFIRMING --approved--> DONE --start_refund--> CANCEL_PENDING --> CANCELLED
      |                  |  \\--declined--> FAILED --approved later--> CANCEL_PENDING
      |                  \\--approved, but not the purpose's to take--> CANCEL_PENDING
      +--expire--> EXPIRED          +--void--> VOIDED   (either approved later: refunded)

A payment is opened beside what it pays for, in that transaction (READY). Before the
gateway is asked to confirm it, it is CONFIRMING with the key the shop confirms with,
committed; after the answer (or a read-back, when none came) it is settled in another
transaction. Once the shop has confirmed a key, only that key's approval is ever applied:
any other approval found for the payment's gateway order id is a stray, recorded and
refunded. A payment the shop never confirmed takes an approval made for its gateway order
id elsewhere as its own: applied while it still holds (READY), else refunded.

Every move is a conditional update of the payment row, and the payment row is the first
lock each of these transactions takes; what the payment pays for moves after it, through
the purpose, in the same transaction. So a repeated confirm, a webhook and the reconcile job
in any number of processes race and still make each move once. Nothing here calls the
gateway or opens a transaction: payments/usecases.py does both, never one inside the other.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar, Protocol

from ecommerce.payments import repository
from ecommerce.payments.gateway import GatewayPayment
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.principal import Principal

APPROVED, DECLINED, UNKNOWN = "APPROVED", "DECLINED", "UNKNOWN"
# Failures a read-back decided ("the gateway holds no approval for that key"), as opposed
# to the gateway's refusal of a confirm: a gateway that processed the confirm later than
# the read-back could still approve it, so the job looks again for a while.
DECIDED_BY_LOOKUP = ("NOT_FOUND_PAYMENT", "IN_PROGRESS", "READY", "WAITING_FOR_DEPOSIT",
                     "PROVIDER_ERROR")
# What a purpose is told when its payment will never be applied.
FAILED, EXPIRED, VOIDED = "FAILED", "EXPIRED", "VOIDED"


class Purpose(Protocol):
    """What a card payment pays for: what it holds, what approval applies, what it gives
    back. Each hook runs inside the machine's transaction, after the payment row moved."""

    kind: ClassVar[str]  # the payments row's `kind`

    async def owned(self, uow: UnitOfWork, subject_id: int, caller: Principal) -> Any:
        """The payment `caller` may confirm for this subject (an order id, a charge id);
        raise the purpose's not-found error otherwise."""

    async def started(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        """The gateway is about to be asked: from here only its answer settles it."""

    async def applied(self, uow: UnitOfWork, payment: Any, now: datetime) -> Any:
        """The card was charged: do what it was for, and return what it did (handed to
        `answer` in this transaction, so the answer need not read it back). Falsy if that
        can no longer be done (the payment is then refunded)."""

    async def released(self, uow: UnitOfWork, payment: Any, why: str, now: datetime
                       ) -> None:
        """It will never be applied (FAILED, EXPIRED or VOIDED): give every hold back."""

    async def refunded(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        """An applied payment was refunded at the gateway: finish what the refund was for
        (an order's cancellation)."""

    async def answer(self, uow: UnitOfWork, payment: Any, applied: Any = None
                     ) -> tuple[int, Any]:
        """What a confirm answers now: (200, ...) settled, (202, ...) still unknown.
        `applied`: what `applied` returned for this payment in this transaction."""

    async def refusal(self, uow: UnitOfWork, payment: Any) -> Exception:
        """Why this payment cannot be confirmed any more, in the purpose's words."""

    # A purpose may begin a confirm, and apply a plain approval (`plain_approval`), in one
    # statement of its own each, with no transaction around it (`in_one_call`, decided
    # when the app starts): the machine's move and the purpose's hook, guarded as they
    # are. The approval raises NotInOneCall when a guard fails (nothing written); the
    # payment is then settled as usual.
    in_one_call: bool

    async def began_in_one_call(self, uow: UnitOfWork, payment: Any, payment_key: str,
                                now: datetime) -> bool:
        """`begin`'s move and `started` in one statement; as `begin`."""

    async def applied_in_one_call(self, uow: UnitOfWork, payment: Any,
                                  charged: dict[str, Any], now: datetime) -> Any:
        """The DONE move with `charged` and `applied`'s work in one statement; returns
        what `applied` would."""


@dataclass(frozen=True)
class Reading:
    """What the gateway holds for a payment: `verdict` for the key the shop confirmed with
    (APPROVED: charged `approval`; DECLINED: not, and not by this call; UNKNOWN: no
    answer), and `strays`, approvals under any other key for its gateway order id."""

    verdict: str
    approval: GatewayPayment | None = None
    code: str = ""
    message: str = ""
    strays: tuple[GatewayPayment, ...] = ()


@dataclass
class Settled:
    """What a settlement left to do at the gateway, after its transaction."""

    refund: bool = False  # the payment is CANCEL_PENDING
    strays: list[str] = field(default_factory=list)  # keys of strays found, to refund
    applied: Any = None  # the payment as this approval left it (DONE, its purpose applied)
    done: Any = None  # what the purpose's `applied` returned


class NotInOneCall(Exception):  # noqa: N818 - a signal: settle it the usual way
    """A purpose's one-statement approval found a guard failed and wrote nothing."""


def fields_of(payment: Any) -> dict[str, Any]:
    """A payment's columns (a row's, or a namespace's attributes) as a dict."""
    return payment._asdict() if hasattr(payment, "_asdict") else dict(vars(payment))


def charged_by(approval: GatewayPayment, now: datetime) -> dict[str, Any]:
    """The columns an applied approval sets on its payment."""
    return {"payment_key": approval.payment_key, "approved_at": approval.approved_at or now}


def plain_approval(payment: Any, reading: Reading, now: datetime) -> dict[str, Any] | None:
    """A confirm's own answer that is an approval of the key for the amount to be paid,
    with no stray beside it, of a payment still CONFIRMING: it is applied and nothing else
    happens (unless what it pays for can no longer take it). The columns it sets (as
    `charged_by`), or None when `settle` has more to decide."""
    approval = reading.approval
    if reading.verdict != APPROVED or reading.strays or approval is None or \
            approval.total_amount != payment.amount or payment.status != "CONFIRMING":
        return None
    return charged_by(approval, now)


def as_applied(payment: Any, charged: dict[str, Any]) -> Any:
    """The payment as an applied approval left it (DONE)."""
    return SimpleNamespace(**{**fields_of(payment), "status": "DONE", **charged})


def new_pg_order_id(kind: str) -> str:
    return f"{'ORD' if kind == 'ORDER' else 'CHG'}-{secrets.token_hex(12)}"


async def open_payment(uow: UnitOfWork, *, kind: str, user_id: int, order_id: int | None,
                       amount: int, now: datetime, hold_seconds: int) -> Any:
    """A READY payment of `amount` with a new gateway order id, in the caller's
    transaction (beside what it pays for); the row."""
    payment_id = await repository.add(uow.conn, {
        "kind": kind, "user_id": user_id, "order_id": order_id,
        "pg_order_id": new_pg_order_id(kind), "amount": amount, "status": "READY",
        "created_at": now, "expires_at": now + timedelta(seconds=hold_seconds)})
    return await repository.get(uow.conn, payment_id)


async def get(uow: UnitOfWork, payment_id: int) -> Any:
    return await repository.get(uow.conn, payment_id)


async def of_order(uow: UnitOfWork, order_id: int) -> Any:
    """An order's card payment, or None."""
    return await repository.of_order(uow.conn, order_id)


async def of_orders(uow: UnitOfWork, order_ids: Sequence[int]) -> dict[int, Any]:
    """Card payments by order id, of those orders that have one."""
    return await repository.of_orders(uow.conn, order_ids)


async def begin(uow: UnitOfWork, purpose: Purpose, payment: Any, payment_key: str,
                now: datetime) -> bool:
    """READY -> CONFIRMING with the key the shop is about to confirm, and the purpose told;
    False if another request moved it first."""
    if purpose.in_one_call:
        return await purpose.began_in_one_call(uow, payment, payment_key, now)
    if not await repository.move(uow.conn, payment.id, ("READY",), "CONFIRMING",
                                 {"payment_key": payment_key, "attempted_at": now}):
        return False
    await purpose.started(uow, payment, now)
    return True


async def settle(uow: UnitOfWork, purpose: Purpose, payment: Any, reading: Reading,
                 now: datetime, *, surely_ended: bool) -> Settled:
    """Settle a payment from what the gateway holds. The key's approval is applied to a
    CONFIRMING payment (DONE), or refunded when the purpose cannot take it, when the amount
    is not the payment's, or when it came after the payment was given up. A decline fails
    a CONFIRMING payment once its confirm call has `surely_ended` (before that, "nothing
    there" may mean "not yet"). Stray approvals are recorded for refunding."""
    settled = Settled()
    if reading.verdict == APPROVED:
        settled.refund, settled.applied, settled.done = await _approved(
            uow, purpose, payment, reading, now)
    elif reading.verdict == DECLINED and surely_ended:
        if await repository.move(uow.conn, payment.id, ("CONFIRMING",), "FAILED", {
                "failure_code": reading.code[:64], "failure_message": reading.message[:255],
                "attempted_at": now}):
            await purpose.released(uow, payment, FAILED, now)
    for stray in reading.strays:
        if await repository.add_stray(uow.conn, payment.id, stray.payment_key,
                                      stray.total_amount, now):
            settled.strays.append(stray.payment_key)
    return settled


async def _approved(uow: UnitOfWork, purpose: Purpose, payment: Any, reading: Reading,
                    now: datetime) -> tuple[bool, Any, Any]:
    """The key's approval: whether it is to be refunded, and the payment as it left it
    when it was applied with what the purpose's `applied` returned (else None, None). A
    payment the shop never confirmed (READY) takes the approval found for its gateway
    order id as its own."""
    approval = reading.approval
    assert approval is not None
    charged = charged_by(approval, now)
    refund = {**charged, "attempted_at": now}
    if approval.total_amount != payment.amount:  # never the shop's to keep
        if await repository.move(uow.conn, payment.id, ("CONFIRMING", "READY"),
                                 "CANCEL_PENDING", {**refund, "failure_code": "AMOUNT_MISMATCH"}):
            await purpose.released(uow, payment, FAILED, now)
            return True, None, None
    elif await repository.move(uow.conn, payment.id, ("CONFIRMING", "READY"), "DONE", charged):
        done = await purpose.applied(uow, payment, now)
        if done:
            return False, as_applied(payment, charged), done
        await repository.move(uow.conn, payment.id, ("DONE",), "CANCEL_PENDING", refund)
        return True, None, None
    # Approved after it was given up (its holds are back already): refunded.
    return await repository.move(uow.conn, payment.id, ("FAILED", "EXPIRED", "VOIDED"),
                                 "CANCEL_PENDING", refund), None, None


async def expire(uow: UnitOfWork, purpose: Purpose, payment: Any, now: datetime) -> bool:
    """A READY payment past its hold: EXPIRED, every hold given back (once)."""
    if not await repository.move(uow.conn, payment.id, ("READY",), EXPIRED, {}):
        return False
    await purpose.released(uow, payment, EXPIRED, now)
    return True


async def void(uow: UnitOfWork, purpose: Purpose, payment: Any, now: datetime) -> bool:
    """The customer gave up before paying: VOIDED, every hold given back at once; a
    confirm that comes afterwards finds nothing to pay (once)."""
    if not await repository.move(uow.conn, payment.id, ("READY",), VOIDED,
                                 {"cancelled_at": now}):
        return False
    await purpose.released(uow, payment, VOIDED, now)
    return True


async def start_refund(uow: UnitOfWork, payment: Any, now: datetime) -> bool:
    """An applied payment is to be refunded (an order's cancellation): CANCEL_PENDING,
    asked of the gateway after this transaction and by the job until it answers."""
    return await repository.move(uow.conn, payment.id, ("DONE",), "CANCEL_PENDING",
                                 {"attempted_at": now})


async def refund_tried(uow: UnitOfWork, payment: Any, now: datetime) -> None:
    """The gateway did not refund it this time: the job asks again later."""
    await repository.touch(uow.conn, payment.id, "CANCEL_PENDING", now)


async def finish_refund(uow: UnitOfWork, purpose: Purpose, payment: Any, now: datetime
                        ) -> bool:
    """The gateway refunded it: CANCELLED, and the purpose finishes (once)."""
    if not await repository.move(uow.conn, payment.id, ("CANCEL_PENDING",), "CANCELLED",
                                 {"cancelled_at": now}):
        return False
    await purpose.refunded(uow, payment, now)
    return True


async def looked_again(uow: UnitOfWork, payment: Any, now: datetime) -> None:
    """A payment a read-back failed was read back again and is still not approved."""
    await repository.touch(uow.conn, payment.id, "FAILED", now)


def settled_after(timeout: float, grace: float) -> float:
    """Seconds after a confirm's call began by which it has surely ended at the gateway
    (its timeout plus a grace): a read-back then tells what happened, and "no approval"
    means "none", not "not yet"."""
    return timeout + grace


def surely_ended(payment: Any, now: datetime, after: float) -> bool:
    """Whether a CONFIRMING payment's confirm call has surely ended."""
    return bool(payment.status == "CONFIRMING" and payment.attempted_at is not None
                and payment.attempted_at + timedelta(seconds=after) <= now)


@dataclass(frozen=True)
class Due:
    """What the reconcile job has to do in one pass."""

    expire: Sequence[Any]
    settle: Sequence[Any]
    recheck: Sequence[Any]
    refund: Sequence[Any]
    strays: Sequence[Any]

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in
                ("expire", "settle", "recheck", "refund", "strays")}


async def due(uow: UnitOfWork, now: datetime, *, settle_after: float,
              recheck_seconds: float, recheck_hours: float, limit: int = 100) -> Due:
    """READY payments past their hold, CONFIRMING ones whose call has surely ended,
    refunds still to be asked (payments and strays), and payments a read-back failed,
    looked at again every `recheck_seconds` for `recheck_hours`."""
    conn = uow.conn
    return Due(
        expire=await repository.due(conn, "READY", now, "expires_at", limit),
        settle=await repository.due(conn, "CONFIRMING", now - timedelta(seconds=settle_after),
                                    "attempted_at", limit),
        recheck=await repository.failed_by_lookup(
            conn, DECIDED_BY_LOOKUP, now - timedelta(seconds=recheck_seconds),
            now - timedelta(hours=recheck_hours), limit),
        refund=await repository.due(conn, "CANCEL_PENDING", now, "attempted_at", limit),
        strays=await repository.strays_due(conn, now, limit))
