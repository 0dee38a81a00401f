"""A card order as a card payment's purpose (payments/machine.py): what confirming it
starts, what an approval applies (PAID), what a payment that will never be applied gives
back (every hold), and what a refund finishes (the cancellation)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from ecommerce.catalog.listing import Listings
from ecommerce.orders import repository, service
from ecommerce.payments import machine
from ecommerce.payments.errors import NotPayable
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.principal import Principal

Shown = Callable[[dict[str, Any]], dict[str, Any]]


class CardOrders:
    kind: ClassVar[str] = "ORDER"

    def __init__(self, listings: Listings, zone: ZoneInfo, shown: Shown):
        self.listings = listings
        self.zone = zone
        self.shown = shown  # an order's view as answered

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


async def order_view(uow: UnitOfWork, order_id: int, payment: Any = None) -> dict[str, Any]:
    """An order with its items and card payment, as it stands."""
    order, items = await repository.with_items(uow.conn, order_id)
    if payment is None and order.payment_method == "CARD":
        payment = await machine.of_order(uow, order_id)
    return service.view(order, items, payment if order.payment_method == "CARD" else None)
