
from typing import Annotated

from fastapi import APIRouter, Path, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.context import Ctx
from ecommerce.payments.errors import (
    ChargeNotFound,
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
from ecommerce.platform.schemas import MAX_ID, IntText, UserIdPath
from ecommerce.wallet import charges, usecases
from ecommerce.wallet.errors import BalanceLimitExceeded
from ecommerce.wallet.schemas import (
    BalanceOut,
    ChargeOut,
    LedgerEntryOut,
    RechargeIn,
    RechargeOut,
)

router = APIRouter(prefix="/api/balance", tags=["balance"])
ChargeIdPath = Annotated[int, Path(alias="chargeId", ge=1, le=MAX_ID), IntText]
_PRIVATE = (Unauthorized, Forbidden, UserNotFound)


@router.get("/{userId}", response_model=BalanceOut, responses=responses(*_PRIVATE))
async def get_balance(user_id: UserIdPath, principal: CurrentUser, ctx: Ctx) -> BalanceOut:
    return await usecases.balance(ctx, principal, user_id)


@router.post("/recharge", response_model=RechargeOut,
             responses=responses(*_PRIVATE, BalanceLimitExceeded, IdempotencyKeyReused,
                                 IdempotencyKeyInProgress))
async def recharge(body: RechargeIn, principal: CurrentUser, ctx: Ctx,
                   key: IdempotencyKey = None) -> JsonResponse:
    status, payload = await usecases.recharge(ctx, principal, body, key)
    return JsonResponse(payload, status_code=status)


@router.post("/charges", status_code=201, response_model=ChargeOut,
             responses=responses(*_PRIVATE, BalanceLimitExceeded, PaymentMethodUnavailable))
async def open_charge(body: RechargeIn, principal: CurrentUser, ctx: Ctx) -> JsonResponse:
    """Top up by card: a PENDING charge, paid at the gateway's checkout (`payment`), then
    confirmed with `POST /api/balance/charges/{chargeId}/confirm`."""
    status, payload = await charges.open_charge(ctx, principal, body)
    return JsonResponse(payload, status_code=status)


@router.post("/charges/{chargeId}/confirm", response_model=RechargeOut,
             responses={**responses(*_PRIVATE, ChargeNotFound, PaymentAmountMismatch,
                                    PaymentDeclined, NotPayable, PaymentMethodUnavailable,
                                    BalanceLimitExceeded),
                        202: {"model": ChargeOut, "description": "PAYMENT_UNKNOWN: the "
                              "gateway did not answer; settled later from a lookup"}})
async def confirm_charge(charge_id: ChargeIdPath, body: ConfirmIn, principal: CurrentUser,
                         ctx: Ctx) -> JsonResponse:
    """Credit the charge once the gateway confirms its card payment (exactly once)."""
    status, payload = await charges.confirm(ctx, principal, charge_id, body.payment_key,
                                            body.amount)
    return JsonResponse(payload, status_code=status)


@router.get("/{userId}/history", response_model=list[LedgerEntryOut],
            responses=responses(*_PRIVATE))
async def history(user_id: UserIdPath, principal: CurrentUser, ctx: Ctx, page: PageParams,
                  response: Response) -> list[LedgerEntryOut]:
    views, total = await usecases.history(ctx, principal, user_id, page)
    set_total(response, total)
    return views
