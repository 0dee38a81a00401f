"""The catalog: categories, products, stock (every change leaves a stock movement)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from ecommerce.catalog import repository
from ecommerce.catalog.errors import (
    CategoryExists,
    CategoryNotFound,
    OutOfStock,
    ProductNotFound,
    StockLimitExceeded,
    StockOnHold,
)
from ecommerce.catalog.listing import Listings, Seen
from ecommerce.catalog.models import MAX_STOCK
from ecommerce.platform.database import RetryTransaction, UnitOfWork


def _search_text(name: str, description: str) -> str:
    return f"{name} {description}".lower()


async def create_category(uow: UnitOfWork, slug: str, name: str, now: datetime) -> int:
    """A new category; CategoryExists if the slug is taken."""
    try:
        return await repository.add_category(uow.conn, slug, name, now)
    except IntegrityError:
        raise CategoryExists() from None


async def list_categories(uow: UnitOfWork, limit: int, offset: int
                          ) -> tuple[Sequence[Any], int]:
    """Categories by name with their count of listed products, and the total."""
    return (await repository.categories_with_counts(uow.conn, limit, offset),
            await repository.count_categories(uow.conn))


async def _category_id(uow: UnitOfWork, slug: str) -> int:
    found = await repository.category_id(uow.conn, slug)
    if found is None:
        raise CategoryNotFound(f"No category '{slug}'")
    return found


async def create_product(uow: UnitOfWork, listings: Listings, *, name: str, description: str,
                         price: int, stock: int, category: str, now: datetime) -> Any:
    """A new active product with its initial stock movement; returns the product."""
    product_id = await repository.add_product(uow.conn, {
        "category_id": await _category_id(uow, category), "name": name,
        "description": description, "search_text": _search_text(name, description),
        "price": price, "stock": stock, "sold_quantity": 0, "active": True,
        "created_at": now, "updated_at": now})
    if stock:
        await repository.add_movement(uow.conn, product_id, "INITIAL", stock, stock, None, now)
    await listings.changed(uow)
    return await repository.get_product(uow.conn, product_id)


async def get_product(uow: UnitOfWork, product_id: int, *, include_inactive: bool = False
                      ) -> Any:
    """The product as of now; ProductNotFound if missing (or inactive, for the public)."""
    product = await repository.get_product(uow.conn, product_id)
    if product is None or (not product.active and not include_inactive):
        raise ProductNotFound()
    return product


async def update_product(uow: UnitOfWork, listings: Listings, product_id: int,
                         changes: dict[str, Any], now: datetime) -> Any:
    """Change any of name, description, price, category, active."""
    current = await get_product(uow, product_id, include_inactive=True)
    values: dict[str, Any] = {k: v for k, v in changes.items() if k != "category"}
    if "category" in changes:
        values["category_id"] = await _category_id(uow, changes["category"])
    if "name" in changes or "description" in changes:
        values["search_text"] = _search_text(changes.get("name", current.name),
                                             changes.get("description", current.description))
    if values:
        values["updated_at"] = now
        await repository.update_product(uow.conn, product_id, values)
        await listings.changed(uow)
    return await repository.get_product(uow.conn, product_id)


async def adjust_stock(uow: UnitOfWork, listings: Listings, product_id: int, delta: int,
                       now: datetime) -> Any:
    """Restock (delta > 0) or write off (delta < 0); OutOfStock below zero,
    StockLimitExceeded past MAX_STOCK."""
    await get_product(uow, product_id, include_inactive=True)
    stock = await repository.change_stock(uow.conn, product_id, delta, now, ceiling=MAX_STOCK)
    if stock is None:
        if delta > 0:
            raise StockLimitExceeded(f"The stock may not pass {MAX_STOCK:,}")
        raise OutOfStock("The write-off is larger than the stock")
    await repository.add_movement(uow.conn, product_id, "RESTOCK" if delta > 0 else "WRITE_OFF",
                                  delta, stock, None, now)
    listings.rows_changed(uow)
    if stock == 0 or stock == delta:  # crossed zero: "in stock" listings change
        await listings.changed(uow)
    return await repository.get_product(uow.conn, product_id)


def check_listed(found: dict[int, Any], lines: Sequence[tuple[int, int]]) -> None:
    """ProductNotFound for the first line whose product is missing from `found` (rows
    read without locks: prices are re-checked when the stock is taken) or inactive."""
    for product_id, _ in lines:
        if product_id not in found or not found[product_id].active:
            raise ProductNotFound(f"No product {product_id}")


async def take_stock(uow: UnitOfWork, listings: Listings,
                     lines: Sequence[tuple[int, int, int]], order_id: int, now: datetime,
                     *, hold_percent: int | None = None) -> None:
    """Take each (product_id, quantity, price) line for an order at the price it was
    priced at, in product id order so that overlapping orders lock rows in the same order.
    Call it last in the order's transaction: a product row is the hottest lock in a sale,
    held until commit. A price changed since rolls the whole order back to be run again.
    `hold_percent`: the order is not paid yet and holds its units, which together with the
    other unpaid orders' may be at most that share of the product's units (StockOnHold)."""
    listings.rows_changed(uow)
    for product_id, quantity, price in sorted(lines):
        stock = await repository.change_stock(uow.conn, product_id, -quantity, now,
                                              sold=quantity, require_active=True,
                                              expected_price=price, hold_percent=hold_percent)
        if stock is None:
            current = await repository.get_product(uow.conn, product_id)
            if current is None or not current.active:
                raise ProductNotFound(f"No product {product_id}")
            if current.price != price:
                raise RetryTransaction()
            if current.stock < quantity:
                raise out_of_stock(product_id, current.name, current.stock, quantity)
            raise on_hold(product_id, current.name)
        await repository.add_movement(uow.conn, product_id, "SALE", -quantity, stock, order_id,
                                      now)
        if stock == 0:
            await listings.changed(uow)


def out_of_stock(product_id: int, name: str, stock: int, quantity: int) -> OutOfStock:
    return OutOfStock(f"Not enough stock of '{name}' (product {product_id}): {stock} left, "
                      f"{quantity} asked")


def on_hold(product_id: int, name: str) -> StockOnHold:
    return StockOnHold(f"What is left of '{name}' (product {product_id}) is held by orders "
                       "waiting for card payment: try again shortly, or pay from the balance")


async def return_stock(uow: UnitOfWork, listings: Listings, lines: Sequence[tuple[int, int]],
                       order_id: int, now: datetime, *, held: bool = False) -> None:
    """Put an order's quantities back, in product id order (`held`: they were held by an
    order not paid yet, and are no longer)."""
    listings.rows_changed(uow)
    for product_id, quantity in sorted(lines):
        stock = await repository.change_stock(uow.conn, product_id, quantity, now,
                                              sold=-quantity, unhold=quantity if held else 0)
        if stock is None:
            raise ProductNotFound(f"No product {product_id}")
        await repository.add_movement(uow.conn, product_id, "CANCEL", quantity, stock, order_id,
                                      now)
        if stock == quantity:
            await listings.changed(uow)


async def release_held(uow: UnitOfWork, lines: Sequence[tuple[int, int]], now: datetime
                       ) -> None:
    """An order that held these units was paid: they are sold, no longer held."""
    for product_id, quantity in sorted(lines):
        if await repository.change_stock(uow.conn, product_id, 0, now, unhold=quantity) is None:
            raise ProductNotFound(f"No product {product_id}")


def listing_params(*, category: str | None, keyword: str | None, min_price: int | None,
                   max_price: int | None, in_stock: bool | None, sort: str, limit: int,
                   offset: int) -> dict[str, Any]:
    """What names one listing (its cache entries' key)."""
    return {"category": category, "keyword": keyword, "min": min_price, "max": max_price,
            "inStock": in_stock, "sort": sort, "limit": limit, "offset": offset}


async def list_products(uow: UnitOfWork, listings: Listings, *, category: str | None,
                        keyword: str | None, min_price: int | None, max_price: int | None,
                        in_stock: bool | None, sort: str, limit: int, offset: int,
                        seen: Seen | None = None) -> tuple[list[Any], int, Seen]:
    """A page of listed products (live rows), the total that match, and what the cache
    held for it (`seen`, when it was asked before this transaction: `Listings.ahead`)."""
    params = listing_params(category=category, keyword=keyword, min_price=min_price,
                            max_price=max_price, in_stock=in_stock, sort=sort, limit=limit,
                            offset=offset)
    if seen is None:
        seen = await listings.lookup(uow, params)
    if seen.ids is not None:
        ids, total = seen.ids
    else:
        category_id = None
        if category is not None:
            category_id = await repository.category_id(uow.conn, category)
            if category_id is None:
                return [], 0, seen
        query = repository.listing_query(category_id=category_id, keyword=keyword,
                                         min_price=min_price, max_price=max_price,
                                         in_stock=in_stock)
        # A keyword search scans (no index serves an infix LIKE on SQLite or MySQL): on
        # an inline SQLite read it runs in a worker thread, not on the event loop.
        conn = uow.scan_conn if keyword else uow.conn
        ids, total = await repository.page_of_ids(conn, query, sort, limit, offset,
                                                  keyword=bool(keyword))
        await listings.store(seen, params, ids, total)
    return await repository.listed_products(uow.conn, ids), total, seen


async def admin_products(uow: UnitOfWork, limit: int, offset: int) -> tuple[Sequence[Any], int]:
    """Every product, active or not, newest first."""
    return (await repository.admin_list(uow.conn, limit, offset),
            await repository.count_all(uow.conn))


async def audit(uow: UnitOfWork) -> list[str]:
    """Invariant 2: every stock is >= 0 and equals the sum of its movements."""
    return [f"product {row.id}: stock {row.stock} but movements sum to {row.movements}"
            for row in await repository.mismatched_stock(uow.conn)]
