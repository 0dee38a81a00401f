from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.catalog import usecases
from ecommerce.catalog.errors import (
    CategoryExists,
    CategoryNotFound,
    OutOfStock,
    ProductNotFound,
    StockLimitExceeded,
)
from ecommerce.catalog.schemas import (
    AdminProductOut,
    CategoryIn,
    CategoryOut,
    CategoryWithCountOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductQuery,
    ProductSummaryOut,
    StockChangeIn,
    TopProductOut,
    TopQuery,
)
from ecommerce.context import Ctx
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import IdPath

router = APIRouter(tags=["catalog"])
admin = APIRouter(prefix="/api/admin", tags=["admin: catalog"])
_ADMIN = (Unauthorized, Forbidden)


@router.get("/api/categories", response_model=list[CategoryWithCountOut],
            responses=responses())
async def list_categories(ctx: Ctx, page: PageParams, response: Response
                          ) -> list[CategoryWithCountOut]:
    views, total = await usecases.categories(ctx, page)
    set_total(response, total)
    return views


@router.get("/api/products", response_model=list[ProductSummaryOut], responses=responses())
async def list_products(ctx: Ctx, query: Annotated[ProductQuery, Query()]) -> Response:
    views, total = await usecases.products(ctx, query)
    return JsonResponse(views, headers={"X-Total-Count": str(total)})


@router.get("/api/products/top", response_model=list[TopProductOut], responses=responses())
async def top_products(ctx: Ctx, query: Annotated[TopQuery, Query()]) -> Response:
    return JsonResponse(await usecases.top_sellers(ctx, query))


@router.get("/api/products/{id}", response_model=ProductOut,
            responses=responses(ProductNotFound))
async def get_product(product_id: IdPath, ctx: Ctx) -> ProductOut:
    return await usecases.product(ctx, product_id)


@admin.post("/categories", status_code=201, response_model=CategoryOut,
            responses=responses(*_ADMIN, CategoryExists))
async def create_category(body: CategoryIn, caller: CurrentUser, ctx: Ctx) -> CategoryOut:
    return await usecases.create_category(ctx, caller, body)


@admin.get("/products", response_model=list[AdminProductOut], responses=responses(*_ADMIN))
async def admin_list_products(caller: CurrentUser, ctx: Ctx, page: PageParams,
                              response: Response) -> list[AdminProductOut]:
    views, total = await usecases.admin_products(ctx, caller, page)
    set_total(response, total)
    return views


@admin.post("/products", status_code=201, response_model=AdminProductOut,
            responses=responses(*_ADMIN, CategoryNotFound))
async def create_product(body: ProductIn, caller: CurrentUser, ctx: Ctx) -> AdminProductOut:
    return await usecases.create_product(ctx, caller, body)


@admin.get("/products/{id}", response_model=AdminProductOut,
           responses=responses(*_ADMIN, ProductNotFound))
async def admin_get_product(product_id: IdPath, caller: CurrentUser, ctx: Ctx
                            ) -> AdminProductOut:
    return await usecases.admin_product(ctx, caller, product_id)


@admin.patch("/products/{id}", response_model=AdminProductOut,
             responses=responses(*_ADMIN, ProductNotFound, CategoryNotFound))
async def update_product(product_id: IdPath, body: ProductPatch, caller: CurrentUser,
                         ctx: Ctx) -> AdminProductOut:
    return await usecases.update_product(ctx, caller, product_id, body)


@admin.post("/products/{id}/stock", response_model=AdminProductOut,
            responses=responses(*_ADMIN, ProductNotFound, OutOfStock, StockLimitExceeded))
async def change_stock(product_id: IdPath, body: StockChangeIn, caller: CurrentUser,
                       ctx: Ctx) -> AdminProductOut:
    return await usecases.change_stock(ctx, caller, product_id, body)
