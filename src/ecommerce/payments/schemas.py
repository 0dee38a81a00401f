from typing import Annotated, Literal

from pydantic import Field

from ecommerce.platform.schemas import ApiModel, ApiRequest, UtcTime


class ConfirmIn(ApiRequest):
    """What the gateway's checkout handed to the success URL."""

    payment_key: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
    amount: Annotated[int, Field(ge=1, le=10**12)]


class StrayApprovalOut(ApiModel):
    """An approval the gateway holds under a key the shop never confirmed: refunded."""

    payment_key: str
    amount: int
    status: Literal["REFUNDING", "REFUNDED"]
    found_at: UtcTime
    refunded_at: UtcTime | None


class PaymentOut(ApiModel):
    """A card payment as the shop keeps it (`GET /api/admin/payments`)."""

    payment_id: int
    kind: Literal["ORDER", "CHARGE"]
    user_id: int
    order_id: int | None
    charge_id: int | None
    pg_order_id: str
    payment_key: str | None
    amount: int
    status: Literal["READY", "CONFIRMING", "DONE", "FAILED", "EXPIRED", "VOIDED",
                    "CANCEL_PENDING", "CANCELLED"]
    failure_code: str | None
    created_at: UtcTime
    expires_at: UtcTime
    approved_at: UtcTime | None
    cancelled_at: UtcTime | None
    stray_approvals: list[StrayApprovalOut] = []


class WebhookIn(ApiRequest):
    """The gateway's notice of a status change. Only which payment it names is read (the
    order id we gave the gateway); what happened is read back from the gateway."""

    event_type: str | None = None
    data: dict[str, object] | None = None
    order_id: str | None = None
