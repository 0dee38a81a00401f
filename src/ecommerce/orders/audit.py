"""Invariants 4 to 8: orders against the balance ledger, the held coupons, the outbox and
their card payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from ecommerce.catalog.models import products
from ecommerce.coupons.models import user_coupons
from ecommerce.events.models import outbox
from ecommerce.orders.models import HOLDING, RELEASED, order_items, orders
from ecommerce.payments.models import payments as payment_rows
from ecommerce.platform.database import UnitOfWork
from ecommerce.wallet.models import balance_ledger, wallets

# The orders that hold their coupon: paid, or a card order not settled yet.
USING = ("PAID", "CANCEL_PENDING", *HOLDING)


async def payments(uow: UnitOfWork) -> list[str]:
    """4. An order with a balance part has exactly one PAYMENT entry of -balanceAmount
    (all of paidAmount for a balance order), and one REFUND of +balanceAmount once it gave
    it back (cancelled, or an unpaid card order that ended); an order without one has
    neither (no entry of 0)."""
    problems = []
    gave_back = orders.c.status.in_(("CANCELLED", *RELEASED))
    for kind, sign, applies in (("PAYMENT", -1, True), ("REFUND", 1, gave_back)):
        entries = (select(balance_ledger.c.order_id, func.count().label("n"),
                          func.sum(balance_ledger.c.amount).label("total"))
                   .where(balance_ledger.c.type == kind)
                   .group_by(balance_ledger.c.order_id).subquery())
        expected_one = and_(applies, orders.c.balance_amount > 0)
        found = func.coalesce(entries.c.n, 0)
        rows = (await uow.conn.execute(
            select(orders.c.id, orders.c.status, orders.c.balance_amount, entries.c.n,
                   entries.c.total)
            .select_from(orders.outerjoin(entries, entries.c.order_id == orders.c.id))
            .where(or_(and_(expected_one, or_(found != 1,
                                              entries.c.total != sign * orders.c.balance_amount)),
                       and_(~expected_one, found != 0))))).all()
        problems += [f"order {r.id} ({r.status}): {r.n or 0} {kind} entries totalling "
                     f"{r.total}, expected "
                     + (f"one of {sign * r.balance_amount}" if r.balance_amount and (
                         kind == "PAYMENT" or r.status in ("CANCELLED", *RELEASED))
                        else "none") for r in rows]
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
    """6. An order that was paid (`paidAt`) has its order.completed in the outbox, and
    once cancelled its order.cancelled too; one never paid has neither. A paid or
    refunding order has its `paidAt`."""
    def has(event_type: str) -> Any:
        return (select(outbox.c.id).where(outbox.c.order_id == orders.c.id,
                                          outbox.c.event_type == event_type).exists())

    was_paid = orders.c.paid_at.is_not(None)
    cancelled_paid = and_(orders.c.status == "CANCELLED", was_paid)
    rows = (await uow.conn.execute(
        select(orders.c.id, orders.c.status)
        .where(or_(and_(was_paid, ~has("order.completed")),
                   and_(cancelled_paid, ~has("order.cancelled")))))).all()
    problems = [f"order {row.id} ({row.status}) is missing its event" for row in rows]
    unsold = (await uow.conn.execute(select(orders.c.id, orders.c.status).where(
        ~was_paid, or_(has("order.completed"), has("order.cancelled"))))).all()
    problems += [f"order {row.id} ({row.status}) was announced but never paid"
                 for row in unsold]
    unstamped = (await uow.conn.execute(select(orders.c.id, orders.c.status).where(
        orders.c.status.in_(("PAID", "CANCEL_PENDING")), ~was_paid))).all()
    return problems + [f"order {row.id} ({row.status}) has no paidAt" for row in unstamped]


# What a card order's payment must be in each of the order's states (invariant 7).
PAYMENT_OF = {"PAYMENT_PENDING": ("READY",), "PAYMENT_UNKNOWN": ("CONFIRMING",),
              "PAID": ("DONE",), "CANCEL_PENDING": ("CANCEL_PENDING",),
              "CANCELLED": ("CANCELLED",),
              # cancelled by its customer before paying; charged all the same: refunded
              "VOIDED": ("VOIDED", "CANCEL_PENDING", "CANCELLED"),
              # unpaid; if the gateway charged it all the same, refunded (or being)
              "PAYMENT_FAILED": ("FAILED", "CANCEL_PENDING", "CANCELLED"),
              "EXPIRED": ("EXPIRED", "CANCEL_PENDING", "CANCELLED")}


async def card_payments(uow: UnitOfWork) -> list[str]:
    """7 (the shop's side). Every card order has one payment of its cardAmount, in the
    state its own state needs (a paid one DONE, a cancelled one refunded); every paid
    charge credited the balance once, and nothing else credited a payment."""
    rows = (await uow.conn.execute(
        select(orders.c.id, orders.c.status, orders.c.card_amount, orders.c.paid_at,
               payment_rows.c.amount, payment_rows.c.status.label("payment_status"))
        .select_from(orders.outerjoin(payment_rows, payment_rows.c.order_id == orders.c.id))
        .where(orders.c.payment_method == "CARD"))).all()

    def expected(r: Any) -> tuple[str, ...]:
        unpaid_cancel = r.status == "CANCELLED" and r.paid_at is None
        return PAYMENT_OF["VOIDED" if unpaid_cancel else r.status]

    problems = [
        f"card order {r.id} ({r.status}): payment {r.payment_status} of {r.amount}, "
        f"expected {'/'.join(expected(r))} of {r.card_amount}"
        for r in rows if r.amount != r.card_amount or r.payment_status not in expected(r)]
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
    than a minute (the reconcile job releases them), and what is counted as held matches
    the orders that hold: each user's unpaid card orders, each product's held units."""
    late = datetime.now(UTC) - HOLD_SLACK
    rows = (await uow.conn.execute(
        select(orders.c.id, payment_rows.c.expires_at)
        .select_from(orders.join(payment_rows, payment_rows.c.order_id == orders.c.id))
        .where(orders.c.status == "PAYMENT_PENDING", payment_rows.c.expires_at < late))).all()
    problems = [f"card order {r.id} still holds, its payment expired at {r.expires_at}"
                for r in rows]
    holding = and_(orders.c.payment_method == "CARD", orders.c.status.in_(HOLDING))
    unpaid = (select(orders.c.user_id, func.count().label("n")).where(holding)
              .group_by(orders.c.user_id).subquery())
    counted = (await uow.conn.execute(
        select(wallets.c.user_id, wallets.c.unpaid_card_orders, unpaid.c.n)
        .select_from(wallets.outerjoin(unpaid, unpaid.c.user_id == wallets.c.user_id))
        .where(wallets.c.unpaid_card_orders != func.coalesce(unpaid.c.n, 0)))).all()
    problems += [f"user {r.user_id}: {r.unpaid_card_orders} unpaid card orders counted, "
                 f"{r.n or 0} holding" for r in counted]
    units = (select(order_items.c.product_id, func.sum(order_items.c.quantity).label("q"))
             .select_from(order_items.join(orders, orders.c.id == order_items.c.order_id))
             .where(holding).group_by(order_items.c.product_id).subquery())
    held = (await uow.conn.execute(
        select(products.c.id, products.c.held, units.c.q)
        .select_from(products.outerjoin(units, units.c.product_id == products.c.id))
        .where(products.c.held != func.coalesce(units.c.q, 0)))).all()
    return problems + [f"product {r.id}: {r.held} units counted held, {r.q or 0} held by "
                       "unpaid card orders" for r in held]
