
from fastapi import APIRouter, Request, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.context import Ctx
from ecommerce.platform import idempotency
from ecommerce.platform.deps import ReadUow
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
from ecommerce.platform.principal import ensure_self_or_admin
from ecommerce.platform.schemas import UserIdPath
from ecommerce.wallet import service
from ecommerce.wallet.errors import BalanceLimitExceeded
from ecommerce.wallet.schemas import BalanceOut, LedgerEntryOut, RechargeIn, RechargeOut

router = APIRouter(prefix="/api/balance", tags=["balance"])
_PRIVATE = (Unauthorized, Forbidden, UserNotFound)


@router.get("/{userId}", response_model=BalanceOut, responses=responses(*_PRIVATE))
async def get_balance(user_id: UserIdPath,
                      principal: CurrentUser, uow: ReadUow) -> BalanceOut:
    ensure_self_or_admin(principal, user_id)
    async with uow:
        balance = await service.balance_of(uow, user_id)
    return BalanceOut(user_id=user_id, balance=balance)


@router.post("/recharge", response_model=RechargeOut,
             responses=responses(*_PRIVATE, BalanceLimitExceeded, IdempotencyKeyReused,
                                 IdempotencyKeyInProgress))
async def recharge(body: RechargeIn, request: Request, principal: CurrentUser, ctx: Ctx,
                   key: IdempotencyKey = None) -> JsonResponse:
    ensure_self_or_admin(principal, body.user_id)

    async def work(uow):  # type: ignore[no-untyped-def]
        new_balance = await service.recharge(uow, body.user_id, body.amount, ctx.clock.now())
        return 200, RechargeOut(user_id=body.user_id, new_balance=new_balance).model_dump(
            by_alias=True)

    status, payload = await idempotency.run(
        ctx.db, user_id=principal.user_id, key=key, operation="balance.recharge",
        payload=body.model_dump(), path=request.url.path, work=work)
    return JsonResponse(payload, status_code=status)


@router.get("/{userId}/history", response_model=list[LedgerEntryOut],
            responses=responses(*_PRIVATE))
async def history(user_id: UserIdPath,
                  principal: CurrentUser, uow: ReadUow, page: PageParams,
                  response: Response) -> list[LedgerEntryOut]:
    ensure_self_or_admin(principal, user_id)
    async with uow:
        rows, total = await service.history(uow, user_id, page.size, page.offset)
    set_total(response, total)
    return [LedgerEntryOut.model_validate(row._mapping) for row in rows]
