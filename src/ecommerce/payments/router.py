from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.payments.schemas import PaymentOut, WebhookIn
from ecommerce.payments.usecases import Payments
from ecommerce.platform.errors import Forbidden, ServerBusy, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.services import provided

router = APIRouter(tags=["payments"])
admin = APIRouter(prefix="/api/admin/payments", tags=["admin: payments"])
PaymentsDep = Annotated[Payments, provided(Payments)]
PaymentStatus = Literal["READY", "CONFIRMING", "DONE", "FAILED", "EXPIRED", "VOIDED",
                        "CANCEL_PENDING", "CANCELLED"]


@router.post("/api/payments/webhook", responses=responses(ServerBusy))
async def webhook(body: WebhookIn, payments: PaymentsDep) -> JsonResponse:
    """The gateway's status-change notice (no token: the gateway sends it). Its body is
    never trusted: only the order id it names is read, and that payment is read back from
    the gateway and settled by what the gateway says. 200 once read, so the gateway does
    not resend it (an id that is not ours is ignored); 503 while this process is reading
    back as many notices as it allows at once (the gateway sends it again later)."""
    data = body.data or {}
    named = data.get("orderId") if isinstance(data.get("orderId"), str) else body.order_id
    await payments.webhook(named if isinstance(named, str) and len(named) <= 64 else None)
    return JsonResponse({"received": True})


@admin.get("", response_model=list[PaymentOut], responses=responses(Unauthorized, Forbidden))
async def admin_payments(caller: CurrentUser, payments: PaymentsDep, page: PageParams,
                         response: Response,
                         status: Annotated[PaymentStatus | None, Query()] = None,
                         kind: Annotated[Literal["ORDER", "CHARGE"] | None, Query()] = None
                         ) -> list[PaymentOut]:
    """Card payments, newest first: of orders and of balance charges, each with any
    approval the gateway holds for it under a key the shop never confirmed (refunded)."""
    views, total = await payments.admin_payments(caller, status, kind, page)
    set_total(response, total)
    return [PaymentOut(**view) for view in views]
