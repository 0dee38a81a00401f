"""What a caller can do with the catalog, each from authorisation to the answer: the read
or write transaction is opened here. The FastAPI routes and the lean read
(catalog/fastpath.py) are adapters over these."""

from __future__ import annotations

from typing import Any

from ecommerce.catalog import service
from ecommerce.catalog.listing import Listings
from ecommerce.catalog.schemas import (
    AdminProductOut,
    CategoryIn,
    CategoryOut,
    CategoryWithCountOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductQuery,
    StockChangeIn,
)
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, require_admin


def _product(row: Any, model: type = ProductOut) -> Any:
    return model.model_validate(row._mapping)


class Catalog:
    def __init__(self, db: Database, clock: Clock, listings: Listings):
        self.db = db
        self.clock = clock
        self.listings = listings

    async def categories(self, page: Page) -> tuple[list[CategoryWithCountOut], int]:
        """Every category with its product count, and the total."""
        async with self.db.uow(write=False) as uow:
            rows, total = await service.list_categories(uow, page.size, page.offset)
        return [CategoryWithCountOut.model_validate(row._mapping) for row in rows], total

    async def products(self, query: ProductQuery) -> tuple[Any, int]:
        """A page of listed products as sent (JSON: the response model documents the body,
        the API tests pin its fields), and the total. A page the cache holds under the
        current generations is answered without opening a transaction."""
        page = Page(query.page, query.size)
        filters: dict[str, Any] = {
            "category": query.category, "keyword": query.keyword,
            "min_price": query.min_price, "max_price": query.max_price,
            "in_stock": query.in_stock, "sort": query.sort, "limit": page.size,
            "offset": page.offset}
        params = service.listing_params(**filters)
        seen = await self.listings.ahead(params)
        if seen is not None and seen.page is not None:
            return seen.page
        async with self.db.uow(write=False) as uow:
            rows, total, seen = await service.list_products(uow, self.listings, **filters,
                                                            seen=seen)
        views = [{"id": row.id, "name": row.name, "price": row.price, "stock": row.stock,
                  "category": row.category, "description": row.description} for row in rows]
        return await self.listings.keep(seen, params, views, total), total

    async def product(self, product_id: int) -> ProductOut:
        async with self.db.uow(write=False) as uow:
            return _product(await service.get_product(uow, product_id))

    async def create_category(self, caller: Principal, command: CategoryIn) -> CategoryOut:
        require_admin(caller)
        async with self.db.uow() as uow:
            category_id = await service.create_category(uow, command.slug, command.name,
                                                        self.clock.now())
        return CategoryOut(id=category_id, slug=command.slug, name=command.name)

    async def admin_products(self, caller: Principal, page: Page
                             ) -> tuple[list[AdminProductOut], int]:
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            rows, total = await service.admin_products(uow, page.size, page.offset)
        return [_product(row, AdminProductOut) for row in rows], total

    async def create_product(self, caller: Principal, command: ProductIn) -> AdminProductOut:
        require_admin(caller)
        async with self.db.uow() as uow:
            row = await service.create_product(uow, self.listings, **command.model_dump(),
                                               now=self.clock.now())
        return _product(row, AdminProductOut)

    async def admin_product(self, caller: Principal, product_id: int) -> AdminProductOut:
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            return _product(await service.get_product(uow, product_id,
                                                      include_inactive=True),
                            AdminProductOut)

    async def update_product(self, caller: Principal, product_id: int,
                             command: ProductPatch) -> AdminProductOut:
        require_admin(caller)
        async with self.db.uow() as uow:
            row = await service.update_product(uow, self.listings, product_id,
                                               command.model_dump(exclude_unset=True),
                                               self.clock.now())
        return _product(row, AdminProductOut)

    async def change_stock(self, caller: Principal, product_id: int,
                           command: StockChangeIn) -> AdminProductOut:
        require_admin(caller)
        async with self.db.uow() as uow:
            row = await service.adjust_stock(uow, self.listings, product_id, command.delta,
                                             self.clock.now())
        return _product(row, AdminProductOut)
