"""Every query on categories, products, stock movements and daily sales."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Text, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from ecommerce.catalog.models import (
    catalog_state,
    categories,
    products,
    stock_movements,
)

PRODUCT_COLUMNS = (
    products.c.id, products.c.name, products.c.price, products.c.stock,
    categories.c.slug.label("category"), products.c.description, products.c.created_at,
    products.c.updated_at, products.c.active, products.c.sold_quantity,
)


# Categories -------------------------------------------------------------------------

async def add_category(conn: AsyncConnection, slug: str, name: str, now: datetime) -> int:
    result = await conn.execute(insert(categories).values(slug=slug, name=name, created_at=now))
    return int(result.inserted_primary_key[0])


async def category_id(conn: AsyncConnection, slug: str) -> int | None:
    return (await conn.execute(select(categories.c.id).where(categories.c.slug == slug))
            ).scalar()


async def categories_with_counts(conn: AsyncConnection, limit: int, offset: int
                                 ) -> Sequence[Any]:
    count = (select(func.count()).where(products.c.category_id == categories.c.id,
                                        products.c.active.is_(True))
             .scalar_subquery())
    return (await conn.execute(
        select(categories.c.id, categories.c.slug, categories.c.name,
               count.label("product_count"))
        .order_by(categories.c.name, categories.c.id).limit(limit).offset(offset))).all()


async def count_categories(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(categories))).scalar_one()


# Products ---------------------------------------------------------------------------

async def add_product(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(products).values(**values))
    return int(result.inserted_primary_key[0])


async def get_product(conn: AsyncConnection, product_id: int) -> Any:
    return (await conn.execute(
        select(*PRODUCT_COLUMNS).join(categories, categories.c.id == products.c.category_id)
        .where(products.c.id == product_id))).first()


# The live, active rows a listing or the top sellers show, by id. Built once: a list page
# runs this on every request. PostgreSQL takes the ids as one array parameter (one
# prepared statement, ~0.7 ms less CPU per 20 rows than an expanded IN list, measured).
_LISTED = select(products.c.id, products.c.name, products.c.price, products.c.stock,
                 categories.c.slug.label("category"), products.c.description
                 ).join(categories, categories.c.id == products.c.category_id)
_LISTED_IN = _LISTED.where(products.c.id.in_(bindparam("ids", expanding=True)),
                           products.c.active.is_(True))
_LISTED_ANY = _LISTED.where(
    products.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger))),
    products.c.active.is_(True))


async def listed_products(conn: AsyncConnection, ids: Sequence[int]) -> list[Any]:
    """Live rows (id, name, price, stock, category, description) of the active products
    among these ids, in the order given."""
    if not ids:
        return []
    statement = _LISTED_ANY if conn.dialect.name == "postgresql" else _LISTED_IN
    rows = (await conn.execute(statement, {"ids": list(ids)})).all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def update_product(conn: AsyncConnection, product_id: int, values: dict[str, Any]) -> bool:
    result = await conn.execute(update(products).where(products.c.id == product_id)
                                .values(**values))
    return result.rowcount == 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def listing_query(*, category_id: int | None, keyword: str | None, min_price: int | None,
                  max_price: int | None, in_stock: bool | None) -> Select[Any]:
    conditions = [products.c.active.is_(True)]
    if category_id is not None:
        conditions.append(products.c.category_id == category_id)
    if keyword:
        # The pattern goes into the statement as a literal: on PostgreSQL a prepared
        # `LIKE $1` falls back, after five runs, to one generic plan for every keyword, and
        # that plan reads the whole trigram index for a pattern it has no trigram of (a
        # two-syllable Korean word, one letter): 75 ms instead of a 25 ms scan at 100,000
        # products. A literal is planned for itself (decision 37).
        pattern = bindparam("keyword", f"%{_escape_like(keyword.lower())}%", type_=Text,
                            literal_execute=True)
        conditions.append(products.c.search_text.like(pattern, escape="\\"))
    if min_price is not None:
        conditions.append(products.c.price >= min_price)
    if max_price is not None:
        conditions.append(products.c.price <= max_price)
    if in_stock is True:
        conditions.append(products.c.stock > 0)
    elif in_stock is False:
        conditions.append(products.c.stock == 0)
    return select(products.c.id).where(and_(*conditions))


SORTS = {
    "newest": (products.c.created_at.desc(), products.c.id.desc()),
    "price_asc": (products.c.price.asc(), products.c.id.asc()),
    "price_desc": (products.c.price.desc(), products.c.id.asc()),
    "name": (products.c.name.asc(), products.c.id.asc()),
    "popular": (products.c.sold_quantity.desc(), products.c.id.asc()),
}


async def page_of_ids(conn: AsyncConnection, query: Select[Any], sort: str, limit: int,
                      offset: int, *, keyword: bool) -> tuple[list[int], int]:
    """A page of ids and the total that match.

    Usually the page (an index-ordered or top-N read) and the count are two queries. On
    MySQL/MariaDB a keyword search is a full scan either way (no index serves an infix
    LIKE), so there the total comes from the same pass, a window count: one scan, not two.
    On PostgreSQL the two queries win (trigram index, top-N sort; bench/search.py)."""
    if not (keyword and conn.dialect.name == "mysql"):
        ids = list((await conn.execute(query.order_by(*SORTS[sort]).limit(limit)
                                       .offset(offset))).scalars())
        return ids, (await count(conn, query) if ids or offset else 0)
    rows = (await conn.execute(query.add_columns(func.count().over().label("total"))
                               .order_by(*SORTS[sort]).limit(limit).offset(offset))).all()
    if rows:
        return [row.id for row in rows], int(rows[0].total)
    return [], (await count(conn, query) if offset else 0)


async def count(conn: AsyncConnection, query: Select[Any]) -> int:
    return (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()


async def admin_list(conn: AsyncConnection, limit: int, offset: int) -> Sequence[Any]:
    return (await conn.execute(
        select(*PRODUCT_COLUMNS).join(categories, categories.c.id == products.c.category_id)
        .order_by(products.c.id.desc()).limit(limit).offset(offset))).all()


async def count_all(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(products))).scalar_one()


# Stock ------------------------------------------------------------------------------

async def change_stock(conn: AsyncConnection, product_id: int, delta: int, now: datetime,
                       *, sold: int = 0, require_active: bool = False,
                       expected_price: int | None = None, ceiling: int | None = None,
                       hold_percent: int | None = None, unhold: int = 0) -> int | None:
    """Add `delta` to the stock if it stays >= 0 (and <= `ceiling` when given; one
    conditional UPDATE, which takes the row lock); the new stock, or None if the product
    is missing, short, over the ceiling, inactive (when required) or no longer at
    `expected_price`. `hold_percent`: the units taken (-delta) are held by an unpaid order,
    and all held units may be at most that share of the units not sold for good (stock +
    held, which holding does not change), rounded up (the last unit of a product can be
    held); `unhold`: so many held units are held no more."""
    returning = conn.dialect.name != "mysql"  # MariaDB has no UPDATE ... RETURNING
    statement = _stock_change(returning, bool(sold), require_active,
                              expected_price is not None, ceiling is not None,
                              hold_percent is not None, bool(unhold))
    params = {"_product_id": product_id, "_delta": delta, "_now": now, "_sold": sold,
              "_expected_price": expected_price, "_ceiling": ceiling,
              "_hold_percent": hold_percent, "_unhold": unhold}
    if returning:
        return (await conn.execute(statement, params)).scalar()
    if (await conn.execute(statement, params)).rowcount != 1:
        return None
    return (await conn.execute(select(products.c.stock).where(products.c.id == product_id))
            ).scalar_one()


@functools.cache
def _stock_change(returning: bool, sold: bool, require_active: bool, priced: bool,
                  ceiling: bool, holding: bool, unhold: bool) -> Any:
    """`change_stock`'s UPDATE of this shape, built once (platform/sql.py says why)."""
    def number(name: str) -> Any:
        return bindparam(f"_{name}", type_=BigInteger)

    delta = number("delta")
    conditions = [products.c.id == number("product_id"), products.c.stock + delta >= 0]
    if ceiling:
        conditions.append(products.c.stock + delta <= number("ceiling"))
    if require_active:
        conditions.append(products.c.active.is_(True))
    if priced:
        conditions.append(products.c.price == number("expected_price"))
    values: dict[str, Any] = {"stock": products.c.stock + delta,
                              "updated_at": bindparam("_now", type_=products.c.updated_at.type)}
    if sold:
        values["sold_quantity"] = products.c.sold_quantity + number("sold")
    if holding:
        conditions.append((products.c.held - delta) * 100
                          <= number("hold_percent") * (products.c.stock + products.c.held) + 99)
        values["held"] = products.c.held - delta
    elif unhold:
        values["held"] = products.c.held - number("unhold")
    statement = update(products).where(*conditions).values(**values)
    return statement.returning(products.c.stock) if returning else statement


async def add_movement(conn: AsyncConnection, product_id: int, kind: str, delta: int,
                       stock_after: int, order_id: int | None, now: datetime) -> None:
    await conn.execute(insert(stock_movements).values(
        product_id=product_id, kind=kind, delta=delta, stock_after=stock_after,
        order_id=order_id, created_at=now))


async def mismatched_stock(conn: AsyncConnection) -> Sequence[Any]:
    moved = (select(stock_movements.c.product_id, func.sum(stock_movements.c.delta)
                    .label("total")).group_by(stock_movements.c.product_id).subquery())
    total = func.coalesce(moved.c.total, 0)
    return (await conn.execute(
        select(products.c.id, products.c.stock, total.label("movements"))
        .select_from(products.outerjoin(moved, moved.c.product_id == products.c.id))
        .where((products.c.stock < 0) | (products.c.stock != total)))).all()


# Catalog generation (no Redis) ----------------------------------------------------------

async def bump_generation(conn: AsyncConnection) -> None:
    # The row (id 1) is created by the migration.
    await conn.execute(update(catalog_state).where(catalog_state.c.id == 1)
                       .values(generation=catalog_state.c.generation + 1))


async def generation(conn: AsyncConnection) -> int:
    return (await conn.execute(select(catalog_state.c.generation)
                               .where(catalog_state.c.id == 1))).scalar() or 0
