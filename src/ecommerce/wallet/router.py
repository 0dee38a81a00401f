
from fastapi import APIRouter, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.context import Ctx
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
from ecommerce.platform.schemas import UserIdPath
from ecommerce.wallet import usecases
from ecommerce.wallet.errors import BalanceLimitExceeded
from ecommerce.wallet.schemas import BalanceOut, LedgerEntryOut, RechargeIn, RechargeOut

router = APIRouter(prefix="/api/balance", tags=["balance"])
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


@router.get("/{userId}/history", response_model=list[LedgerEntryOut],
            responses=responses(*_PRIVATE))
async def history(user_id: UserIdPath, principal: CurrentUser, ctx: Ctx, page: PageParams,
                  response: Response) -> list[LedgerEntryOut]:
    views, total = await usecases.history(ctx, principal, user_id, page)
    set_total(response, total)
    return views
