from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.context import Ctx
from ecommerce.coupons import usecases
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
from ecommerce.platform.errors import Forbidden, RateLimited, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import UserIdPath

router = APIRouter(tags=["coupons"])
admin = APIRouter(prefix="/api/admin/coupons", tags=["admin: coupons"])
_ADMIN = (Unauthorized, Forbidden)


@admin.post("", status_code=201, response_model=CouponOut,
            responses=responses(*_ADMIN, CouponCodeTaken))
async def create_coupon(body: CouponIn, caller: CurrentUser, ctx: Ctx) -> CouponOut:
    return await usecases.create(ctx, caller, body)


@admin.get("", response_model=list[CouponOut], responses=responses(*_ADMIN))
async def list_coupons(caller: CurrentUser, ctx: Ctx, page: PageParams, response: Response
                       ) -> list[CouponOut]:
    views, total = await usecases.all_coupons(ctx, caller, page)
    set_total(response, total)
    return views


@router.get("/api/coupons", response_model=list[CouponOut],
            responses=responses(Unauthorized))
async def browse_coupons(_: CurrentUser, ctx: Ctx, page: PageParams, response: Response,
                         available: Annotated[bool, Query(
                             description="true (default): only coupons that can be claimed "
                                         "now; false: also upcoming and sold-out ones")] = True
                         ) -> list[CouponOut]:
    views, total = await usecases.browse(ctx, available, page)
    set_total(response, total)
    return views


@router.get("/api/coupons/{code}", response_model=CouponOut,
            responses=responses(Unauthorized, CouponNotFound))
async def get_coupon(code: Annotated[str, Path(max_length=40)], _: CurrentUser,
                     ctx: Ctx) -> CouponOut:
    return await usecases.coupon(ctx, code)


@router.post("/api/coupons/claim", response_model=ClaimOut,
             responses=responses(Unauthorized, Forbidden, CouponNotFound, CouponSoldOut,
                                 CouponAlreadyClaimed, CouponNotActive, RateLimited,
                                 UserNotFound))
async def claim(body: ClaimIn, principal: CurrentUser, ctx: Ctx) -> JsonResponse:
    status, payload = await usecases.claim(ctx, principal, body)
    return JsonResponse(payload, status_code=status)


@router.get("/api/users/{userId}/coupons", response_model=list[HeldCouponOut],
            responses=responses(Unauthorized, Forbidden))
async def held_coupons(user_id: UserIdPath, caller: CurrentUser, ctx: Ctx, page: PageParams,
                       response: Response, status: Annotated[HeldStatus | None, Query()] = None
                       ) -> list[HeldCouponOut]:
    views, total = await usecases.held(ctx, caller, user_id, status, page)
    set_total(response, total)
    return views
