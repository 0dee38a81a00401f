"""SQL that reads the same on every database but is spelled differently by each."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignore(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose unique key is not there yet (a row being inserted by another
    transaction is waited for, then left alone); how many were inserted."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:
        statement = mysql.insert(table).prefix_with("IGNORE")
    if len(rows) == 1:  # one row: its own rowcount (executemany's is not always summed)
        return (await conn.execute(statement.values(**rows[0]))).rowcount
    return (await conn.execute(statement, rows)).rowcount
