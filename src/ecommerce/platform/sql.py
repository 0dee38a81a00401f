"""SQL that reads the same on every database but is spelled differently by each."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, Update, bindparam, or_, update
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


# Statements on the hot paths are built once per shape and executed with their values as
# parameters: building a Core construct and its cache key costs more CPU than the round
# trip it makes (about 120 of 250 microseconds for a select by id on asyncpg; docs/
# performance.md, "a card confirm's statements").

@functools.cache
def _status_move(table: Table, from_statuses: tuple[str, ...], names: tuple[str, ...]
                 ) -> Update:
    return (update(table)
            .where(table.c.id == bindparam("_id", type_=table.c.id.type),
                   # equalities, not IN: an IN list is expanded into the SQL per execution
                   or_(*(table.c.status == status for status in from_statuses)))
            .values(status=bindparam("_status", type_=table.c.status.type),
                    **{name: bindparam(f"_{name}", type_=table.c[name].type)
                       for name in names}))


async def move_status(conn: AsyncConnection, table: Table, row_id: int,
                      from_statuses: Sequence[str], status: str, values: dict[str, Any]
                      ) -> bool:
    """Set a row's status (and `values`) if it is one of `from_statuses`, in one
    conditional UPDATE (which takes the row's lock): whether it was."""
    statement = _status_move(table, tuple(from_statuses), tuple(values))
    params = {"_id": row_id, "_status": status,
              **{f"_{name}": value for name, value in values.items()}}
    return bool((await conn.execute(statement, params)).rowcount == 1)
