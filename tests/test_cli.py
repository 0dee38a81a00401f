"""The `ecommerce` command, run as a real process against each database."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import update

from ecommerce.accounts import repository as accounts_repo
from ecommerce.app import create_app
from ecommerce.platform.database import Database
from ecommerce.wallet.models import wallets
from tests.conftest import make_settings, wipe
from tests.e2e.conftest import server_env


def ecommerce(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecommerce", *args], capture_output=True,
                          text=True, env=server_env(database_url, **env), timeout=120)


async def test_create_admin_audit_and_upgrade(database_url):
    await wipe(database_url)
    assert ecommerce(database_url, "db", "upgrade").returncode == 0
    made = ecommerce(database_url, "users", "create-admin", "--username", "Boss",
                     "--password", "boss-password")
    assert made.returncode == 0, made.stderr
    db = Database(database_url)
    try:
        async with db.uow(write=False) as uow:
            boss = await accounts_repo.get_by_username(uow.conn, "boss")
        assert boss.role == "ADMIN"
        seeded = ecommerce(database_url, "seed", "--demo")
        assert seeded.returncode == 0, seeded.stderr
        async with db.uow(write=False) as uow:  # coupons to claim without an admin's help
            from ecommerce.coupons import service as coupons

            claimable, _ = await coupons.browse(uow, available=True, now=datetime.now(UTC),
                                                limit=10, offset=0)
        assert sorted(c.code for c in claimable) == ["FLASH-20", "WELCOME-5000"]
        assert "demo/demo-password" in seeded.stdout
        again = ecommerce(database_url, "seed", "--demo").stdout  # `make run` each time
        assert "already" in again and "demo/demo-password" in again
        clean = ecommerce(database_url, "audit")
        assert clean.returncode == 0 and "violation" not in clean.stdout, clean.stdout
        async with db.uow() as uow:  # corrupt a balance behind the ledger's back
            await uow.conn.execute(update(wallets).values(balance=wallets.c.balance + 1))
        broken = ecommerce(database_url, "audit")
        assert broken.returncode == 1 and "violation" in broken.stdout
    finally:
        await db.dispose()


async def test_invalid_admin_credentials_are_refused(database_url):
    result = ecommerce(database_url, "users", "create-admin", "--username", "x",
                       "--password", "short")
    assert result.returncode == 2 and "invalid" in result.stderr


async def test_consume_names_its_consumers(database_url):
    unknown = ecommerce(database_url, "consume", "--group", "points")
    assert unknown.returncode == 2 and "data-platform, email" in unknown.stderr
    idle = ecommerce(database_url, "consume")  # nothing configured: says so, ends
    assert idle.returncode == 0 and "SMTP_URL" in idle.stderr


async def test_admin_from_environment_exists_after_start(database_url):
    await wipe(database_url)
    settings = make_settings(database_url, admin_username="root-admin",
                             admin_password="a-long-password")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    db = Database(database_url)
    try:
        async with db.uow(write=False) as uow:
            admin = await accounts_repo.get_by_username(uow.conn, "root-admin")
    finally:
        await db.dispose()
    assert admin is not None and admin.role == "ADMIN"


async def test_several_processes_migrating_a_new_database_at_once_all_succeed(db_kind):
    """Several `serve` processes starting together each migrate first: the migrations
    serialise on a lock (PostgreSQL: a transaction's advisory lock, which PgBouncer's
    transaction mode keeps too; MySQL: a named lock), so each succeeds and the schema is
    built once."""
    import asyncio

    from sqlalchemy import text

    from tests.backends import MYSQL_URL, POSTGRES_URL, RUN_ID
    from tests.scratch import create_scratch_database, drop_scratch_database

    if db_kind == "sqlite":
        import pytest

        pytest.skip("SQLite: one file, one writer at a time, no lock to take")
    server = POSTGRES_URL if db_kind == "postgres" else MYSQL_URL
    url = await create_scratch_database(server, f"ecommerce_migrate_{RUN_ID}")
    try:
        runs = await asyncio.gather(*[asyncio.to_thread(ecommerce, url, "db", "upgrade")
                                      for _ in range(3)])
        assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr[-800:] for run in runs]
        db = Database(url, pool_size=1)
        try:
            async with db.uow(write=False) as uow:
                versions = (await uow.conn.execute(
                    text("SELECT version_num FROM alembic_version"))).scalars().all()
        finally:
            await db.dispose()
        assert len(versions) == 1
    finally:
        await drop_scratch_database(server, url)


async def test_an_audit_that_cannot_ask_the_gateway_says_so_apart(database_url):
    """Issue 29 item 11: with the gateway unreachable, `ecommerce audit` reports the
    payments it could not check apart from violations, and exits 3 (1 is for violations,
    0 for a clean shop)."""
    from sqlalchemy import insert

    from ecommerce.payments.models import payments
    from tests.scratch import free_port

    await wipe(database_url)
    app = create_app(make_settings(database_url))
    async with app.router.lifespan_context(app):
        user_id = await app.state.ctx.accounts.sign_up("payer", "password-123")
        now = datetime.now(UTC)
        async with app.state.ctx.db.uow() as uow:
            await uow.conn.execute(insert(payments).values(
                kind="CHARGE", user_id=user_id, pg_order_id="CHG-audit", amount=1_000,
                status="EXPIRED", created_at=now, expires_at=now))
    unreachable = ecommerce(database_url, "audit",
                            PAYMENT_GATEWAY_URL=f"http://127.0.0.1:{free_port()}",
                            PAYMENT_SECRET_KEY="test_sk_sandbox", PAYMENT_TIMEOUT_SECONDS="1")
    assert unreachable.returncode == 3, unreachable.stdout + unreachable.stderr
    assert "violation" not in unreachable.stdout
    assert "could not check: 1 payment(s)" in unreachable.stdout
