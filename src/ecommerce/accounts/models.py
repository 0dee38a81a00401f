from sqlalchemy import CheckConstraint, Column, Index, Integer, String, Table

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
    # Raised by a password or role change: tokens issued before it stop working.
    Column("token_version", Integer, nullable=False, default=0, server_default="0"),
    Column("token_changed_at", UtcDateTime, nullable=True),  # when it was last raised
    CheckConstraint("role IN ('CUSTOMER', 'ADMIN')", name="role"),
    Index("ix_users_token_changed_at", "token_changed_at"),
)
