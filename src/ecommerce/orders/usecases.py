"""What a caller can do with orders, each from authorisation to the answer's body: the
transaction, idempotency and how the order is written are decided here. The FastAPI
routes and the lean path (platform/fastpath.py) are adapters over these.

Placing an order is one path: priced once (orders/pricing.py), written by the writer
chosen when the app started (orders/writer.py), and, by card, a READY payment opened
beside it in the same transaction (payments/machine.py), paid later through
`confirm_payment`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ecommerce.catalog.listing import Listings
from ecommerce.orders import pricing, service
from ecommerce.orders.payment import CardOrders, order_view
from ecommerce.orders.pricing import CardTerms
from ecommerce.orders.schemas import AdminOrderOut, DailySalesOut, OrderIn, OrderOut, QuoteOut
from ecommerce.orders.writer import OrderWriter
from ecommerce.payments import machine
from ecommerce.payments.schemas import ConfirmIn
from ecommerce.payments.usecases import Payments
from ecommerce.platform import idempotency
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, ensure_self_or_admin, require_admin
from ecommerce.ranking.service import shop_day

PLACE_PATH = "/api/orders"


@dataclass(frozen=True)
class Checkout:
    """What a customer's checkout needs besides the payment: the gateway's client key and
    the page where the card is taken."""

    client_key: str | None = None
    url: str | None = None


class Orders:
    def __init__(self, db: Database, clock: Clock, listings: Listings, zone: ZoneInfo,
                 writer: OrderWriter, payments: Payments, card: CardTerms,
                 checkout: Checkout):
        self.db = db
        self.clock = clock
        self.listings = listings
        self.zone = zone
        self.writer = writer
        self.payments = payments
        self.card = card
        self.checkout = checkout
        self.purpose = CardOrders(listings, zone, self.body)
        payments.register(self.purpose)

    def out(self, view: dict[str, Any]) -> OrderOut:
        """The order as answered: a card payment carries the gateway's client key and
        checkout page, which the customer's checkout needs."""
        if view.get("payment") is not None:
            view["payment"] = {**view["payment"], "client_key": self.checkout.client_key,
                               "checkout_url": self.checkout.url}
        return OrderOut(**view)

    def body(self, view: dict[str, Any]) -> dict[str, Any]:
        return self.out(view).model_dump(mode="json", by_alias=True)

    async def place(self, caller: Principal, command: OrderIn, key: str | None
                    ) -> tuple[int, Any]:
        """Place an order for a user (themself, or anyone for an admin), at most once per
        Idempotency-Key: 201 with the order, PAID, or by card PAYMENT_PENDING with what
        the gateway's checkout needs."""
        ensure_self_or_admin(caller, command.user_id)
        card = None
        if command.payment_method == "CARD":
            self.payments.required()  # 409 without a gateway
            card = self.card

        async def work(uow: UnitOfWork) -> tuple[int, Any]:
            now = self.clock.now()
            order, _ = await pricing.price(
                uow, user_id=command.user_id, lines=command.lines(),
                coupon_code=command.coupon_code, now=now, day=shop_day(now, self.zone),
                card=card, balance_amount=command.balance_amount or 0)
            if order.card is None:  # the answer is known before the write, but for the id
                body = self.body(service.placed_view(order, 0, None))
                body["orderId"] = await self.writer.write(uow, order, self.listings,
                                                          answer=(201, body))
                return 201, body
            order_id = await self.writer.write(uow, order, self.listings)
            payment = await machine.open_payment(
                uow, kind="ORDER", user_id=order.user_id, order_id=order_id,
                amount=order.card_part, now=now, hold_seconds=order.card.hold_seconds)
            return 201, self.body(service.placed_view(order, order_id, payment))

        return await idempotency.run(
            self.db, user_id=caller.user_id, key=key, operation="orders.place",
            payload=command.model_dump() if key is not None else None, path=PLACE_PATH,
            work=work, one_statement=self.writer.one_statement and card is None)

    async def quote(self, caller: Principal, command: OrderIn) -> tuple[int, Any]:
        """What the order would cost now, by the order's own rules; nothing is held."""
        ensure_self_or_admin(caller, command.user_id)
        now = self.clock.now()
        async with self.db.uow(write=False) as uow:
            order, quoted = await pricing.price(
                uow, user_id=command.user_id, lines=command.lines(),
                coupon_code=command.coupon_code, now=now, day=shop_day(now, self.zone))
        pricing.check_stock(order, quoted)
        view = service.placed_view(order, 0, None)
        return 200, QuoteOut(items=view["items"], total_price=order.total,
                             discount_amount=order.discount, paid_amount=order.paid,
                             coupon_code=view["coupon_code"], balance=quoted.balance
                             ).model_dump(mode="json", by_alias=True)

    async def confirm_payment(self, caller: Principal, order_id: int, command: ConfirmIn
                              ) -> tuple[int, Any]:
        """Pay a card order's card part with what the gateway's checkout returned: 200
        PAID, 202 PAYMENT_UNKNOWN, or the refusal (payments/usecases.py)."""
        return await self.payments.confirm(CardOrders.kind, order_id, caller,
                                           command.payment_key, command.amount)

    async def cancel(self, caller: Principal, order_id: int, key: str | None
                     ) -> tuple[int, Any]:
        """Cancel an order (the caller's own, or any for an admin), at most once per key.
        A paid order: the refund, the stock and the coupon back, `order.cancelled`; a paid
        card order is CANCEL_PENDING until the gateway refunds its card part, asked right
        after (and by the job until it answers): 200 CANCELLED, or 202 CANCEL_PENDING. A
        card order not paid yet: CANCELLED at once, every hold given back, and the
        gateway never asked to charge it. A repeat of the key answers as the order
        stands then."""
        async def work(uow: UnitOfWork) -> tuple[int, Any]:
            now = self.clock.now()
            order = await service.visible(uow, order_id, caller.user_id, caller.is_admin)
            if order.payment_method == "CARD":
                await self._cancel_card_order(uow, order, now)
            else:
                await service.cancel_paid(uow, self.listings, self.zone, order, now)
            view = await order_view(uow, order_id)
            return service.status_of(view), self.body(view)

        status, body = await idempotency.run(
            self.db, user_id=caller.user_id, key=key, operation="orders.cancel",
            payload={"orderId": order_id}, path=f"/api/orders/{order_id}/cancel", work=work)
        if status != 202:
            return status, body
        async with self.db.uow(write=False) as uow:
            payment = await machine.of_order(uow, order_id)
        await self.payments.refund(payment.id)
        async with self.db.uow(write=False) as uow:
            view = await order_view(uow, order_id)
        return service.status_of(view), self.body(view)

    async def _cancel_card_order(self, uow: UnitOfWork, order: Any, now: Any) -> None:
        payment = await machine.of_order(uow, order.id)
        if order.status == "PAYMENT_PENDING" and await machine.void(uow, self.purpose,
                                                                   payment, now):
            return
        if order.status == "PAID" and await machine.start_refund(uow, payment, now):
            await service.start_refund(uow, order)
            return
        current = await service.visible(uow, order.id, order.user_id, True)
        raise service.not_cancellable(current.status)

    async def order(self, caller: Principal, order_id: int) -> OrderOut:
        """An order with its items; another customer's order does not exist for the caller."""
        async with self.db.uow(write=False) as uow:
            await service.visible(uow, order_id, caller.user_id, caller.is_admin)
            view = await order_view(uow, order_id)
        return self.out(view)

    async def orders_of(self, caller: Principal, user_id: int, page: Page
                        ) -> tuple[list[OrderOut], int]:
        ensure_self_or_admin(caller, user_id)
        views, total = await self._search(user_id, None, page)
        return [self.out(view) for view in views], total

    async def all_orders(self, caller: Principal, user_id: int | None, status: str | None,
                         page: Page) -> tuple[list[AdminOrderOut], int]:
        """Every order (or a user's), newest first, with its buyer's name."""
        require_admin(caller)
        views, total = await self._search(user_id, status, page)
        return [AdminOrderOut(**self.out(view).model_dump(), username=view["username"])
                for view in views], total

    async def _search(self, user_id: int | None, status: str | None, page: Page
                      ) -> tuple[list[dict[str, Any]], int]:
        async with self.db.uow(write=False) as uow:
            rows, items, total = await service.search(uow, user_id=user_id, status=status,
                                                      limit=page.size, offset=page.offset)
            by_card = await machine.of_orders(
                uow, [row.id for row in rows if row.payment_method == "CARD"])
        return [{**service.view(row, items[row.id], by_card.get(row.id)),
                 "username": row.username} for row in rows], total

    async def daily_sales(self, caller: Principal, days: int) -> list[DailySalesOut]:
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            rows = await service.daily_sales(uow, days=days, now=self.clock.now(),
                                             zone=self.zone)
        return [DailySalesOut(**row) for row in rows]
