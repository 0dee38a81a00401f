"""The reconcile job and the webhook: every payment the request that began it did not
settle gets settled here, from what the gateway holds.

One run: READY payments past their hold expire (a card order gives its stock, coupon and
balance part back); CONFIRMING payments whose confirm call has surely ended are looked up
and settled (PAID, or PAYMENT_FAILED with the holds given back, or refunded if the order
could no longer take it); CANCEL_PENDING refunds are asked again; and payments a lookup
failed are looked at again for a day, in case the gateway approved them later (then they
are refunded: the order gave everything back already). Every step is a
conditional move (payments/service.py), so any number of processes may run it at once;
the worst a race costs is a lookup or an idempotent refund call made twice."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ecommerce.orders import card
from ecommerce.payments import service as payments
from ecommerce.wallet import charges

if TYPE_CHECKING:
    from ecommerce.context import AppContext

log = logging.getLogger("ecommerce.settlement")


# What a payment pays for settles it: both modules have `apply`, `expire` and
# `retry_refund` with the same signatures.
_FOR = {"ORDER": card, "CHARGE": charges}


async def settle(ctx: AppContext, payment: Any) -> payments.Outcome:
    """Read the payment back from the gateway and settle it by what it says."""
    outcome = await payments.look_up(payments.required(ctx.gateway), payment)
    await _FOR[payment.kind].apply(ctx, payment, outcome, looked_up=True)
    return outcome


async def recheck(ctx: AppContext, payment: Any) -> None:
    """A payment a lookup failed: approved since, it is refunded (its order or charge gave
    everything back already); still not, it is looked at again later."""
    if (await settle(ctx, payment)).verdict == payments.DECLINED:
        async with ctx.db.uow() as uow:
            await payments.looked_again(uow, payment, ctx.clock.now())


async def run_once(ctx: AppContext) -> dict[str, int]:
    """One pass over what is due; how many of each it handled."""
    async with ctx.db.uow(write=False) as uow:
        due = await payments.due(uow, ctx.clock.now(), ctx.settings)
    for payment in due["expire"]:
        await _FOR[payment.kind].expire(ctx, payment)
    if ctx.gateway is not None:
        for payment in due["settle"]:
            await settle(ctx, payment)
        for payment in due["recheck"]:
            await recheck(ctx, payment)
        for payment in due["refund"]:
            await _FOR[payment.kind].retry_refund(ctx, payment.id)
    return {name: len(rows) for name, rows in due.items()}


async def run_forever(ctx: AppContext, stop: asyncio.Event) -> None:
    """`run_once` every PAYMENT_RECONCILE_SECONDS until `stop`; a failed pass (the
    database away) is logged and the next one tries again."""
    interval = ctx.settings.payment_reconcile_seconds
    while not stop.is_set():
        try:
            await run_once(ctx)
        except Exception:  # noqa: BLE001 - the job outlives a bad pass
            log.exception("payment reconcile pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass


async def webhook(ctx: AppContext, pg_order_id: str | None) -> None:
    """The gateway says a payment changed: read it back (the notice's body is never
    believed) and settle it, if it is ours and still unsettled."""
    if not pg_order_id or ctx.gateway is None:
        return
    async with ctx.db.uow(write=False) as uow:
        payment = await payments.by_pg_order_id(uow, pg_order_id)
    if payment is not None and payment.status in ("READY", "CONFIRMING", "FAILED",
                                                  "EXPIRED"):
        await settle(ctx, payment)
    elif payment is not None and payment.status == "CANCEL_PENDING":
        await _FOR[payment.kind].retry_refund(ctx, payment.id)
