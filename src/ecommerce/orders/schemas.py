from datetime import date
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ecommerce.platform.schemas import (
    ApiModel,
    ApiRequest,
    Id,
    UtcTime,
    document_request,
)

MAX_QUANTITY = 1_000
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
OrderStatus = Literal["PAID", "CANCELLED", "PAYMENT_PENDING", "PAYMENT_UNKNOWN",
                      "PAYMENT_FAILED", "EXPIRED", "CANCEL_PENDING"]
PaymentMethod = Literal["BALANCE", "CARD"]
Won = Annotated[int, Field(ge=0, le=10**12)]


class LineIn(ApiRequest):
    product_id: Id
    quantity: Quantity


_NULL = {"type": "null"}


def _one_form(schema: dict[str, Any]) -> None:
    """`items`, or `productId` and `quantity`: the other form left out or null."""
    document_request(schema)
    schema["oneOf"] = [
        {"required": ["items"], "properties": {
            "items": {"type": "array"}, "productId": _NULL, "quantity": _NULL}},
        {"required": ["productId", "quantity"], "properties": {
            "items": _NULL, "productId": {"type": "integer"},
            "quantity": {"type": "integer"}}},
    ]


class OrderIn(ApiRequest):
    """`items` (1..50 lines), or the original draft's single `productId` + `quantity`."""

    model_config = ConfigDict(json_schema_extra=_one_form)

    user_id: Id
    items: Annotated[list[LineIn], Field(min_length=1, max_length=50)] | None = None
    product_id: Id | None = None
    quantity: Quantity | None = None
    coupon_code: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    payment_method: PaymentMethod = Field(
        default="BALANCE", description="BALANCE: paid from the balance now. CARD: "
        "`balanceAmount` from the balance and the rest by card (the order is "
        "PAYMENT_PENDING until `POST /api/orders/{orderId}/payment/confirm`)")
    balance_amount: Won | None = Field(
        default=None, description="CARD only: the part paid from the balance "
        "(0..paidAmount, default 0)")

    @model_validator(mode="after")
    def _one_form(self) -> "OrderIn":
        if self.balance_amount is not None and self.payment_method != "CARD":
            raise ValueError("balanceAmount: only with paymentMethod CARD")
        single = self.product_id is not None or self.quantity is not None
        if self.items is not None and single:
            raise ValueError("items: give either items or productId and quantity, not both")
        if self.items is None:
            if self.product_id is None or self.quantity is None:
                raise ValueError("items: required (or productId and quantity)")
        for product_id, quantity in self.lines():
            if quantity > MAX_QUANTITY:
                raise ValueError(f"items: product {product_id} is ordered {quantity} times in "
                                 f"all; at most {MAX_QUANTITY:,} of one product per order")
        return self

    def lines(self) -> list[tuple[int, int]]:
        """(product_id, quantity) with repeated products merged, in product id order."""
        merged: dict[int, int] = {}
        if self.items is None:
            assert self.product_id is not None and self.quantity is not None
            merged[self.product_id] = self.quantity
        else:
            for line in self.items:
                merged[line.product_id] = merged.get(line.product_id, 0) + line.quantity
        return sorted(merged.items())


class ItemOut(ApiModel):
    product_id: int
    name: str
    unit_price: int
    quantity: int
    line_total: int


class QuoteOut(ApiModel):
    """What an order would cost now (`POST /api/orders/quote`); nothing is held."""

    items: list[ItemOut]
    total_price: int
    discount_amount: int
    paid_amount: int
    coupon_code: str | None
    balance: int


class OrderPaymentOut(ApiModel):
    """A card order's payment: what the gateway's checkout needs (`pgOrderId` is the
    order id the gateway knows, `amount` the card part) and how far it got."""

    pg_order_id: str
    amount: int
    client_key: str | None
    expires_at: UtcTime
    status: str
    payment_key: str | None
    checkout_url: str | None = None


class OrderOut(ApiModel):
    order_id: int
    user_id: int
    status: OrderStatus
    items: list[ItemOut]
    total_price: int
    discount_amount: int
    paid_amount: int
    coupon_code: str | None
    created_at: UtcTime
    paid_at: UtcTime | None = None
    cancelled_at: UtcTime | None = None
    payment_method: PaymentMethod = "BALANCE"
    balance_amount: int
    card_amount: int = 0
    payment: OrderPaymentOut | None = None


class AdminOrderOut(OrderOut):
    """An order in the admin's list: who bought it, by name."""

    username: str


class DailySalesOut(ApiModel):
    day: date
    orders: int
    revenue: int
