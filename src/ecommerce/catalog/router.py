from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import AdminUser
from ecommerce.catalog import service
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
from ecommerce.platform.deps import ReadUow, Uow
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import Page, PageParams, set_total
from ecommerce.platform.schemas import IdPath

router = APIRouter(tags=["catalog"])
admin = APIRouter(prefix="/api/admin", tags=["admin: catalog"])
_ADMIN = (Unauthorized, Forbidden)


def _product(row: Any, model: type = ProductOut) -> Any:
    return model.model_validate(row._mapping)


@router.get("/api/categories", response_model=list[CategoryWithCountOut],
            responses=responses())
async def list_categories(uow: ReadUow, page: PageParams, response: Response
                          ) -> list[CategoryWithCountOut]:
    async with uow:
        rows, total = await service.list_categories(uow, page.size, page.offset)
    set_total(response, total)
    return [CategoryWithCountOut.model_validate(row._mapping) for row in rows]


@router.get("/api/products", response_model=list[ProductSummaryOut], responses=responses())
async def list_products(ctx: Ctx, uow: ReadUow, query: Annotated[ProductQuery, Query()]
                        ) -> Response:
    async with uow:
        rows, total = await listed(uow, ctx, query)
    return JsonResponse(summaries(rows), headers={"X-Total-Count": str(total)})


@router.get("/api/products/top", response_model=list[TopProductOut], responses=responses())
async def top_products(ctx: Ctx, query: Annotated[TopQuery, Query()]) -> Response:
    return JsonResponse(await top_sellers(ctx, query))


async def listed(uow: Any, ctx: Any, query: ProductQuery) -> tuple[list[Any], int]:
    page = Page(query.page, query.size)
    return await service.list_products(
        uow, ctx.listings, category=query.category, keyword=query.keyword,
        min_price=query.min_price, max_price=query.max_price, in_stock=query.in_stock,
        sort=query.sort, limit=page.size, offset=page.offset)


# The list and the top sellers are rendered straight from the rows, without models built
# and then validated again (the response_model documents the body; the API tests pin its
# fields). The lean paths (catalog/fastpath.py) answer with the same functions.

def summaries(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"id": row.id, "name": row.name, "price": row.price, "stock": row.stock,
             "category": row.category, "description": row.description} for row in rows]


async def top_sellers(ctx: Any, query: TopQuery) -> list[dict[str, Any]]:
    top = await ctx.top_sellers.top_products(ctx.clock.now(), query.days, query.limit)
    return [{"rank": rank, "productId": row.id, "name": row.name, "price": row.price,
             "stock": row.stock, "soldQuantity": sold}
            for rank, (row, sold) in enumerate(top, start=1)]


@router.get("/api/products/{id}", response_model=ProductOut,
            responses=responses(ProductNotFound))
async def get_product(product_id: IdPath, uow: ReadUow) -> ProductOut:
    async with uow:
        return _product(await service.get_product(uow, product_id))


@admin.post("/categories", status_code=201, response_model=CategoryOut,
            responses=responses(*_ADMIN, CategoryExists))
async def create_category(body: CategoryIn, _: AdminUser, ctx: Ctx, uow: Uow) -> CategoryOut:
    async with uow:
        category_id = await service.create_category(uow, body.slug, body.name, ctx.clock.now())
    return CategoryOut(id=category_id, slug=body.slug, name=body.name)


@admin.get("/products", response_model=list[AdminProductOut], responses=responses(*_ADMIN))
async def admin_list_products(_: AdminUser, uow: ReadUow, page: PageParams, response: Response
                              ) -> list[AdminProductOut]:
    async with uow:
        rows, total = await service.admin_products(uow, page.size, page.offset)
    set_total(response, total)
    return [_product(row, AdminProductOut) for row in rows]


@admin.post("/products", status_code=201, response_model=AdminProductOut,
            responses=responses(*_ADMIN, CategoryNotFound))
async def create_product(body: ProductIn, _: AdminUser, ctx: Ctx, uow: Uow) -> AdminProductOut:
    async with uow:
        row = await service.create_product(uow, ctx.listings, **body.model_dump(),
                                           now=ctx.clock.now())
    return _product(row, AdminProductOut)


@admin.get("/products/{id}", response_model=AdminProductOut,
           responses=responses(*_ADMIN, ProductNotFound))
async def admin_get_product(product_id: IdPath, _: AdminUser, uow: ReadUow
                            ) -> AdminProductOut:
    async with uow:
        return _product(await service.get_product(uow, product_id, include_inactive=True),
                        AdminProductOut)


@admin.patch("/products/{id}", response_model=AdminProductOut,
             responses=responses(*_ADMIN, ProductNotFound, CategoryNotFound))
async def update_product(product_id: IdPath, body: ProductPatch, _: AdminUser, ctx: Ctx,
                         uow: Uow) -> AdminProductOut:
    async with uow:
        row = await service.update_product(uow, ctx.listings, product_id,
                                           body.model_dump(exclude_unset=True), ctx.clock.now())
    return _product(row, AdminProductOut)


@admin.post("/products/{id}/stock", response_model=AdminProductOut,
            responses=responses(*_ADMIN, ProductNotFound, OutOfStock, StockLimitExceeded))
async def change_stock(product_id: IdPath, body: StockChangeIn, _: AdminUser, ctx: Ctx,
                       uow: Uow) -> AdminProductOut:
    async with uow:
        row = await service.adjust_stock(uow, ctx.listings, product_id, body.delta,
                                         ctx.clock.now())
    return _product(row, AdminProductOut)
