from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ecommerce.accounts.dependencies import AdminUser
from ecommerce.catalog import service
from ecommerce.catalog.errors import CategoryExists, CategoryNotFound, OutOfStock, ProductNotFound
from ecommerce.catalog.schemas import (
    AdminProductOut,
    CategoryIn,
    CategoryOut,
    CategoryWithCountOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductSummaryOut,
    Sort,
    StockChangeIn,
    TopProductOut,
)
from ecommerce.platform.deps import Ctx, ReadUow, Uow
from ecommerce.platform.errors import Forbidden, InvalidRequest, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import MAX_ID

router = APIRouter(tags=["catalog"])
admin = APIRouter(prefix="/api/admin", tags=["admin: catalog"])
ProductId = Annotated[int, Path(alias="id", ge=1, le=MAX_ID)]
_ADMIN = (Unauthorized, Forbidden)
NO_NUL = r"^[^\x00]*$"  # every database then answers alike (PostgreSQL cannot take NUL)


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
async def list_products(
    ctx: Ctx, uow: ReadUow, page: PageParams,
    category: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    keyword: Annotated[str | None, Query(min_length=1, max_length=100,
                                         pattern=NO_NUL)] = None,
    min_price: Annotated[int | None, Query(alias="minPrice", ge=0, le=100_000_000)] = None,
    max_price: Annotated[int | None, Query(alias="maxPrice", ge=0, le=100_000_000)] = None,
    in_stock: Annotated[bool | None, Query(alias="inStock")] = None,
    sort: Sort = "newest",
) -> Response:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidRequest("minPrice (query): must not be greater than maxPrice")
    async with uow:
        rows, total = await service.list_products(
            uow, ctx.listings, category=category, keyword=keyword, min_price=min_price,
            max_price=max_price, in_stock=in_stock, sort=sort, limit=page.size,
            offset=page.offset)
    # Rendered straight from the rows, without 20 models built and then validated again
    # (the response_model documents the body; the API tests pin its fields).
    return JsonResponse([{"id": row.id, "name": row.name, "price": row.price,
                          "stock": row.stock, "category": row.category,
                          "description": row.description} for row in rows],
                        headers={"X-Total-Count": str(total)})


@router.get("/api/products/top", response_model=list[TopProductOut], responses=responses())
async def top_products(ctx: Ctx, days: Annotated[int, Query(ge=1, le=30)] = 3,
                       limit: Annotated[int, Query(ge=1, le=50)] = 5) -> Response:
    top = await ctx.top_sellers.top_products(ctx.clock.now(), days, limit)
    return JsonResponse([{"rank": rank, "productId": row.id, "name": row.name,
                          "price": row.price, "stock": row.stock, "soldQuantity": sold}
                         for rank, (row, sold) in enumerate(top, start=1)])


@router.get("/api/products/{id}", response_model=ProductOut,
            responses=responses(ProductNotFound))
async def get_product(product_id: ProductId, uow: ReadUow) -> ProductOut:
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
async def admin_get_product(product_id: ProductId, _: AdminUser, uow: ReadUow
                            ) -> AdminProductOut:
    async with uow:
        return _product(await service.get_product(uow, product_id, include_inactive=True),
                        AdminProductOut)


@admin.patch("/products/{id}", response_model=AdminProductOut,
             responses=responses(*_ADMIN, ProductNotFound, CategoryNotFound))
async def update_product(product_id: ProductId, body: ProductPatch, _: AdminUser, ctx: Ctx,
                         uow: Uow) -> AdminProductOut:
    async with uow:
        row = await service.update_product(uow, ctx.listings, product_id,
                                           body.model_dump(exclude_unset=True), ctx.clock.now())
    return _product(row, AdminProductOut)


@admin.post("/products/{id}/stock", response_model=AdminProductOut,
            responses=responses(*_ADMIN, ProductNotFound, OutOfStock))
async def change_stock(product_id: ProductId, body: StockChangeIn, _: AdminUser, ctx: Ctx,
                       uow: Uow) -> AdminProductOut:
    async with uow:
        row = await service.adjust_stock(uow, ctx.listings, product_id, body.delta,
                                         ctx.clock.now())
    return _product(row, AdminProductOut)
