"""Invariants 4 and 5: orders against the balance ledger and the held coupons."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from ecommerce.coupons.models import user_coupons
from ecommerce.events.models import outbox
from ecommerce.orders.models import orders
from ecommerce.platform.database import UnitOfWork
from ecommerce.wallet.models import balance_ledger


async def payments(uow: UnitOfWork) -> list[str]:
    """4. One PAYMENT of -paid per order, one REFUND of +paid per cancelled order."""
    problems = []
    for kind, sign, statuses in (("PAYMENT", -1, ("PAID", "CANCELLED")),
                                 ("REFUND", 1, ("CANCELLED",))):
        entries = (select(balance_ledger.c.order_id, func.count().label("n"),
                          func.sum(balance_ledger.c.amount).label("total"))
                   .where(balance_ledger.c.type == kind)
                   .group_by(balance_ledger.c.order_id).subquery())
        rows = (await uow.conn.execute(
            select(orders.c.id, orders.c.paid_amount, entries.c.n, entries.c.total)
            .select_from(orders.outerjoin(entries, entries.c.order_id == orders.c.id))
            .where(orders.c.status.in_(statuses))
            .where((entries.c.n.is_(None)) | (entries.c.n != 1)
                   | (entries.c.total != sign * orders.c.paid_amount)))).all()
        problems += [f"order {r.id}: {r.n or 0} {kind} entries totalling {r.total}, "
                     f"expected one of {sign * r.paid_amount}" for r in rows]
    bad_amounts = (await uow.conn.execute(select(orders.c.id).where(
        (orders.c.paid_amount != orders.c.total_price - orders.c.discount_amount)
        | (orders.c.paid_amount < 0)))).scalars().all()
    problems += [f"order {order_id}: paidAmount is not totalPrice - discountAmount >= 0"
                 for order_id in bad_amounts]
    return problems


async def coupon_use(uow: UnitOfWork) -> list[str]:
    """5. A USED coupon belongs to exactly one paid order; a paid order uses at most one."""
    paid_using = (select(orders.c.user_coupon_id, func.count().label("n"))
                  .where(orders.c.status == "PAID", orders.c.user_coupon_id.is_not(None))
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
        .where(and_(orders.c.status == "PAID",
                    user_coupons.c.order_id != orders.c.id)))).scalars().all()
    problems += [f"order {order_id} uses a coupon recorded for another order"
                 for order_id in mismatched]
    return problems


async def events(uow: UnitOfWork) -> list[str]:
    """6. Every paid order has its order.completed in the outbox, every cancelled one its
    order.cancelled too."""
    def has(event_type: str) -> Any:
        return (select(outbox.c.id).where(outbox.c.order_id == orders.c.id,
                                          outbox.c.event_type == event_type).exists())

    rows = (await uow.conn.execute(
        select(orders.c.id, orders.c.status)
        .where(~has("order.completed") | ((orders.c.status == "CANCELLED")
                                           & ~has("order.cancelled"))))).all()
    return [f"order {row.id} ({row.status}) is missing its event" for row in rows]
