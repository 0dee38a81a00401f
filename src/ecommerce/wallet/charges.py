"""Top-up by card: a charge is a card payment (payments/) that, once the gateway confirms
it, credits the balance exactly once (the ledger entry names the payment, and a unique
index takes each payment once). The same steps as a card order's (orders/card.py): one
short transaction before and one after each gateway call, never around it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecommerce.payments import service as payments
from ecommerce.payments.errors import (
    ChargeNotFound,
    NotPayable,
    PaymentAmountMismatch,
    PaymentDeclined,
)
from ecommerce.platform.principal import Principal, ensure_self_or_admin
from ecommerce.wallet import service
from ecommerce.wallet.errors import BalanceLimitExceeded
from ecommerce.wallet.schemas import ChargeOut, RechargeIn, RechargeOut

if TYPE_CHECKING:
    from ecommerce.context import AppContext

# The charge's status as the customer sees it, from its payment's.
_SHOWN = {"READY": "PENDING", "CONFIRMING": "PAYMENT_UNKNOWN", "DONE": "PAID",
          "FAILED": "FAILED", "EXPIRED": "EXPIRED", "CANCEL_PENDING": "REFUNDED",
          "CANCELLED": "REFUNDED"}


def _body(ctx: AppContext, payment: Any) -> dict[str, Any]:
    return ChargeOut(
        charge_id=payment.id, user_id=payment.user_id, amount=payment.amount,
        status=_SHOWN[payment.status],  # type: ignore[arg-type]
        payment={**payments.checkout_view(payment, ctx.settings.payment_client_key),
                 "checkout_url": ctx.settings.checkout_url},
    ).model_dump(mode="json", by_alias=True)


async def open_charge(ctx: AppContext, caller: Principal, command: RechargeIn
                      ) -> tuple[int, Any]:
    """201: a PENDING charge and what the gateway's checkout needs to pay it. Refused now
    if the balance could not take it (400 BALANCE_LIMIT_EXCEEDED)."""
    ensure_self_or_admin(caller, command.user_id)
    payments.required(ctx.gateway)
    async with ctx.db.uow() as uow:
        await service.check_room(uow, command.user_id, command.amount)
        payment = await payments.open_payment(
            uow, kind="CHARGE", user_id=command.user_id, order_id=None, amount=command.amount,
            now=ctx.clock.now(), hold_seconds=ctx.settings.payment_hold_seconds)
    return 201, _body(ctx, payment)


async def confirm(ctx: AppContext, caller: Principal, charge_id: int, payment_key: str,
                  amount: int) -> tuple[int, Any]:
    """200 {userId, newBalance} once the card is charged (a repeat answers the same),
    202 while the gateway's answer is unknown, else the refusal as for an order."""
    now = ctx.clock.now()
    expired = False
    async with ctx.db.uow() as uow:
        payment = await payments.get(uow, charge_id)
        if payment is None or payment.kind != "CHARGE" or (
                payment.user_id != caller.user_id and not caller.is_admin):
            raise ChargeNotFound()
        gateway = payments.required(ctx.gateway)
        if payment.status == "DONE" and payment.payment_key == payment_key:
            return 200, await _credited(uow, payment)
        if payment.status == "CONFIRMING":
            return 202, _body(ctx, payment)
        if payment.status != "READY":
            raise NotPayable(f"This charge is {_SHOWN[payment.status]}")
        if amount != payment.amount:
            raise PaymentAmountMismatch(f"amount: {amount} won, but the charge is "
                                        f"{payment.amount} won")
        if payment.expires_at <= now:
            expired = await payments.expired(uow, payment)
        elif not await payments.begin_confirm(uow, payment, payment_key, now):
            return 202, _body(ctx, await payments.get(uow, charge_id))
        payment = await payments.get(uow, charge_id)
    if expired:
        raise NotPayable("This charge's payment time ran out; it has expired")
    outcome = await payments.confirm(gateway, payment, payment_key)
    await apply(ctx, payment, outcome, looked_up=False)
    if outcome.verdict == payments.DECLINED:
        raise PaymentDeclined(outcome.code, outcome.message)
    async with ctx.db.uow(write=False) as uow:
        payment = await payments.get(uow, charge_id)
        if payment.status == "DONE":
            return 200, await _credited(uow, payment)
    if payment.status in ("CANCEL_PENDING", "CANCELLED"):
        raise BalanceLimitExceeded("The balance could not take this charge; it is refunded")
    return 202, _body(ctx, payment)


async def _credited(uow: Any, payment: Any) -> dict[str, Any]:
    return RechargeOut(user_id=payment.user_id,
                       new_balance=await service.balance_of(uow, payment.user_id)
                       ).model_dump(by_alias=True)


async def apply(ctx: AppContext, payment: Any, outcome: payments.Outcome, *,
                looked_up: bool) -> None:
    """Settle a charge from the gateway's answer or a lookup, as orders/card.py settles an
    order: APPROVED credits the balance once (or, if the balance cannot take it any more,
    refunds); DECLINED fails it (from a lookup only once its confirm has surely ended)."""
    if outcome.verdict == payments.UNKNOWN:
        return
    now = ctx.clock.now()
    refund = False
    async with ctx.db.uow() as uow:
        if outcome.verdict == payments.APPROVED:
            assert outcome.payment is not None
            if outcome.code == "AMOUNT_MISMATCH":
                refund = await payments.orphaned(uow, payment, outcome.payment, now)
            elif await payments.approved(uow, payment, outcome.payment, now):
                try:
                    await service.recharge(uow, payment.user_id, payment.amount, now,
                                           payment_id=payment.id)
                except BalanceLimitExceeded:
                    refund = await payments.refund_pending(uow, payment, now)
            else:
                refund = await payments.orphaned(uow, payment, outcome.payment, now)
        elif not looked_up or payments.unanswered_long_enough(payment, ctx.settings, now):
            await payments.failed(uow, payment, outcome.code, outcome.message)
    if refund:
        await retry_refund(ctx, payment.id)


async def expire(ctx: AppContext, payment: Any) -> None:
    async with ctx.db.uow() as uow:
        await payments.expired(uow, payment)


async def retry_refund(ctx: AppContext, payment_id: int) -> None:
    await payments.retry_refund(ctx.db, payments.required(ctx.gateway), payment_id,
                                ctx.clock.now)
