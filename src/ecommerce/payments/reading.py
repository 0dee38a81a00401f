"""Asking the gateway, and what its answers mean for a payment (machine.Reading). No
database here: callers hold no transaction while these run."""

from __future__ import annotations

import logging
from typing import Any

from ecommerce.payments.gateway import (
    CANCELED,
    Gateway,
    GatewayPayment,
    GatewayRefused,
    GatewayUnreachable,
)
from ecommerce.payments.machine import APPROVED, DECLINED, UNKNOWN, Reading

log = logging.getLogger("ecommerce.payments")

# A confirm refused with these may have been processed after all (by an earlier call of
# ours whose answer was lost, or under another key for the same gateway order id): what
# the gateway holds tells.
READ_BACK_ON = ("ALREADY_PROCESSED_PAYMENT", "DUPLICATED_ORDER_ID", "PROVIDER_ERROR")


async def confirm(gateway: Gateway, payment: Any, payment_key: str) -> Reading:
    """Ask the gateway to charge what the customer authorised with `payment_key`."""
    try:
        answer = await gateway.confirm(payment_key, payment.pg_order_id, payment.amount)
    except GatewayUnreachable as error:
        log.warning("confirm of %s: no answer (%s)", payment.pg_order_id, error)
        return Reading(UNKNOWN)
    except GatewayRefused as refused:
        if refused.code not in READ_BACK_ON:
            return Reading(DECLINED, code=refused.code, message=refused.message)
        back = await read_back(gateway, payment, payment_key)
        if back.verdict != DECLINED:
            return back
        # Not approved: the refusal is what the customer is told (and why it failed).
        return Reading(DECLINED, back.approval, refused.code, refused.message, back.strays)
    return _judged(payment, answer, payment_key)


async def read_back(gateway: Gateway, payment: Any, payment_key: str | None = None
                    ) -> Reading:
    """What the gateway holds for a payment. Confirmed by the shop (`payment_key`, else
    the payment's own): the payment of that key, and, by the gateway order id, any
    approval under another key (a stray, never the shop's to keep). Never confirmed by
    the shop: an approval for its gateway order id is its own (someone paid for it
    elsewhere), applied or refunded as the payment's state allows."""
    key = payment_key or payment.payment_key
    mine: Reading = Reading(DECLINED, code="READY", message="Not confirmed by the shop")
    if key is not None:
        try:
            found = await gateway.by_payment_key(key)
        except (GatewayUnreachable, GatewayRefused) as error:
            log.warning("lookup of %s: no answer (%s)", payment.pg_order_id, error)
            return Reading(UNKNOWN)
        mine = (_judged(payment, found, key) if found is not None else Reading(
            DECLINED, code="NOT_FOUND_PAYMENT", message="The gateway holds no such payment"))
    try:
        by_order = await gateway.by_order_id(payment.pg_order_id)
    except (GatewayUnreachable, GatewayRefused) as error:
        log.warning("lookup of %s by order: no answer (%s)", payment.pg_order_id, error)
        return Reading(UNKNOWN) if mine.verdict != APPROVED else mine
    if by_order is None or not by_order.approved or by_order.payment_key == key:
        return mine
    if key is None:
        return _judged(payment, by_order, by_order.payment_key)
    log.error("payment %s: the gateway approved key %s, not the shop's", payment.pg_order_id,
              by_order.payment_key)
    return Reading(mine.verdict, mine.approval, mine.code, mine.message, strays=(by_order,))


def _judged(payment: Any, answer: GatewayPayment, key: str) -> Reading:
    if answer.payment_key != key:  # not the payment asked about: never ours to apply
        return Reading(DECLINED, code="OTHER_KEY", message="The gateway answered for "
                       "another payment", strays=(answer,) if answer.approved else ())
    if answer.approved:
        if answer.total_amount != payment.amount:
            log.error("payment %s: the gateway charged %s, not %s", payment.pg_order_id,
                      answer.total_amount, payment.amount)
        return Reading(APPROVED, answer)
    return Reading(DECLINED, answer, code=answer.status,
                   message=f"The gateway's payment is {answer.status}")


async def refund(gateway: Gateway, payment_key: str, reason: str) -> bool:
    """Ask the gateway to refund what is left of an approval, once whatever the retries
    (the Idempotency-Key is the approval's); True when it is refunded."""
    try:
        await gateway.cancel(payment_key, None, reason, idempotency_key=f"refund-{payment_key}")
    except GatewayUnreachable as error:
        log.warning("refund of %s: no answer (%s)", payment_key, error)
        return False
    except GatewayRefused as refused:
        if refused.code == "ALREADY_CANCELED_PAYMENT":
            return True
        if refused.code in ("NOT_FOUND_PAYMENT", "NOT_CANCELABLE_PAYMENT"):
            try:  # nothing charged, or refunded already?
                held = await gateway.by_payment_key(payment_key)
            except (GatewayUnreachable, GatewayRefused):
                return False
            if held is None or not held.approved or held.status == CANCELED:
                return True
        log.error("refund of %s refused: %s %s", payment_key, refused.code, refused.message)
        return False
    return True
