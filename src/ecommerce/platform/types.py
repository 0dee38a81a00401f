"""Column types that behave the same on SQLite, PostgreSQL and MySQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def naive_utc(moment: datetime) -> datetime:
    """An aware moment as the naive UTC the columns store: what a raw statement (a
    PL/pgSQL function's argument) passes where the column type would have converted it."""
    return moment.astimezone(UTC).replace(tzinfo=None)


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (microseconds on MySQL too), returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite returns text for raw SQL aggregates
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)
