from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.context import Ctx
from ecommerce.payments import service as payments
from ecommerce.payments.schemas import PaymentOut, WebhookIn
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.principal import require_admin
from ecommerce.settlement import jobs

router = APIRouter(tags=["payments"])
admin = APIRouter(prefix="/api/admin/payments", tags=["admin: payments"])
PaymentStatus = Literal["READY", "CONFIRMING", "DONE", "FAILED", "EXPIRED", "CANCEL_PENDING",
                        "CANCELLED"]


@router.post("/api/payments/webhook", responses=responses())
async def webhook(body: WebhookIn, ctx: Ctx) -> JsonResponse:
    """The gateway's status-change notice (no token: the gateway sends it). Its body is
    never trusted: only the order id it names is read, and that payment is read back from
    the gateway and settled by what the gateway says. Always 200 once read, so the
    gateway does not resend it; an id that is not ours is ignored."""
    data = body.data or {}
    named = data.get("orderId") if isinstance(data.get("orderId"), str) else body.order_id
    await jobs.webhook(ctx, named if isinstance(named, str) and len(named) <= 64 else None)
    return JsonResponse({"received": True})


@admin.get("", response_model=list[PaymentOut], responses=responses(Unauthorized, Forbidden))
async def admin_payments(caller: CurrentUser, ctx: Ctx, page: PageParams, response: Response,
                         status: Annotated[PaymentStatus | None, Query()] = None,
                         kind: Annotated[Literal["ORDER", "CHARGE"] | None, Query()] = None
                         ) -> list[PaymentOut]:
    """Card payments, newest first: of orders and of balance charges."""
    require_admin(caller)
    async with ctx.db.uow(write=False) as uow:
        views, total = await payments.search(uow, status=status, kind=kind, limit=page.size,
                                             offset=page.offset)
    set_total(response, total)
    return [PaymentOut(**view) for view in views]
