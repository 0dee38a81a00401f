"""Frozen migrations: each revision that creates or replaces a PostgreSQL function keeps its
own copy of the SQL it applied (migrations/sql/). The newest copies are the live files; a
database migrated step by step from empty holds at each step what that step applied, and
one migrated down step by step holds the previous step's function (never none while a
revision's code expects one), and up again today's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from ecommerce.migrations import sql as copies
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import downgrade, upgrade
from tests.backends import create_database, drop_database

SOURCE = Path(__file__).resolve().parents[1] / "src" / "ecommerce"
LIVE = {"shop_place_order": SOURCE / "orders" / "place_order.sql",
        "shop_card_order_paid": SOURCE / "orders" / "card_paid.sql",
        "shop_card_order_confirming": SOURCE / "orders" / "card_confirming.sql",
        "shop_issue_coupons": SOURCE / "coupons" / "issue_coupons.sql"}
REVISIONS = sorted(re.findall(r"^revision = '(\d{4})'$", path.read_text(), re.M)[0]
                   for path in (SOURCE / "migrations" / "versions").glob("*.py")
                   if path.name != "__init__.py")


def copies_of(function: str) -> list[str]:
    """The revisions that applied `function`, oldest first."""
    return sorted(path.name.split("_")[0] for path in copies.FOLDER.glob(f"*_{function}.sql"))


def expected_at(revision: str, function: str) -> str | None:
    """The body `function` has in a database at `revision`: the newest copy applied at or
    before it."""
    applied = [r for r in copies_of(function) if r <= revision]
    return body(copies.applied(applied[-1], function)) if applied else None


def body(sql: str) -> str:
    return sql.split("$$")[1]


def test_the_newest_copy_of_each_function_is_the_live_file():
    for function, live in LIVE.items():
        newest = copies_of(function)[-1]
        assert copies.applied(newest, function) == live.read_text(encoding="utf-8"), (
            f"{live.name} changed: a new revision must apply it, with its copy in "
            f"migrations/sql/")


def test_every_copy_is_used_by_its_revision_and_has_a_signature():
    versions = (SOURCE / "migrations" / "versions").glob("*.py")
    used = {match for path in versions
            for match in re.findall(r'applied\("(\d{4})", "(\w+)"\)', path.read_text())}
    files = {tuple(path.stem.split("_", 1)) for path in copies.FOLDER.glob("*.sql")}
    assert files == used
    assert {key for key in copies.SIGNATURES if key[1] == "shop_place_order"} == {
        (revision, "shop_place_order") for revision in copies_of("shop_place_order")}


@pytest.fixture
async def postgres_url():
    url = await create_database("postgres")
    try:
        yield url
    finally:
        await drop_database("postgres", url)


async def bodies(url: str) -> dict[str, str | None]:
    db = Database(url, pool_size=1)
    try:
        async with db.uow(write=False) as uow:
            found = dict((await uow.conn.execute(text(
                "SELECT proname, prosrc FROM pg_proc WHERE proname IN "
                "('shop_place_order', 'shop_card_order_paid', 'shop_card_order_confirming', "
                "'shop_issue_coupons')"))).all())
    finally:
        await db.dispose()
    return {function: found.get(function) for function in LIVE}


async def test_step_by_step_up_down_and_up_each_step_holds_what_it_applied(postgres_url):
    for revision in REVISIONS:
        upgrade(postgres_url, revision)
        assert await bodies(postgres_url) == {
            function: expected_at(revision, function) for function in LIVE}, revision
    assert await bodies(postgres_url) == {
        function: body(live.read_text(encoding="utf-8")) for function, live in LIVE.items()}
    for revision in reversed(REVISIONS[:-1]):
        downgrade(postgres_url, revision)
        assert await bodies(postgres_url) == {
            function: expected_at(revision, function) for function in LIVE}, revision
    upgrade(postgres_url, "head")
    assert await bodies(postgres_url) == {
        function: body(live.read_text(encoding="utf-8")) for function, live in LIVE.items()}
