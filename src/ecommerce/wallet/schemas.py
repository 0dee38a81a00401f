from typing import Annotated, Literal

from pydantic import Field

from ecommerce.platform.schemas import ApiModel, ApiRequest, Id, UtcTime

RechargeAmount = Annotated[int, Field(ge=1, le=10_000_000)]


class RechargeIn(ApiRequest):
    user_id: Id
    amount: RechargeAmount


class BalanceOut(ApiModel):
    user_id: int
    balance: int


class RechargeOut(ApiModel):
    user_id: int
    new_balance: int


class LedgerEntryOut(ApiModel):
    id: int
    type: Literal["RECHARGE", "PAYMENT", "REFUND"]
    amount: int
    balance_after: int
    order_id: int | None
    created_at: UtcTime


class ChargePaymentOut(ApiModel):
    """What the gateway's checkout needs to take the charge's card payment."""

    pg_order_id: str
    amount: int
    client_key: str | None
    expires_at: UtcTime
    checkout_url: str | None = None


class ChargeOut(ApiModel):
    """A top-up by card, waiting for its payment (`POST /api/balance/charges`)."""

    charge_id: int
    user_id: int
    amount: int
    status: Literal["PENDING", "PAYMENT_UNKNOWN", "PAID", "FAILED", "EXPIRED", "REFUNDED"]
    payment: ChargePaymentOut


class PaymentOptionsOut(ApiModel):
    """How this shop can be paid and topped up (`GET /api/payment-options`, public): the
    storefront offers only what works."""

    card_payments: bool  # a card gateway is configured: orders by card, top-ups by card
    direct_top_up: bool  # customers may credit their balance without paying (a demo)
    checkout_url: str | None
