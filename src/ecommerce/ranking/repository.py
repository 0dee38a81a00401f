"""Every query on the daily sales the top sellers are ranked by."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.catalog.models import products
from ecommerce.ranking.models import product_sales_daily


async def add_daily_sales(conn: AsyncConnection, day: date,
                          quantities: Iterable[tuple[int, int]]) -> None:
    """Add (product_id, quantity) to `day`'s totals: one upsert per product, by id."""
    statement = _upsert(conn.dialect.name)
    for product_id, quantity in sorted(quantities):
        await conn.execute(statement, {"_product_id": product_id, "_day": day,
                                       "_quantity": quantity})


@functools.cache
def _upsert(dialect: str) -> Any:
    """The upsert of one day's total, built once per dialect (platform/sql.py says why)."""
    values = {name: bindparam(f"_{name}", type_=product_sales_daily.c[name].type)
              for name in ("product_id", "day", "quantity")}
    if dialect == "mysql":
        stmt = mysql.insert(product_sales_daily).values(**values)
        return stmt.on_duplicate_key_update(
            quantity=product_sales_daily.c.quantity + stmt.inserted.quantity)
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(product_sales_daily).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=["product_id", "day"],
        set_={"quantity": product_sales_daily.c.quantity + stmt.excluded.quantity})


async def top_sellers(conn: AsyncConnection, first_day: date, limit: int) -> Sequence[Any]:
    """(product_id, sold) for active products since `first_day`, best first, ties by id."""
    sold = func.sum(product_sales_daily.c.quantity).label("sold")
    return (await conn.execute(
        select(product_sales_daily.c.product_id, sold)
        .join(products, products.c.id == product_sales_daily.c.product_id)
        .where(product_sales_daily.c.day >= first_day, products.c.active.is_(True))
        .group_by(product_sales_daily.c.product_id)
        .having(sold > 0)
        .order_by(sold.desc(), product_sales_daily.c.product_id.asc())
        .limit(limit))).all()
