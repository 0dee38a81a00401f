"""What a caller can do with orders, each from authorisation to the answer's body: the
transaction, idempotency and how the order is written are decided here. The FastAPI
routes and the lean path (platform/fastpath.py) are adapters over these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecommerce.orders import card as card_payment
from ecommerce.orders import service
from ecommerce.orders.schemas import DailySalesOut, OrderIn, OrderOut, QuoteOut
from ecommerce.payments import service as payments
from ecommerce.payments.schemas import ConfirmIn
from ecommerce.platform import idempotency
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, ensure_self_or_admin, require_admin

if TYPE_CHECKING:
    from ecommerce.context import AppContext

PLACE_PATH = "/api/orders"


def order_body(view: dict[str, Any], ctx: AppContext) -> dict[str, Any]:
    return _out(view, ctx).model_dump(mode="json", by_alias=True)


def _out(view: dict[str, Any], ctx: AppContext) -> OrderOut:
    """The order as answered: a card payment carries the gateway's client key and checkout
    page, which the customer's checkout needs."""
    if view.get("payment") is not None:
        view["payment"]["client_key"] = ctx.settings.payment_client_key
        view["payment"]["checkout_url"] = ctx.settings.checkout_url
    return OrderOut(**view)


async def place(ctx: AppContext, caller: Principal, command: OrderIn, key: str | None
                ) -> tuple[int, Any]:
    """Place and pay an order for a user (themself, or anyone for an admin), at most once
    per Idempotency-Key: 201 with the order. On PostgreSQL the order's writes are one
    statement (`shop_place_order`), so without a key its unit of work needs no
    BEGIN/COMMIT; with a key the key is written too."""
    ensure_self_or_admin(caller, command.user_id)
    in_one_call = service.places_in_one_statement(ctx.db.dialect)
    card = None
    if command.payment_method == "CARD":  # PAYMENT_PENDING until confirmed (orders/card.py)
        payments.required(ctx.gateway)
        card = service.ByCard(command.balance_amount or 0, ctx.settings.payment_hold_seconds)

    async def work(uow: UnitOfWork) -> tuple[int, Any]:
        view = await service.place_order(
            uow, ctx.listings, ctx.settings.timezone, user_id=command.user_id,
            lines=command.lines(), coupon_code=command.coupon_code, now=ctx.clock.now(),
            in_one_call=in_one_call, card=card)
        return 201, order_body(view, ctx)

    return await idempotency.run(
        ctx.db, user_id=caller.user_id, key=key, operation="orders.place",
        payload=command.model_dump() if key is not None else None, path=PLACE_PATH,
        work=work, one_write=in_one_call and card is None)


async def confirm_payment(ctx: AppContext, caller: Principal, order_id: int,
                          command: ConfirmIn) -> tuple[int, Any]:
    """Pay a card order's card part with what the gateway's checkout returned: 200 PAID,
    202 PAYMENT_UNKNOWN, or the refusal (orders/card.py)."""
    status, view = await card_payment.confirm(ctx, caller, order_id, command.payment_key,
                                              command.amount)
    return status, order_body(view, ctx)


async def quote(ctx: AppContext, caller: Principal, command: OrderIn) -> tuple[int, Any]:
    """What the order would cost now, by the order's own rules; nothing is held."""
    ensure_self_or_admin(caller, command.user_id)
    async with ctx.db.uow(write=False) as uow:
        view = await service.quote_order(uow, user_id=command.user_id, lines=command.lines(),
                                         coupon_code=command.coupon_code, now=ctx.clock.now())
    return 200, QuoteOut(**view).model_dump(mode="json", by_alias=True)


async def cancel(ctx: AppContext, caller: Principal, order_id: int, key: str | None
                 ) -> tuple[int, Any]:
    """Cancel a paid order (the caller's own, or any for an admin), at most once per key:
    the refund, the stock and the coupon back, `order.cancelled` recorded. A card order
    is CANCEL_PENDING until the gateway refunds its card part, asked right after (and by
    the job until it answers): 200 CANCELLED, or 202 CANCEL_PENDING. A repeat of the key
    answers as the order stands then."""
    async def work(uow: UnitOfWork) -> tuple[int, Any]:
        view = await service.cancel_order(
            uow, ctx.listings, ctx.settings.timezone, order_id=order_id,
            user_id=caller.user_id, is_admin=caller.is_admin, now=ctx.clock.now())
        return (202 if view["status"] == "CANCEL_PENDING" else 200), order_body(view, ctx)

    status, body = await idempotency.run(
        ctx.db, user_id=caller.user_id, key=key, operation="orders.cancel",
        payload={"orderId": order_id}, path=f"/api/orders/{order_id}/cancel", work=work)
    if status == 202:
        await card_payment.finish_cancel(ctx, order_id)
        status, view = await card_payment.answer(ctx, order_id)
        return status, order_body(view, ctx)
    return status, body


async def order(ctx: AppContext, caller: Principal, order_id: int) -> OrderOut:
    """An order with its items; another customer's order does not exist for the caller."""
    async with ctx.db.uow(write=False) as uow:
        view = await service.get_order(uow, order_id, user_id=caller.user_id,
                                       is_admin=caller.is_admin)
    return _out(view, ctx)


async def orders_of(ctx: AppContext, caller: Principal, user_id: int, page: Page
                    ) -> tuple[list[OrderOut], int]:
    ensure_self_or_admin(caller, user_id)
    return await _search(ctx, user_id, None, page)


async def all_orders(ctx: AppContext, caller: Principal, user_id: int | None, status: str | None,
                     page: Page) -> tuple[list[OrderOut], int]:
    require_admin(caller)
    return await _search(ctx, user_id, status, page)


async def _search(ctx: AppContext, user_id: int | None, status: str | None, page: Page
                  ) -> tuple[list[OrderOut], int]:
    async with ctx.db.uow(write=False) as uow:
        views, total = await service.search(uow, user_id=user_id, status=status,
                                            limit=page.size, offset=page.offset)
    return [_out(view, ctx) for view in views], total


async def daily_sales(ctx: AppContext, caller: Principal, days: int) -> list[DailySalesOut]:
    require_admin(caller)
    async with ctx.db.uow(write=False) as uow:
        rows = await service.daily_sales(uow, days=days, now=ctx.clock.now(),
                                         zone=ctx.settings.timezone)
    return [DailySalesOut(**row) for row in rows]
