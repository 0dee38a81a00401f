from sqlalchemy import CheckConstraint, Column, String, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("email", String(254), nullable=True),  # for order notices; optional
    CheckConstraint("role IN ('CUSTOMER', 'ADMIN')", name="role"),
)
