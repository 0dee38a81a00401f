"""Alembic, run programmatically (one history for every database). The migrations ship
inside the package (`ecommerce/migrations`), so an installed `ecommerce` can migrate from
any directory; `alembic.ini` at the repository root is only for writing new revisions."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
log = logging.getLogger("ecommerce.migrate")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", os.environ.get(
        "ECOMMERCE_MIGRATIONS", str(MIGRATIONS)))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision` (serialised across processes on PG and MySQL)."""
    config = alembic_config(database_url)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of ours, below
    command.upgrade(config, revision)
    log.info("database schema up to date", extra={"revision": revision})


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
