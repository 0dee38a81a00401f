"""A card order as a card payment's purpose (payments/machine.py): what confirming it
starts, what an approval applies (PAID), what a payment that will never be applied gives
back (every hold), and what a refund finishes (the cancellation)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ecommerce.catalog.listing import Listings
from ecommerce.events import outbox
from ecommerce.orders import repository, service
from ecommerce.payments import machine
from ecommerce.payments.errors import NotPayable
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.principal import Principal
from ecommerce.platform.types import naive_utc
from ecommerce.ranking import service as ranking

log = logging.getLogger("ecommerce.orders")

Shown = Callable[[dict[str, Any]], dict[str, Any]]


class CardOrders:
    kind: ClassVar[str] = "ORDER"

    def __init__(self, listings: Listings, zone: ZoneInfo, shown: Shown):
        self.listings = listings
        self.zone = zone
        self.shown = shown  # an order's view as answered
        # On PostgreSQL with the functions installed (`choose_one_call`, when the app
        # starts): a confirm is begun in one statement (card_confirming.sql) and its plain
        # approval applied in one (card_paid.sql).
        self.in_one_call = False

    async def owned(self, uow: UnitOfWork, order_id: int, caller: Principal) -> Any:
        found = await repository.card_payment(uow.conn, order_id)  # one read, on a confirm
        service.seen(found and found.buyer_id, caller.user_id, caller.is_admin)
        if found.order_method != "CARD" or found.id is None:
            raise NotPayable("This order is not paid by card")
        return found

    async def started(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        if not await service.start_confirm(uow, payment.order_id):
            raise AssertionError(f"order {payment.order_id} is not PAYMENT_PENDING beside "
                                 "its READY payment")

    async def applied(self, uow: UnitOfWork, payment: Any, now: datetime) -> Any:
        return await service.mark_paid(uow, self.zone, payment.order_id, now)

    async def began_in_one_call(self, uow: UnitOfWork, payment: Any, payment_key: str,
                                now: datetime) -> bool:
        """`begin`'s move and `started` in one call of shop_card_order_confirming."""
        try:
            return await repository.card_confirming_in_one_call(uow.conn, {
                "payment_id": payment.id, "order_id": payment.order_id,
                "payment_key": payment_key, "now": naive_utc(now)})
        except repository.Refused:
            raise AssertionError(f"order {payment.order_id} is not PAYMENT_PENDING beside "
                                 "its READY payment") from None

    async def applied_in_one_call(self, uow: UnitOfWork, payment: Any,
                                  charged: dict[str, Any], now: datetime) -> Any:
        """`applied` and the payment's DONE move in one call of shop_card_order_paid, from
        the order and items the confirm read (`owned`): what `mark_paid` returns."""
        order, items = payment.order, payment.items
        lines = sorted((item.product_id, item.quantity) for item in items)
        event = outbox.row(service.paid_event(order, items, now))
        try:
            await repository.card_paid_in_one_call(uow.conn, {
                "payment_id": payment.id, "order_id": order.id, "user_id": order.user_id,
                "payment_key": charged["payment_key"],
                "approved_at": naive_utc(charged["approved_at"]), "now": naive_utc(now),
                "day": ranking.shop_day(order.created_at, self.zone),
                "products": [product for product, _ in lines],
                "quantities": [quantity for _, quantity in lines],
                "event_id": event["event_id"], "event": event["payload"]})
        except repository.Refused:
            raise machine.NotInOneCall() from None
        uow.wrote_events()
        return SimpleNamespace(**{**vars(order), "status": "PAID", "paid_at": now}), items

    async def released(self, uow: UnitOfWork, payment: Any, why: str, now: datetime) -> None:
        await service.release(uow, self.listings, self.zone, payment.order_id,
                              service.UNPAID_END[why], now)

    async def refunded(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        # A cancellation's refund finishes it; a refund of an approval that came after the
        # order was given up has nothing left to do.
        await service.finish_cancel(uow, self.listings, self.zone, payment.order_id, now)

    async def answer(self, uow: UnitOfWork, payment: Any, applied: Any = None
                     ) -> tuple[int, Any]:
        view = (service.view(*applied, payment) if applied  # the paid order, as just read
                else await order_view(uow, payment.order_id, payment))
        return service.status_of(view), self.shown(view)

    async def refusal(self, uow: UnitOfWork, payment: Any) -> Exception:
        order = await repository.get(uow.conn, payment.order_id)
        return NotPayable(f"This order is {order.status}; it can no longer be paid")


_INSTALLED = text("SELECT count(*) FROM pg_proc WHERE proname IN "
                  "('shop_card_order_confirming', 'shop_card_order_paid')")


async def choose_one_call(db: Database, purpose: CardOrders) -> None:
    """Whether card orders' confirms are begun and their approvals applied in one
    statement each here: on PostgreSQL
    (not behind PgBouncer, where every unit of work is a transaction) with the function
    installed; decided once when the app starts (if the database does not answer then,
    the usual transaction is used until the next start)."""
    if not db.autocommit_allowed:
        return
    try:
        async with db.uow(write=False) as uow:
            installed = (await uow.conn.execute(_INSTALLED)).scalar_one()
    except (OSError, DBAPIError) as error:
        log.warning("card orders' one-statement approval not chosen: the database did "
                    "not answer", extra={"error": type(error).__name__})
        return
    purpose.in_one_call = installed == 2


async def order_view(uow: UnitOfWork, order_id: int, payment: Any = None) -> dict[str, Any]:
    """An order with its items and card payment, as it stands."""
    order, items = await repository.with_items(uow.conn, order_id)
    if payment is None and order.payment_method == "CARD":
        payment = await machine.of_order(uow, order_id)
    return service.view(order, items, payment if order.payment_method == "CARD" else None)
