"""`ecommerce audit`: every invariant (docs/api.md), checked against the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ecommerce.catalog import service as catalog
from ecommerce.coupons import service as coupons
from ecommerce.orders import audit as order_audit
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.settings import Settings
from ecommerce.wallet import service as wallet

Check = Callable[[UnitOfWork], Awaitable[list[str]]]

CHECKS: dict[str, Check] = {
    "1. balances match their ledger and are never negative": wallet.audit,
    "2. stock matches its movements and is never negative": catalog.audit,
    "3. coupons issued match their holders, within quantity, once per user": coupons.audit,
    "4. every order has its payment (and refund) in the ledger": order_audit.payments,
    "5. a used coupon belongs to exactly one paid order": order_audit.coupon_use,
    "6. every paid or cancelled order has its event in the outbox": order_audit.events,
}


async def audit_database(db: Database) -> dict[str, list[str]]:
    """Run every check in one read transaction; {check: [violations]}."""
    report: dict[str, list[str]] = {}
    async with db.uow(write=False) as uow:
        for name, check in CHECKS.items():
            report[name] = await check(uow)
    return report


async def run_audit(settings: Settings) -> dict[str, list[str]]:
    db = Database(settings.database_url, pool_size=2)
    try:
        return await audit_database(db)
    finally:
        await db.dispose()
