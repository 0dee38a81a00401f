"""`ecommerce audit`: every invariant (docs/api.md), checked against the database, and,
with a gateway configured, invariant 7 against what the gateway holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ecommerce.catalog import service as catalog
from ecommerce.consumers import audit as consumer_audit
from ecommerce.coupons import service as coupons
from ecommerce.orders import audit as order_audit
from ecommerce.payments.audit import audit_gateway
from ecommerce.payments.gateway import Gateway
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
    "7. every card order and charge has its payment, in the state it needs":
        order_audit.card_payments,
    "8. no card order holds past its expiry by more than a minute": order_audit.holds,
    "9. each consumer's effect happened at most once per event, none skipped":
        consumer_audit.effects,
}
GATEWAY_CHECK = ("7. every approval the gateway holds is a paid order or charge, or "
                 "refunded")


@dataclass
class Report:
    """Violations per check, and what could not be checked (the gateway did not answer)."""

    checks: dict[str, list[str]] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not any(self.checks.values())


async def audit_database(db: Database) -> dict[str, list[str]]:
    """Run every check in one read transaction; {check: [violations]}."""
    report: dict[str, list[str]] = {}
    async with db.uow(write=False) as uow:
        for name, check in CHECKS.items():
            report[name] = await check(uow)
    return report


async def run_audit(settings: Settings) -> Report:
    db = Database(settings.database_url, pool_size=2)
    gateway = (Gateway(settings.payment_gateway_url, settings.payment_secret_key or "",
                       timeout=settings.payment_timeout_seconds, notice_connections=None)
               if settings.payment_gateway_url else None)
    try:
        report = Report(await audit_database(db))
        if gateway is not None:
            at_gateway = await audit_gateway(db, gateway)
            report.checks[GATEWAY_CHECK] = at_gateway.violations
            report.unchecked = at_gateway.unchecked
        return report
    finally:
        await db.dispose()
        if gateway is not None:
            await gateway.close()
