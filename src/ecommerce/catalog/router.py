from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
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
)
from ecommerce.catalog.usecases import Catalog
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import IdPath
from ecommerce.platform.services import provided

router = APIRouter(tags=["catalog"])
admin = APIRouter(prefix="/api/admin", tags=["admin: catalog"])
_ADMIN = (Unauthorized, Forbidden)
CatalogDep = Annotated[Catalog, provided(Catalog)]


@router.get("/api/categories", response_model=list[CategoryWithCountOut],
            responses=responses())
async def list_categories(catalog: CatalogDep, page: PageParams, response: Response
                          ) -> list[CategoryWithCountOut]:
    views, total = await catalog.categories(page)
    set_total(response, total)
    return views


@router.get("/api/products", response_model=list[ProductSummaryOut], responses=responses())
async def list_products(catalog: CatalogDep, query: Annotated[ProductQuery, Query()]) -> Response:
    views, total = await catalog.products(query)
    return JsonResponse(views, headers={"X-Total-Count": str(total)})


@router.get("/api/products/{id}", response_model=ProductOut,
            responses=responses(ProductNotFound))
async def get_product(product_id: IdPath, catalog: CatalogDep) -> ProductOut:
    return await catalog.product(product_id)


@admin.post("/categories", status_code=201, response_model=CategoryOut,
            responses=responses(*_ADMIN, CategoryExists))
async def create_category(body: CategoryIn, caller: CurrentUser, catalog: CatalogDep
                          ) -> CategoryOut:
    return await catalog.create_category(caller, body)


@admin.get("/products", response_model=list[AdminProductOut], responses=responses(*_ADMIN))
async def admin_list_products(caller: CurrentUser, catalog: CatalogDep, page: PageParams,
                              response: Response) -> list[AdminProductOut]:
    views, total = await catalog.admin_products(caller, page)
    set_total(response, total)
    return views


@admin.post("/products", status_code=201, response_model=AdminProductOut,
            responses=responses(*_ADMIN, CategoryNotFound))
async def create_product(body: ProductIn, caller: CurrentUser, catalog: CatalogDep
                         ) -> AdminProductOut:
    return await catalog.create_product(caller, body)


@admin.get("/products/{id}", response_model=AdminProductOut,
           responses=responses(*_ADMIN, ProductNotFound))
async def admin_get_product(product_id: IdPath, caller: CurrentUser, catalog: CatalogDep
                            ) -> AdminProductOut:
    return await catalog.admin_product(caller, product_id)


@admin.patch("/products/{id}", response_model=AdminProductOut,
             responses=responses(*_ADMIN, ProductNotFound, CategoryNotFound))
async def update_product(product_id: IdPath, body: ProductPatch, caller: CurrentUser,
                         catalog: CatalogDep) -> AdminProductOut:
    return await catalog.update_product(caller, product_id, body)


@admin.post("/products/{id}/stock", response_model=AdminProductOut,
            responses=responses(*_ADMIN, ProductNotFound, OutOfStock, StockLimitExceeded))
async def change_stock(product_id: IdPath, body: StockChangeIn, caller: CurrentUser,
                       catalog: CatalogDep) -> AdminProductOut:
    return await catalog.change_stock(caller, product_id, body)
