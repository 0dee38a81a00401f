"""Orders after they are placed (placing is orders/pricing.py and orders/writer.py): paid,
released, cancelled, read; each change within the caller's unit of work."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ecommerce.catalog import service as catalog
from ecommerce.catalog.listing import Listings
from ecommerce.coupons import service as coupons
from ecommerce.events.domain import (
    OrderCancelled,
    OrderCompleted,
    OrderEvent,
    OrderPaymentFailed,
)
from ecommerce.orders import repository
from ecommerce.orders.errors import OrderNotCancellable, OrderNotFound
from ecommerce.orders.models import HOLDING
from ecommerce.orders.pricing import PricedOrder
from ecommerce.payments.usecases import checkout_view
from ecommerce.platform.database import UnitOfWork
from ecommerce.ranking import service as ranking
from ecommerce.wallet import service as wallet

# What an unpaid card order becomes when its payment will never be applied, by why.
UNPAID_END = {"FAILED": "PAYMENT_FAILED", "EXPIRED": "EXPIRED", "VOIDED": "CANCELLED"}


def announcement(kind: type[OrderEvent], *, order_id: int, user_id: int,
                 items: list[tuple[int, int, int]], total: int, discount: int,
                 coupon_code: str | None, now: datetime) -> OrderEvent:
    """The event an order's change records: every order event is built here."""
    return kind(occurred_at=now, order_id=order_id, user_id=user_id, items=items,
                total_price=total, discount_amount=discount, paid_amount=total - discount,
                coupon_code=coupon_code)


def completed(order: PricedOrder, order_id: int) -> OrderEvent:
    """`order.completed` of an order paid as it is placed."""
    return announcement(OrderCompleted, order_id=order_id, user_id=order.user_id,
                        items=[(line.product_id, line.quantity, line.unit_price)
                               for line in order.lines],
                        total=order.total, discount=order.discount,
                        coupon_code=order.coupon.code if order.coupon else None,
                        now=order.placed_at)


def _event(kind: type[OrderEvent], order: Any, items: list[Any], now: datetime) -> OrderEvent:
    """An event of a stored order."""
    return announcement(kind, order_id=order.id, user_id=order.user_id,
                        items=[(i.product_id, i.quantity, i.unit_price) for i in items],
                        total=order.total_price, discount=order.discount_amount,
                        coupon_code=order.coupon_code, now=now)


def placed_view(order: PricedOrder, order_id: int, payment: Any) -> dict[str, Any]:
    """A just-placed order's view, from its priced value (nothing read back)."""
    return {"order_id": order_id, "user_id": order.user_id, "status": order.status,
            "items": [{"product_id": line.product_id, "name": line.name,
                       "unit_price": line.unit_price, "quantity": line.quantity,
                       "line_total": line.line_total} for line in order.lines],
            "total_price": order.total, "discount_amount": order.discount,
            "paid_amount": order.paid,
            "coupon_code": order.coupon.code if order.coupon else None,
            "created_at": order.placed_at, "paid_at": None if order.by_card else order.placed_at,
            "cancelled_at": None, "payment_method": order.method,
            "balance_amount": order.balance_part, "card_amount": order.card_part,
            "payment": checkout_view(payment) if payment is not None else None}


# Balance orders' cancellation ------------------------------------------------------------

async def cancel_paid(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order: Any,
                      now: datetime) -> None:
    """A paid balance order cancelled: the refund, the stock and the coupon back, the sale
    off the top sellers, `order.cancelled` recorded (OrderNotCancellable unless PAID)."""
    if not await repository.move(uow.conn, order.id, ("PAID",), "CANCELLED",
                                 cancelled_at=now):
        raise not_cancellable(order.status)
    await _give_back(uow, listings, zone, order, now, sold=True)


def not_cancellable(status: str) -> OrderNotCancellable:
    if status == "CANCELLED":
        return OrderNotCancellable("This order is already cancelled")
    if status == "CANCEL_PENDING":
        return OrderNotCancellable("This order's refund is already under way")
    if status == "PAYMENT_UNKNOWN":
        return OrderNotCancellable("This order's card payment is being confirmed; once it "
                                   "is settled it can be cancelled")
    return OrderNotCancellable(f"This order is {status}: nothing is held or paid to give back")


# Card orders' moves (orders/payment.py calls these after the payment row moved) ------------

async def start_confirm(uow: UnitOfWork, order_id: int) -> bool:
    """PAYMENT_PENDING -> PAYMENT_UNKNOWN before the gateway is asked: from here the order
    no longer expires, only the gateway's answer (or a read-back) settles it."""
    return await repository.move(uow.conn, order_id, ("PAYMENT_PENDING",), "PAYMENT_UNKNOWN")


async def mark_paid(uow: UnitOfWork, zone: ZoneInfo, order_id: int, now: datetime
                    ) -> tuple[Any, list[Any]] | None:
    """The card part is charged: PAID, no longer one of its user's unpaid orders nor
    holding its units, the sale counted and `order.completed` recorded (once; None if the
    order no longer holds). The order as it now is, and its items."""
    if not await repository.move(uow.conn, order_id, HOLDING, "PAID", paid_at=now):
        return None
    order, items = await repository.with_items(uow.conn, order_id)
    lines = [(i.product_id, i.quantity) for i in items]
    await wallet.order_paid(uow, order.user_id, now)
    await catalog.release_held(uow, lines, now)
    await ranking.record_sale(uow, lines, ranking.shop_day(order.created_at, zone))
    uow.record(paid_event(order, items, now))
    return order, items


def paid_event(order: Any, items: list[Any], now: datetime) -> OrderEvent:
    """`order.completed` of a card order paid now."""
    return _event(OrderCompleted, order, items, now)


async def release(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order_id: int,
                  status: str, now: datetime) -> bool:
    """An unpaid card order ends: PAYMENT_FAILED (from either holding state), or EXPIRED
    or CANCELLED (only one never sent to the gateway); its stock, coupon and balance part
    are given back, and a failed payment records `order.payment_failed` (once; False if
    it had left that state already)."""
    leaving = HOLDING if status == "PAYMENT_FAILED" else ("PAYMENT_PENDING",)
    extra = {"cancelled_at": now} if status == "CANCELLED" else {}
    if not await repository.move(uow.conn, order_id, leaving, status, **extra):
        return False
    order = await repository.get(uow.conn, order_id)
    items = await _give_back(uow, listings, zone, order, now, sold=False)
    if status == "PAYMENT_FAILED":  # the customer is told (the e-mail consumer)
        uow.record(_event(OrderPaymentFailed, order, items, now))
    return True


async def start_refund(uow: UnitOfWork, order: Any) -> None:
    """A paid card order is being cancelled: CANCEL_PENDING until the gateway refunds
    its card part (the payment row moved first)."""
    if not await repository.move(uow.conn, order.id, ("PAID",), "CANCEL_PENDING"):
        raise AssertionError(f"order {order.id} is not PAID beside its DONE payment")


async def finish_cancel(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order_id: int,
                        now: datetime) -> bool:
    """A card order's refund is done: CANCELLED, with everything a cancellation gives back
    and `order.cancelled` (once; False if it was not being cancelled)."""
    if not await repository.move(uow.conn, order_id, ("CANCEL_PENDING",), "CANCELLED",
                                 cancelled_at=now):
        return False
    await _give_back(uow, listings, zone, await repository.get(uow.conn, order_id), now,
                     sold=True)
    return True


async def _give_back(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order: Any,
                     now: datetime, *, sold: bool) -> list[Any]:
    """The coupon, the balance part and the stock back, in the lock order of placing; a
    sold order also leaves the top sellers and records `order.cancelled`, an unpaid one
    stops counting as its user's unpaid card order and holding its units. The items."""
    items = (await repository.items_of(uow.conn, [order.id]))[order.id]
    lines = [(item.product_id, item.quantity) for item in items]
    if order.user_coupon_id is not None:
        held = await coupons.held_by_id(uow, order.user_coupon_id)
        await coupons.give_back(uow, order.user_coupon_id, held.coupon_id, order.user_id,
                                order.id, now)
    await wallet.refund_order(uow, order.user_id, order.balance_amount, order.id, now,
                              unpaid=not sold)
    await catalog.return_stock(uow, listings, lines, order.id, now, held=not sold)
    if sold:
        await ranking.record_cancellation(uow, lines, ranking.shop_day(order.created_at, zone))
        uow.record(_event(OrderCancelled, order, items, now))
    return items


# Reads ------------------------------------------------------------------------------------

async def visible(uow: UnitOfWork, order_id: int, user_id: int, is_admin: bool) -> Any:
    order = await repository.get(uow.conn, order_id)
    seen(order and order.user_id, user_id, is_admin)
    return order


def seen(buyer_id: int | None, user_id: int, is_admin: bool) -> None:
    """OrderNotFound unless an order (of `buyer_id`; None: there is none) is the caller's
    or the caller is an admin: another user's order does not exist, as far as you know."""
    if buyer_id is None or (buyer_id != user_id and not is_admin):
        raise OrderNotFound()


def view(order: Any, items: list[Any], payment: Any) -> dict[str, Any]:
    return {
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "items": [{"product_id": i.product_id, "name": i.name, "unit_price": i.unit_price,
                   "quantity": i.quantity, "line_total": i.line_total} for i in items],
        "total_price": order.total_price, "discount_amount": order.discount_amount,
        "paid_amount": order.paid_amount, "coupon_code": order.coupon_code,
        "created_at": order.created_at, "paid_at": order.paid_at,
        "cancelled_at": order.cancelled_at, "payment_method": order.payment_method,
        "balance_amount": order.balance_amount, "card_amount": order.card_amount,
        "payment": checkout_view(payment) if payment is not None else None,
    }


def status_of(view: dict[str, Any]) -> int:
    """What an order's answer is: 202 while its card payment or refund is unsettled (the
    answer's status code always follows the status its body shows)."""
    return 202 if view["status"] in ("PAYMENT_UNKNOWN", "CANCEL_PENDING") else 200


async def search(uow: UnitOfWork, *, user_id: int | None, status: str | None, limit: int,
                 offset: int) -> tuple[list[Any], dict[int, list[Any]], int]:
    """Orders newest first (of one user, or all), their items, and the total."""
    rows = await repository.search(uow.conn, user_id, status, limit, offset)
    items = await repository.items_of(uow.conn, [row.id for row in rows])
    return list(rows), items, await repository.count(uow.conn, user_id, status)


async def daily_sales(uow: UnitOfWork, *, days: int, now: datetime, zone: ZoneInfo
                      ) -> list[dict[str, Any]]:
    """Orders still paid and their revenue per calendar day of the shop's time zone, for
    the last `days` days including today, oldest first (days without sales show 0)."""
    today = ranking.shop_day(now, zone)
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    totals: dict[date, list[int]] = {first + timedelta(days=n): [0, 0] for n in range(days)}
    for row in await repository.paid_since(uow.conn, since):
        day = totals.get(ranking.shop_day(row.created_at, zone))
        if day is not None:
            day[0] += 1
            day[1] += row.paid_amount
    return [{"day": day, "orders": count, "revenue": revenue}
            for day, (count, revenue) in totals.items()]
