from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ecommerce.accounts.dependencies import AdminUser, CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.context import Ctx
from ecommerce.coupons import service, usecases
from ecommerce.coupons.errors import (
    CouponAlreadyClaimed,
    CouponCodeTaken,
    CouponNotActive,
    CouponNotFound,
    CouponSoldOut,
)
from ecommerce.coupons.schemas import (
    ClaimIn,
    ClaimOut,
    CouponIn,
    CouponOut,
    HeldCouponOut,
    HeldStatus,
)
from ecommerce.platform.deps import ReadUow, Uow
from ecommerce.platform.errors import Forbidden, RateLimited, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.principal import ensure_self_or_admin
from ecommerce.platform.schemas import UserIdPath

router = APIRouter(tags=["coupons"])
admin = APIRouter(prefix="/api/admin/coupons", tags=["admin: coupons"])
_ADMIN = (Unauthorized, Forbidden)


def _coupon(row: Any) -> CouponOut:
    return CouponOut(**{**row._mapping,
                        "remaining_quantity": row.total_quantity - row.issued_quantity})


@admin.post("", status_code=201, response_model=CouponOut,
            responses=responses(*_ADMIN, CouponCodeTaken))
async def create_coupon(body: CouponIn, _: AdminUser, ctx: Ctx, uow: Uow) -> CouponOut:
    async with uow:
        row = await service.create_coupon(uow, body.model_dump(), ctx.clock.now())
    return _coupon(row)


@admin.get("", response_model=list[CouponOut], responses=responses(*_ADMIN))
async def list_coupons(_: AdminUser, uow: ReadUow, page: PageParams, response: Response
                       ) -> list[CouponOut]:
    async with uow:
        rows, total = await service.list_coupons(uow, page.size, page.offset)
    set_total(response, total)
    return [_coupon(row) for row in rows]


@router.get("/api/coupons", response_model=list[CouponOut],
            responses=responses(Unauthorized))
async def browse_coupons(_: CurrentUser, ctx: Ctx, uow: ReadUow, page: PageParams,
                         response: Response,
                         available: Annotated[bool, Query(
                             description="true (default): only coupons that can be claimed "
                                         "now; false: also upcoming and sold-out ones")] = True
                         ) -> list[CouponOut]:
    async with uow:
        rows, total = await service.browse(uow, available=available, now=ctx.clock.now(),
                                           limit=page.size, offset=page.offset)
    set_total(response, total)
    return [_coupon(row) for row in rows]


@router.get("/api/coupons/{code}", response_model=CouponOut,
            responses=responses(Unauthorized, CouponNotFound))
async def get_coupon(code: Annotated[str, Path(max_length=40)], _: CurrentUser,
                     uow: ReadUow) -> CouponOut:
    async with uow:
        return _coupon(await service.get_coupon(uow, code))


@router.post("/api/coupons/claim", response_model=ClaimOut,
             responses=responses(Unauthorized, Forbidden, CouponNotFound, CouponSoldOut,
                                 CouponAlreadyClaimed, CouponNotActive, RateLimited,
                                 UserNotFound))
async def claim(body: ClaimIn, principal: CurrentUser, ctx: Ctx) -> JsonResponse:
    status, payload = await usecases.claim(ctx, principal, body)
    return JsonResponse(payload, status_code=status)


@router.get("/api/users/{userId}/coupons", response_model=list[HeldCouponOut],
            responses=responses(Unauthorized, Forbidden))
async def held_coupons(user_id: UserIdPath,
                       principal: CurrentUser, ctx: Ctx, uow: ReadUow, page: PageParams,
                       response: Response, status: Annotated[HeldStatus | None, Query()] = None
                       ) -> list[HeldCouponOut]:
    ensure_self_or_admin(principal, user_id)
    async with uow:
        views, total = await service.held_coupons(uow, user_id, status, ctx.clock.now(),
                                                  page.size, page.offset)
    set_total(response, total)
    return [HeldCouponOut(**view) for view in views]
