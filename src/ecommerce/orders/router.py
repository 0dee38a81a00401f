from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.catalog.errors import OutOfStock, ProductNotFound, StockOnHold
from ecommerce.coupons.errors import CouponNotUsable
from ecommerce.orders.errors import OrderNotCancellable, OrderNotFound, UnpaidOrderTooLarge
from ecommerce.orders.schemas import (
    AdminOrderOut,
    DailySalesOut,
    OrderIn,
    OrderOut,
    OrderStatus,
    QuoteOut,
)
from ecommerce.orders.usecases import Orders
from ecommerce.payments.errors import (
    NotPayable,
    PaymentAmountMismatch,
    PaymentDeclined,
    PaymentMethodUnavailable,
)
from ecommerce.payments.schemas import ConfirmIn
from ecommerce.platform.errors import (
    Forbidden,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    Unauthorized,
    responses,
)
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.idempotency import IdempotencyKey
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import MAX_ID, IntText, OrderIdPath, UserIdPath
from ecommerce.platform.services import provided
from ecommerce.wallet.errors import InsufficientBalance, TooManyUnpaidOrders

router = APIRouter(tags=["orders"])
admin = APIRouter(prefix="/api/admin/orders", tags=["admin: orders"])
sales = APIRouter(tags=["admin: orders"])
_KEYED = (IdempotencyKeyReused, IdempotencyKeyInProgress)
OrdersDep = Annotated[Orders, provided(Orders)]


@router.post("/api/orders", status_code=201, response_model=OrderOut,
             responses=responses(Unauthorized, Forbidden, UserNotFound, ProductNotFound,
                                 OutOfStock, CouponNotUsable, InsufficientBalance,
                                 PaymentMethodUnavailable, StockOnHold, TooManyUnpaidOrders,
                                 UnpaidOrderTooLarge, *_KEYED))
async def place_order(body: OrderIn, principal: CurrentUser, orders: OrdersDep,
                      key: IdempotencyKey = None) -> JsonResponse:
    status, payload = await orders.place(principal, body, key)
    return JsonResponse(payload, status_code=status)


@router.post("/api/orders/quote", response_model=QuoteOut,
             responses=responses(Unauthorized, Forbidden, UserNotFound, ProductNotFound,
                                 OutOfStock, CouponNotUsable))
async def quote_order(body: OrderIn, principal: CurrentUser, orders: OrdersDep) -> JsonResponse:
    status, payload = await orders.quote(principal, body)
    return JsonResponse(payload, status_code=status)


@router.get("/api/orders/{orderId}", response_model=OrderOut,
            responses=responses(Unauthorized, OrderNotFound))
async def get_order(order_id: OrderIdPath, principal: CurrentUser, orders: OrdersDep) -> OrderOut:
    return await orders.order(principal, order_id)


@router.post("/api/orders/{orderId}/cancel", response_model=OrderOut,
             responses={**responses(Unauthorized, OrderNotFound, OrderNotCancellable, *_KEYED),
                        202: {"model": OrderOut, "description": "CANCEL_PENDING: a card "
                              "order whose refund the gateway has not confirmed yet"}})
async def cancel_order(order_id: OrderIdPath, principal: CurrentUser, orders: OrdersDep,
                       key: IdempotencyKey = None) -> JsonResponse:
    status, payload = await orders.cancel(principal, order_id, key)
    return JsonResponse(payload, status_code=status)


@router.post("/api/orders/{orderId}/payment/confirm", response_model=OrderOut,
             responses={**responses(Unauthorized, OrderNotFound, PaymentAmountMismatch,
                                    PaymentDeclined, NotPayable, PaymentMethodUnavailable),
                        202: {"model": OrderOut, "description": "PAYMENT_UNKNOWN: the "
                              "gateway did not answer; settled later from a lookup"}})
async def confirm_payment(order_id: OrderIdPath, body: ConfirmIn, principal: CurrentUser,
                          orders: OrdersDep) -> JsonResponse:
    """Pay a card order's card part with what the gateway's checkout handed to the
    success URL (`paymentKey`, `amount`)."""
    status, payload = await orders.confirm_payment(principal, order_id, body)
    return JsonResponse(payload, status_code=status)


@router.get("/api/users/{userId}/orders", response_model=list[OrderOut],
            responses=responses(Unauthorized, Forbidden))
async def user_orders(user_id: UserIdPath, principal: CurrentUser, orders: OrdersDep,
                      page: PageParams, response: Response) -> list[OrderOut]:
    views, total = await orders.orders_of(principal, user_id, page)
    set_total(response, total)
    return views


@admin.get("", response_model=list[AdminOrderOut],
           responses=responses(Unauthorized, Forbidden))
async def admin_orders(caller: CurrentUser, orders: OrdersDep, page: PageParams, response: Response,
                       status: Annotated[OrderStatus | None, Query()] = None,
                       user_id: Annotated[int | None, Query(alias="userId", ge=1,
                                                            le=MAX_ID), IntText] = None
                       ) -> list[AdminOrderOut]:
    views, total = await orders.all_orders(caller, user_id, status, page)
    set_total(response, total)
    return views


@sales.get("/api/admin/sales", response_model=list[DailySalesOut],
           responses=responses(Unauthorized, Forbidden))
async def daily_sales(caller: CurrentUser, orders: OrdersDep,
                      days: Annotated[int, Query(ge=1, le=366), IntText] = 30
                      ) -> list[DailySalesOut]:
    return await orders.daily_sales(caller, days)
