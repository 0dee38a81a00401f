"""search_text compared byte for byte on MySQL/MariaDB

The service stores search_text lower-cased (Python's full Unicode lower()) and lower-cases
the keyword the same way, so the column needs no collation rules: a binary collation makes
MySQL's LIKE '%...%' scan markedly cheaper than utf8mb4_unicode_ci (docs/decisions.md 27).
PostgreSQL and SQLite already compare bytes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 02:30:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.execute("ALTER TABLE products MODIFY search_text TEXT "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.execute("ALTER TABLE products MODIFY search_text TEXT "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL")
