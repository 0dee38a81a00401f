"""Placing, paying and cancelling orders: each one transaction, all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ecommerce.accounts.errors import UserNotFound
from ecommerce.catalog import service as catalog
from ecommerce.catalog.errors import ProductNotFound
from ecommerce.catalog.listing import Listings
from ecommerce.coupons import service as coupons
from ecommerce.coupons.errors import CouponNotUsable
from ecommerce.events import outbox
from ecommerce.events.domain import (
    OrderCancelled,
    OrderCompleted,
    OrderEvent,
    OrderPaymentFailed,
)
from ecommerce.orders import repository
from ecommerce.orders.errors import OrderNotCancellable, OrderNotFound
from ecommerce.orders.models import HOLDING, RELEASED
from ecommerce.payments import service as payments
from ecommerce.platform.database import RetryTransaction, UnitOfWork
from ecommerce.platform.errors import InvalidRequest
from ecommerce.ranking import service as ranking
from ecommerce.wallet import service as wallet
from ecommerce.wallet.errors import InsufficientBalance


def places_in_one_statement(dialect: str) -> bool:
    """Whether `place_order` writes in one statement on this database (PostgreSQL)."""
    return dialect == "postgresql"


@dataclass(frozen=True)
class ByCard:
    """A card order's terms: `balance_amount` from the balance (at most what is to be
    paid), the rest by card; the holds last `hold_seconds`."""

    balance_amount: int
    hold_seconds: int


async def place_order(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *, user_id: int,
                      lines: Sequence[tuple[int, int]], coupon_code: str | None,
                      now: datetime, in_one_call: bool, card: ByCard | None = None
                      ) -> dict[str, Any]:
    """Take the stock of every line, use the coupon, charge the balance, store the order,
    count the sale and record `order.completed`; any error leaves nothing changed.

    By card (`card`): the same holds, but the balance pays only its part, the order is
    PAYMENT_PENDING with a READY payment for the rest, and the sale and its event wait
    until the gateway confirms (`mark_paid`). Nothing is left for the card (a discount or
    the balance part covers it all): it is an order paid from the balance.

    Every order and cancellation takes its locks in one order: the held coupon, the wallet,
    then product rows by id (and their sales rows), so overlapping orders never deadlock.
    The product rows come last because they are the ones every buyer in a sale wants: they
    are held only for the last few statements before commit. `in_one_call` (PostgreSQL
    only): the same writes in one call of `shop_place_order` (place_order.sql)."""
    _, quoted, items = await _priced(uow, user_id, lines)
    subtotal = sum(item["line_total"] for item in items)
    if in_one_call:  # PostgreSQL's shop_place_order (the use case chooses)
        return await _place_in_one_call(uow, listings, zone, user_id=user_id, lines=lines,
                                        items=items, subtotal=subtotal,
                                        coupon_code=coupon_code, now=now, card=card)
    order_id = await repository.add_order(uow.conn, user_id, now)
    applied = None
    if coupon_code is not None:
        applied = await coupons.use(uow, user_id, coupon_code, subtotal, order_id, now)
    discount = applied.discount if applied else 0
    paid = subtotal - discount
    by_card = _card_part(card, paid)
    balance_part = paid - by_card
    if balance_part > 0:
        await wallet.pay(uow, user_id, balance_part, order_id, now)
    else:  # a free order still leaves its PAYMENT entry (of 0) in the ledger
        await wallet.record_zero_payment(uow, user_id, order_id, now)
    code = applied.code if applied else None
    await repository.set_amounts(uow.conn, order_id, subtotal, discount, code,
                                 applied.user_coupon_id if applied else None, by_card)
    payment = await _open_payment(uow, card, user_id, order_id, by_card, now)
    if payment is None:
        uow.record(OrderCompleted(
            occurred_at=now, order_id=order_id, user_id=user_id,
            items=[(i["product_id"], i["quantity"], i["unit_price"]) for i in items],
            total_price=subtotal, discount_amount=discount, paid_amount=paid, coupon_code=code))
    await catalog.take_stock(uow, listings, lines, quoted, order_id, now)
    # After the stock: the items' foreign-key check would otherwise take a shared lock on
    # the product rows first, and InnoDB deadlocks two orders that both then want them.
    await repository.add_items(uow.conn, order_id, items)
    if not by_card:
        await ranking.record_sale(uow, lines, now, zone)
    return _placed(order_id, user_id, items, subtotal, discount, code, now, by_card, payment)


async def _open_payment(uow: UnitOfWork, card: ByCard | None, user_id: int, order_id: int,
                        by_card: int, now: datetime) -> Any:
    """A card order's READY payment of its card part (None: nothing is paid by card)."""
    if card is None or not by_card:
        return None
    return await payments.open_payment(uow, kind="ORDER", user_id=user_id, order_id=order_id,
                                       amount=by_card, now=now, hold_seconds=card.hold_seconds)


def _card_part(card: ByCard | None, paid: int) -> int:
    """What the card pays of `paid`; InvalidRequest if the balance part is more."""
    if card is None:
        return 0
    if card.balance_amount > paid:
        raise InvalidRequest(f"balanceAmount: at most the amount to pay, {paid} won")
    return paid - card.balance_amount


def _placed(order_id: int, user_id: int, items: list[dict[str, Any]], subtotal: int,
            discount: int, code: str | None, now: datetime, by_card: int, payment: Any
            ) -> dict[str, Any]:
    return {"order_id": order_id, "user_id": user_id,
            "status": "PAYMENT_PENDING" if by_card else "PAID", "items": items,
            "total_price": subtotal, "discount_amount": discount,
            "paid_amount": subtotal - discount, "coupon_code": code, "created_at": now,
            "cancelled_at": None, "payment_method": "CARD" if by_card else "BALANCE",
            "balance_amount": subtotal - discount - by_card, "card_amount": by_card,
            "payment": payments.checkout_view(payment, None) if payment is not None else None}


async def _priced(uow: UnitOfWork, user_id: int, lines: Sequence[tuple[int, int]]
                  ) -> tuple[int, dict[int, Any], list[dict[str, Any]]]:
    """The buyer's balance, the products read without locks, and the lines at today's
    prices; UserNotFound or ProductNotFound (unlisted) first."""
    balance, quoted = await repository.quote(uow.conn, user_id, [pid for pid, _ in lines])
    if balance is None:
        raise UserNotFound()  # before anything else
    catalog.check_listed(quoted, lines)
    items = [{"product_id": pid, "name": quoted[pid].name, "unit_price": quoted[pid].price,
              "quantity": qty, "line_total": quoted[pid].price * qty} for pid, qty in lines]
    return balance, quoted, items


async def quote_order(uow: UnitOfWork, *, user_id: int, lines: Sequence[tuple[int, int]],
                      coupon_code: str | None, now: datetime) -> dict[str, Any]:
    """What `place_order` would charge now, by the same rules (listed products, enough
    stock, a usable coupon), with the buyer's balance; nothing is held or changed, and a
    balance that is too low is shown, not refused."""
    balance, quoted, items = await _priced(uow, user_id, lines)
    subtotal = sum(item["line_total"] for item in items)
    held = (await coupons.usable(uow, user_id, coupon_code, subtotal, now)
            if coupon_code is not None else None)
    for product_id, quantity in lines:  # after the coupon, as when the order is placed
        if quoted[product_id].stock < quantity:
            row = quoted[product_id]
            raise catalog.out_of_stock(product_id, row.name, row.stock, quantity)
    applied = coupons.applied(held, subtotal) if held is not None else None
    discount = applied.discount if applied else 0
    return {"items": items, "total_price": subtotal, "discount_amount": discount,
            "paid_amount": subtotal - discount, "coupon_code": applied.code if applied else None,
            "balance": balance}


async def _place_in_one_call(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *,
                             user_id: int, lines: Sequence[tuple[int, int]],
                             items: list[dict[str, Any]], subtotal: int,
                             coupon_code: str | None, now: datetime, card: ByCard | None
                             ) -> dict[str, Any]:
    """PostgreSQL: the same order, its writes in one database call (decision 30). The
    reads and the rules stay here; `shop_place_order` takes the locks in the same order
    as the portable path and re-checks what may have changed since: the coupon still
    available, the balance, each price, the stock. A card order's payment row follows in
    the same transaction."""
    held = (await coupons.usable(uow, user_id, coupon_code, subtotal, now)
            if coupon_code is not None else None)
    applied = coupons.applied(held, subtotal) if held is not None else None
    discount = applied.discount if applied else 0
    code = applied.code if applied else None
    paid = subtotal - discount
    by_card = _card_part(card, paid)
    event = None if by_card else outbox.row(OrderCompleted(
        occurred_at=now, order_id=0, user_id=user_id,
        items=[(i["product_id"], i["quantity"], i["unit_price"]) for i in items],
        total_price=subtotal, discount_amount=discount, paid_amount=paid, coupon_code=code))
    try:
        order_id, stocks = await repository.place_in_one_call(uow.conn, {
            "user_id": user_id, "now": now.astimezone(UTC).replace(tzinfo=None),
            "day": ranking.shop_day(now, zone),
            "products": [i["product_id"] for i in items],
            "quantities": [i["quantity"] for i in items],
            "prices": [i["unit_price"] for i in items], "names": [i["name"] for i in items],
            "total": subtotal, "discount": discount,
            "user_coupon_id": held.user_coupon_id if held is not None else None,
            "coupon_id": held.coupon_id if held is not None else None, "coupon_code": code,
            "event_id": event["event_id"] if event else None,
            "event": event["payload"] if event else None,
            "method": "CARD" if by_card else "BALANCE",
            "status": "PAYMENT_PENDING" if by_card else "PAID",
            "balance": paid - by_card, "card": by_card})
    except repository.Refused as refused:
        raise _refusal(refused) from None
    payment = await _open_payment(uow, card, user_id, order_id, by_card, now)
    if payment is None:
        uow.wrote_events()
    if 0 in stocks:
        await listings.changed(uow)
    return _placed(order_id, user_id, items, subtotal, discount, code, now, by_card, payment)


def _refusal(refused: repository.Refused) -> Exception:
    """The error `shop_place_order` stands for: the same as the portable path's."""
    if refused.reason == "PRICE_CHANGED":
        return RetryTransaction()
    if refused.reason == "COUPON_USED":
        return CouponNotUsable(coupons.ALREADY_USED)
    if refused.reason == "INSUFFICIENT_BALANCE":
        return InsufficientBalance()
    if refused.reason == "PRODUCT_NOT_FOUND":
        return ProductNotFound(f"No product {refused.detail}")
    if refused.reason == "OUT_OF_STOCK":
        product_id, name, stock, quantity = orjson.loads(refused.detail or "")
        return catalog.out_of_stock(product_id, name, stock, quantity)
    raise AssertionError(f"shop_place_order raised {refused.reason}")


async def cancel_order(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *, order_id: int,
                       user_id: int, is_admin: bool, now: datetime) -> dict[str, Any]:
    """Refund the payment, put the stock back, return the coupon, take the sale off the
    top sellers and record `order.cancelled`. Only a PAID order can be cancelled.

    A card order only becomes CANCEL_PENDING here: its card part is refunded through the
    gateway after this transaction, and `finish_cancel` then does the rest."""
    order = await visible(uow, order_id, user_id, is_admin)
    if order.payment_method == "CARD":
        if not await repository.move(uow.conn, order_id, ("PAID",), "CANCEL_PENDING"):
            raise _not_cancellable(order.status)
        await payments.refund_pending(uow, await payments.of_order(uow, order_id), now)
    else:
        if not await repository.move(uow.conn, order_id, ("PAID",), "CANCELLED",
                                     cancelled_at=now):
            raise _not_cancellable(order.status)
        await _give_back(uow, listings, zone, order, now, sold=True)
    return await get_order(uow, order_id, user_id=user_id, is_admin=True)


def _not_cancellable(status: str) -> OrderNotCancellable:
    if status == "CANCELLED":
        return OrderNotCancellable("This order is already cancelled")
    if status == "CANCEL_PENDING":
        return OrderNotCancellable("This order's refund is already under way")
    return OrderNotCancellable(f"Only a paid order can be cancelled; this one is {status}")


async def finish_cancel(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order_id: int,
                        now: datetime) -> bool:
    """A card order's refund is done: CANCELLED, with everything `cancel_order` gives back
    and `order.cancelled` (once; False if it was finished already)."""
    order = await repository.get(uow.conn, order_id)
    if not await repository.move(uow.conn, order_id, ("CANCEL_PENDING",), "CANCELLED",
                                 cancelled_at=now):
        return False
    await payments.refunded(uow, await payments.of_order(uow, order_id), now)
    await _give_back(uow, listings, zone, order, now, sold=True)
    return True


async def mark_paid(uow: UnitOfWork, zone: ZoneInfo, order_id: int, now: datetime) -> bool:
    """The card part is charged: PAID, the sale counted and `order.completed` recorded
    (once; False if the order no longer holds, e.g. it expired meanwhile)."""
    if not await repository.move(uow.conn, order_id, HOLDING, "PAID"):
        return False
    order = await repository.get(uow.conn, order_id)
    items = (await repository.items_of(uow.conn, [order_id]))[order_id]
    await ranking.record_sale(uow, [(i.product_id, i.quantity) for i in items],
                              order.created_at, zone)
    uow.record(_event(OrderCompleted, order, items, now))
    return True


async def release(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order_id: int,
                  status: str, now: datetime) -> bool:
    """An unpaid card order ends: PAYMENT_FAILED (from either holding state) or EXPIRED
    (only one never sent to the gateway); its stock, coupon and balance part are given
    back, and a failed payment records `order.payment_failed` (once; False if it had left
    that state already)."""
    assert status in RELEASED
    leaving = HOLDING if status == "PAYMENT_FAILED" else ("PAYMENT_PENDING",)
    if not await repository.move(uow.conn, order_id, leaving, status):
        return False
    order = await repository.get(uow.conn, order_id)
    items = await _give_back(uow, listings, zone, order, now, sold=False)
    if status == "PAYMENT_FAILED":  # the customer is told (the e-mail consumer)
        uow.record(_event(OrderPaymentFailed, order, items, now))
    return True


async def _give_back(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, order: Any,
                     now: datetime, *, sold: bool) -> list[Any]:
    """The coupon, the balance part and the stock back, in the lock order of placing; a
    sold order (cancelled) also leaves the top sellers and records `order.cancelled`.
    The order's items."""
    items = (await repository.items_of(uow.conn, [order.id]))[order.id]
    lines = [(item.product_id, item.quantity) for item in items]
    if order.user_coupon_id is not None:
        held = await coupons.held_by_id(uow, order.user_coupon_id)
        await coupons.give_back(uow, order.user_coupon_id, held.coupon_id, order.user_id,
                                order.id, now)
    await wallet.refund(uow, order.user_id, order.balance_amount, order.id, now)
    await catalog.return_stock(uow, listings, lines, order.id, now)
    if sold:
        await ranking.record_cancellation(uow, lines, order.created_at, zone)
        uow.record(_event(OrderCancelled, order, items, now))
    return items


def _event(kind: type[OrderEvent], order: Any, items: list[Any], now: datetime) -> OrderEvent:
    return kind(occurred_at=now, order_id=order.id, user_id=order.user_id,
                items=[(i.product_id, i.quantity, i.unit_price) for i in items],
                total_price=order.total_price, discount_amount=order.discount_amount,
                paid_amount=order.paid_amount, coupon_code=order.coupon_code)


async def visible(uow: UnitOfWork, order_id: int, user_id: int, is_admin: bool) -> Any:
    order = await repository.get(uow.conn, order_id)
    if order is None or (order.user_id != user_id and not is_admin):
        raise OrderNotFound()  # another user's order does not exist, as far as you know
    return order


def _view(order: Any, items: list[Any], payment: Any) -> dict[str, Any]:
    return {
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "items": [{"product_id": i.product_id, "name": i.name, "unit_price": i.unit_price,
                   "quantity": i.quantity, "line_total": i.line_total} for i in items],
        "total_price": order.total_price, "discount_amount": order.discount_amount,
        "paid_amount": order.paid_amount, "coupon_code": order.coupon_code,
        "created_at": order.created_at, "cancelled_at": order.cancelled_at,
        "payment_method": order.payment_method, "balance_amount": order.balance_amount,
        "card_amount": order.card_amount,
        "payment": payments.checkout_view(payment, None) if payment is not None else None,
    }


async def get_order(uow: UnitOfWork, order_id: int, *, user_id: int, is_admin: bool
                    ) -> dict[str, Any]:
    """The order with its items (and card payment); OrderNotFound if missing or someone
    else's."""
    order = await visible(uow, order_id, user_id, is_admin)
    payment = (await payments.of_order(uow, order_id)
               if order.payment_method == "CARD" else None)
    return _view(order, (await repository.items_of(uow.conn, [order_id]))[order_id], payment)


async def search(uow: UnitOfWork, *, user_id: int | None, status: str | None, limit: int,
                 offset: int) -> tuple[list[dict[str, Any]], int]:
    """Orders newest first (of one user, or all), with their items and the total."""
    rows = await repository.search(uow.conn, user_id, status, limit, offset)
    items = await repository.items_of(uow.conn, [row.id for row in rows])
    paid_by_card = await payments.of_orders(
        uow, [row.id for row in rows if row.payment_method == "CARD"])
    return ([_view(row, items[row.id], paid_by_card.get(row.id)) for row in rows],
            await repository.count(uow.conn, user_id, status))


async def daily_sales(uow: UnitOfWork, *, days: int, now: datetime, zone: ZoneInfo
                      ) -> list[dict[str, Any]]:
    """Orders still paid and their revenue per calendar day of the shop's time zone, for
    the last `days` days including today, oldest first (days without sales show 0)."""
    today = ranking.shop_day(now, zone)
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    totals = {first + timedelta(days=n): [0, 0] for n in range(days)}
    for row in await repository.paid_since(uow.conn, since):
        day = totals.get(ranking.shop_day(row.created_at, zone))
        if day is not None:
            day[0] += 1
            day[1] += row.paid_amount
    return [{"day": day, "orders": count, "revenue": revenue}
            for day, (count, revenue) in totals.items()]


async def start_confirm(uow: UnitOfWork, order_id: int) -> bool:
    """PAYMENT_PENDING -> PAYMENT_UNKNOWN before the gateway is asked: from here the order
    no longer expires, only the gateway's answer (or a lookup) settles it."""
    return await repository.move(uow.conn, order_id, ("PAYMENT_PENDING",), "PAYMENT_UNKNOWN")
