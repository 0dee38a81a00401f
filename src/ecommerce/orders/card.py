"""Card orders after they are placed: confirm, settle, expire, refund.

Each step is one short transaction before and one after a gateway call, never around it
(docs/architecture.md, "Card payments"). The state moves are conditional (orders/service.py,
payments/service.py), so a repeated confirm, a webhook and the reconcile job in any number
of processes can race and still make each move once: the order row is changed first in
every transaction, then the payment row."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ecommerce.orders import service
from ecommerce.payments import service as payments
from ecommerce.payments.errors import (
    NotPayable,
    PaymentAmountMismatch,
    PaymentDeclined,
)
from ecommerce.platform.principal import Principal

if TYPE_CHECKING:
    from ecommerce.context import AppContext


@dataclass
class _Begun:
    payment: Any = None
    answer: tuple[int, dict[str, Any]] | None = None  # settled without the gateway
    refusal: Exception | None = None  # committed first (an expiry), then raised
    raced: bool = False


async def confirm(ctx: AppContext, caller: Principal, order_id: int, payment_key: str,
                  amount: int) -> tuple[int, dict[str, Any]]:
    """Charge the card part the customer authorised at the gateway's checkout: 200 with
    the order PAID, 402 declined (every hold given back), 202 PAYMENT_UNKNOWN (no answer:
    settled later from a lookup). Repeating a confirm that succeeded answers it again;
    the gateway is asked at most once per order."""
    begun = await _begin(ctx, caller, order_id, payment_key, amount)
    if begun.refusal is not None:
        raise begun.refusal
    if begun.answer is not None:
        return begun.answer
    if begun.raced:
        status, view = await answer(ctx, order_id)
        if view["status"] not in ("PAID", "PAYMENT_UNKNOWN"):
            raise NotPayable(f"This order is {view['status']}; it can no longer be paid")
        return status, view
    outcome = await payments.confirm(payments.required(ctx.gateway), begun.payment, payment_key)
    shown = await apply(ctx, begun.payment, outcome, looked_up=False, view=True)
    if outcome.verdict == payments.DECLINED:
        raise PaymentDeclined(outcome.code, outcome.message)
    if shown is None:
        return await answer(ctx, order_id)
    return _status(shown), shown


async def _begin(ctx: AppContext, caller: Principal, order_id: int, payment_key: str,
                 amount: int) -> _Begun:
    now = ctx.clock.now()
    begun = _Begun()
    async with ctx.db.uow() as uow:
        order = await service.visible(uow, order_id, caller.user_id, caller.is_admin)
        payments.required(ctx.gateway)  # 409 without one, before anything moves
        payment = (await payments.of_order(uow, order_id)
                   if order.payment_method == "CARD" else None)
        if payment is None:
            raise NotPayable("This order is not paid by card")
        if order.status == "PAID" and payment.payment_key == payment_key:
            begun.answer = (200, await _view(uow, order_id))  # a repeat
        elif order.status == "PAYMENT_UNKNOWN":
            begun.answer = (202, await _view(uow, order_id))  # being confirmed
        elif order.status != "PAYMENT_PENDING":
            raise NotPayable(f"This order is {order.status}; it can no longer be paid")
        elif amount != payment.amount:
            raise PaymentAmountMismatch(f"amount: {amount} won, but {payment.amount} won "
                                        "is to be paid by card")
        elif payment.expires_at <= now:
            await _expire(ctx, uow, payment, now)
            begun.refusal = NotPayable("This order's payment time ran out; it has expired")
        elif await service.start_confirm(uow, order_id):
            await payments.begin_confirm(uow, payment, payment_key, now)
            begun.payment = SimpleNamespace(**{  # the row as that move left it
                **payment._asdict(), "status": "CONFIRMING", "payment_key": payment_key,
                "attempted_at": now})
        else:
            begun.raced = True  # another confirm moved it first: answer as it stands
    return begun


async def apply(ctx: AppContext, payment: Any, outcome: payments.Outcome, *,
                looked_up: bool, view: bool = False) -> dict[str, Any] | None:
    """Settle a card order from the gateway's answer to its confirm, or from a lookup
    (`looked_up`: the job, the webhook). APPROVED: PAID, or, if the order cannot take it
    any more (it expired or failed meanwhile) or the amount is wrong, refunded. DECLINED:
    PAYMENT_FAILED with every hold given back; from a lookup only once the confirm's call
    has surely ended (before that, "no payment" may mean "not yet"). `view`: the order's
    view as this transaction leaves it (None if a refund followed, or nothing moved)."""
    now = ctx.clock.now()
    if outcome.verdict == payments.UNKNOWN:
        return None
    refund = False
    shown = None
    zone = ctx.settings.timezone
    async with ctx.db.uow() as uow:
        # The order row first (its lock orders every change of this order), then the
        # payment; each move is conditional, so a settlement that lost a race moves nothing.
        if outcome.verdict == payments.APPROVED:
            assert outcome.payment is not None
            fits = outcome.code != "AMOUNT_MISMATCH"
            if fits and await service.mark_paid(uow, zone, payment.order_id, now):
                await payments.approved(uow, payment, outcome.payment, now)
            else:  # charged for an order that does not hold any more: give it back
                await service.release(uow, ctx.listings, zone, payment.order_id,
                                      "PAYMENT_FAILED", now)
                refund = await payments.orphaned(uow, payment, outcome.payment, now)
        elif not looked_up or payments.unanswered_long_enough(payment, ctx.settings, now):
            if await service.release(uow, ctx.listings, zone, payment.order_id,
                                     "PAYMENT_FAILED", now):
                await payments.failed(uow, payment, outcome.code, outcome.message)
        if view and not refund:
            shown = await _view(uow, payment.order_id)
    if refund:
        await retry_refund(ctx, payment.id)
    return shown


async def expire(ctx: AppContext, payment: Any) -> None:
    """The job: a READY payment past its hold; its order gives everything back."""
    async with ctx.db.uow() as uow:
        await _expire(ctx, uow, payment, ctx.clock.now())


async def _expire(ctx: AppContext, uow: Any, payment: Any, now: Any) -> None:
    if await service.release(uow, ctx.listings, ctx.settings.timezone, payment.order_id,
                             "EXPIRED", now):
        await payments.expired(uow, payment)


async def finish_cancel(ctx: AppContext, order_id: int) -> None:
    """After `cancel_order` made a card order CANCEL_PENDING: refund its card part at the
    gateway, then finish the cancellation. No answer: the job tries again."""
    async with ctx.db.uow(write=False) as uow:
        payment = await payments.of_order(uow, order_id)
    if payment is not None and payment.status == "CANCEL_PENDING":
        await retry_refund(ctx, payment.id)


async def retry_refund(ctx: AppContext, payment_id: int) -> None:
    """Refund a CANCEL_PENDING payment of an order at the gateway; then the order's
    cancellation is finished, if it was one (payments.service.retry_refund)."""
    async def finish(uow: Any, payment: Any, now: Any) -> bool:
        return payment.order_id is not None and await service.finish_cancel(
            uow, ctx.listings, ctx.settings.timezone, payment.order_id, now)

    await payments.retry_refund(ctx.db, payments.required(ctx.gateway), payment_id,
                                ctx.clock.now, finish)


async def answer(ctx: AppContext, order_id: int) -> tuple[int, dict[str, Any]]:
    """The order's view as it stands: 200, or 202 while its payment or refund is
    unsettled."""
    async with ctx.db.uow(write=False) as uow:
        view = await _view(uow, order_id)
    return _status(view), view


def _status(view: dict[str, Any]) -> int:
    return 202 if view["status"] in ("PAYMENT_UNKNOWN", "CANCEL_PENDING") else 200


async def _view(uow: Any, order_id: int) -> dict[str, Any]:
    return await service.get_order(uow, order_id, user_id=0, is_admin=True)
