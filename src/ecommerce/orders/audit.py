"""Invariants 4 to 8: orders against the balance ledger, the held coupons, the outbox and
their card payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from ecommerce.coupons.models import user_coupons
from ecommerce.events.models import outbox
from ecommerce.orders.models import HOLDING, RELEASED, STATUSES, orders
from ecommerce.payments.models import payments as payment_rows
from ecommerce.platform.database import UnitOfWork
from ecommerce.wallet.models import balance_ledger

# The orders that hold their coupon: paid, or a card order not settled yet.
USING = ("PAID", "CANCEL_PENDING", *HOLDING)


async def payments(uow: UnitOfWork) -> list[str]:
    """4. One PAYMENT of -balanceAmount per order (the whole paidAmount of a balance
    order), one REFUND of +balanceAmount per cancelled order, or unpaid card order that gave
    its holds back."""
    problems = []
    for kind, sign, statuses in (("PAYMENT", -1, STATUSES),
                                 ("REFUND", 1, ("CANCELLED", *RELEASED))):
        entries = (select(balance_ledger.c.order_id, func.count().label("n"),
                          func.sum(balance_ledger.c.amount).label("total"))
                   .where(balance_ledger.c.type == kind)
                   .group_by(balance_ledger.c.order_id).subquery())
        rows = (await uow.conn.execute(
            select(orders.c.id, orders.c.balance_amount, entries.c.n, entries.c.total)
            .select_from(orders.outerjoin(entries, entries.c.order_id == orders.c.id))
            .where(orders.c.status.in_(statuses))
            .where((entries.c.n.is_(None)) | (entries.c.n != 1)
                   | (entries.c.total != sign * orders.c.balance_amount)))).all()
        problems += [f"order {r.id}: {r.n or 0} {kind} entries totalling {r.total}, "
                     f"expected one of {sign * r.balance_amount}" for r in rows]
    bad_amounts = (await uow.conn.execute(select(orders.c.id).where(
        (orders.c.paid_amount != orders.c.total_price - orders.c.discount_amount)
        | (orders.c.paid_amount < 0)
        | (orders.c.balance_amount + orders.c.card_amount != orders.c.paid_amount)))
    ).scalars().all()
    problems += [f"order {order_id}: paidAmount is not totalPrice - discountAmount >= 0"
                 for order_id in bad_amounts]
    return problems


async def coupon_use(uow: UnitOfWork) -> list[str]:
    """5. A USED coupon belongs to exactly one paid order (or one that holds it: a card
    order not paid yet, or being refunded); an order uses at most one."""
    paid_using = (select(orders.c.user_coupon_id, func.count().label("n"))
                  .where(orders.c.status.in_(USING), orders.c.user_coupon_id.is_not(None))
                  .group_by(orders.c.user_coupon_id).subquery())
    rows = (await uow.conn.execute(
        select(user_coupons.c.id, user_coupons.c.status, paid_using.c.n)
        .select_from(user_coupons.outerjoin(paid_using,
                                            paid_using.c.user_coupon_id == user_coupons.c.id))
        .where(((user_coupons.c.status == "USED")
                & ((paid_using.c.n.is_(None)) | (paid_using.c.n != 1)))
               | ((user_coupons.c.status != "USED") & paid_using.c.n.is_not(None))))).all()
    problems = [f"user coupon {r.id} is {r.status} but used by {r.n or 0} paid orders"
                for r in rows]
    mismatched = (await uow.conn.execute(
        select(orders.c.id).select_from(orders.join(
            user_coupons, user_coupons.c.id == orders.c.user_coupon_id))
        .where(and_(orders.c.status.in_(USING),
                    user_coupons.c.order_id != orders.c.id)))).scalars().all()
    problems += [f"order {order_id} uses a coupon recorded for another order"
                 for order_id in mismatched]
    return problems


async def events(uow: UnitOfWork) -> list[str]:
    """6. Every paid order has its order.completed in the outbox, every cancelled one its
    order.cancelled too; an unpaid card order has none."""
    def has(event_type: str) -> Any:
        return (select(outbox.c.id).where(outbox.c.order_id == orders.c.id,
                                          outbox.c.event_type == event_type).exists())

    sold = orders.c.status.in_(("PAID", "CANCEL_PENDING", "CANCELLED"))
    rows = (await uow.conn.execute(
        select(orders.c.id, orders.c.status)
        .where((sold & ~has("order.completed")) | ((orders.c.status == "CANCELLED")
                                                   & ~has("order.cancelled"))))).all()
    problems = [f"order {row.id} ({row.status}) is missing its event" for row in rows]
    unsold = (await uow.conn.execute(select(orders.c.id, orders.c.status).where(
        ~sold, has("order.completed")))).all()
    return problems + [f"order {row.id} ({row.status}) was announced completed"
                       for row in unsold]


# What a card order's payment must be in each of the order's states (invariant 7).
PAYMENT_OF = {"PAYMENT_PENDING": ("READY",), "PAYMENT_UNKNOWN": ("CONFIRMING",),
              "PAID": ("DONE",), "CANCEL_PENDING": ("CANCEL_PENDING",),
              "CANCELLED": ("CANCELLED",),
              # unpaid; if the gateway charged it all the same, refunded (or being)
              "PAYMENT_FAILED": ("FAILED", "CANCEL_PENDING", "CANCELLED"),
              "EXPIRED": ("EXPIRED", "CANCEL_PENDING", "CANCELLED")}


async def card_payments(uow: UnitOfWork) -> list[str]:
    """7 (the shop's side). Every card order has one payment of its cardAmount, in the
    state its own state needs (a paid one DONE, a cancelled one refunded); every paid
    charge credited the balance once, and nothing else credited a payment."""
    rows = (await uow.conn.execute(
        select(orders.c.id, orders.c.status, orders.c.card_amount, payment_rows.c.amount,
               payment_rows.c.status.label("payment_status"))
        .select_from(orders.outerjoin(payment_rows, payment_rows.c.order_id == orders.c.id))
        .where(orders.c.payment_method == "CARD"))).all()
    problems = [
        f"card order {r.id} ({r.status}): payment {r.payment_status} of {r.amount}, "
        f"expected {'/'.join(PAYMENT_OF[r.status])} of {r.card_amount}"
        for r in rows if r.amount != r.card_amount
        or r.payment_status not in PAYMENT_OF[r.status]]
    stray = (await uow.conn.execute(select(orders.c.id).select_from(
        orders.join(payment_rows, payment_rows.c.order_id == orders.c.id))
        .where(orders.c.payment_method != "CARD"))).scalars().all()
    problems += [f"balance order {order_id} has a card payment" for order_id in stray]
    credits = (select(balance_ledger.c.payment_id, func.count().label("n"),
                      func.sum(balance_ledger.c.amount).label("total"))
               .where(balance_ledger.c.payment_id.is_not(None))
               .group_by(balance_ledger.c.payment_id).subquery())
    charges = (await uow.conn.execute(
        select(payment_rows.c.id, payment_rows.c.status, payment_rows.c.amount, credits.c.n,
               credits.c.total)
        .select_from(payment_rows.outerjoin(credits,
                                            credits.c.payment_id == payment_rows.c.id))
        .where(payment_rows.c.kind == "CHARGE"))).all()
    for r in charges:
        expected = (1, r.amount) if r.status == "DONE" else (0, None)
        if ((r.n or 0), r.total) != expected:
            problems.append(f"charge {r.id} ({r.status}) of {r.amount}: credited "
                            f"{r.n or 0} times, {r.total}")
    return problems


HOLD_SLACK = timedelta(minutes=1)


async def holds(uow: UnitOfWork) -> list[str]:
    """8. No card order holds stock, coupon or balance past its payment's expiry by more
    than a minute (the reconcile job releases them)."""
    late = datetime.now(UTC) - HOLD_SLACK
    rows = (await uow.conn.execute(
        select(orders.c.id, payment_rows.c.expires_at)
        .select_from(orders.join(payment_rows, payment_rows.c.order_id == orders.c.id))
        .where(orders.c.status == "PAYMENT_PENDING", payment_rows.c.expires_at < late))).all()
    return [f"card order {r.id} still holds, its payment expired at {r.expires_at}"
            for r in rows]
