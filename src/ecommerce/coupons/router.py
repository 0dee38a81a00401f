from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
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
from ecommerce.coupons.usecases import Coupons
from ecommerce.platform.errors import Forbidden, RateLimited, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import UserIdPath
from ecommerce.platform.services import provided

router = APIRouter(tags=["coupons"])
admin = APIRouter(prefix="/api/admin/coupons", tags=["admin: coupons"])
_ADMIN = (Unauthorized, Forbidden)
CouponsDep = Annotated[Coupons, provided(Coupons)]


@admin.post("", status_code=201, response_model=CouponOut,
            responses=responses(*_ADMIN, CouponCodeTaken))
async def create_coupon(body: CouponIn, caller: CurrentUser, coupons: CouponsDep) -> CouponOut:
    return await coupons.create(caller, body)


@admin.get("", response_model=list[CouponOut], responses=responses(*_ADMIN))
async def list_coupons(caller: CurrentUser, coupons: CouponsDep, page: PageParams,
                       response: Response) -> list[CouponOut]:
    views, total = await coupons.all_coupons(caller, page)
    set_total(response, total)
    return views


@router.get("/api/coupons", response_model=list[CouponOut],
            responses=responses(Unauthorized))
async def browse_coupons(_: CurrentUser, coupons: CouponsDep, page: PageParams, response: Response,
                         available: Annotated[bool, Query(
                             description="true (default): only coupons that can be claimed "
                                         "now; false: also upcoming and sold-out ones")] = True
                         ) -> list[CouponOut]:
    views, total = await coupons.browse(available, page)
    set_total(response, total)
    return views


@router.get("/api/coupons/{code}", response_model=CouponOut,
            responses=responses(Unauthorized, CouponNotFound))
async def get_coupon(code: Annotated[str, Path(max_length=40)], _: CurrentUser,
                     coupons: CouponsDep) -> CouponOut:
    return await coupons.coupon(code)


@router.post("/api/coupons/claim", response_model=ClaimOut,
             responses=responses(Unauthorized, Forbidden, CouponNotFound, CouponSoldOut,
                                 CouponAlreadyClaimed, CouponNotActive, RateLimited,
                                 UserNotFound))
async def claim(body: ClaimIn, principal: CurrentUser, coupons: CouponsDep) -> JsonResponse:
    status, payload = await coupons.claim(principal, body)
    return JsonResponse(payload, status_code=status)


@router.get("/api/users/{userId}/coupons", response_model=list[HeldCouponOut],
            responses=responses(Unauthorized, Forbidden))
async def held_coupons(user_id: UserIdPath, caller: CurrentUser, coupons: CouponsDep,
                       page: PageParams, response: Response,
                       status: Annotated[HeldStatus | None, Query()] = None
                       ) -> list[HeldCouponOut]:
    views, total = await coupons.held(caller, user_id, status, page)
    set_total(response, total)
    return views
