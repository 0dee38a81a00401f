"""`ecommerce audit`: every invariant (docs/api.md), checked against the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ecommerce.catalog import service as catalog
from ecommerce.consumers import audit as consumer_audit
from ecommerce.coupons import service as coupons
from ecommerce.orders import audit as order_audit
from ecommerce.payments import service as payments
from ecommerce.payments.gateway import Gateway, GatewayError
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
GATEWAY_CHECK = "7. every payment the gateway approved is a paid order or charge, or refunded"


async def audit_database(db: Database) -> dict[str, list[str]]:
    """Run every check in one read transaction; {check: [violations]}."""
    report: dict[str, list[str]] = {}
    async with db.uow(write=False) as uow:
        for name, check in CHECKS.items():
            report[name] = await check(uow)
    return report


async def audit_gateway(db: Database, gateway: Gateway) -> list[str]:
    """Invariant 7, the gateway's side: each of our payments read back from the gateway.
    What it charged must be a DONE payment (or one being settled or refunded), what it
    refunded a refunded one, and nothing it does not hold may be DONE or refunded here."""
    async with db.uow(write=False) as uow:
        rows = await payments.all_payments(uow)
    problems = []
    for row in rows:
        try:
            held = await gateway.by_order_id(row.pg_order_id)
        except GatewayError as error:
            problems.append(f"payment {row.id}: the gateway did not answer ({error})")
            continue
        status = held.status if held is not None else "NONE"
        allowed = {"DONE": ("DONE", "CONFIRMING", "CANCEL_PENDING"),
                   "CANCELED": ("CANCELLED", "CANCEL_PENDING")}.get(
            status, ("READY", "CONFIRMING", "FAILED", "EXPIRED"))
        if row.status not in allowed:
            problems.append(f"payment {row.id} ({row.kind} {row.order_id or row.id}) is "
                            f"{row.status} here but {status} at the gateway")
        elif held is not None and held.total_amount != row.amount:
            problems.append(f"payment {row.id}: {row.amount} here, {held.total_amount} at "
                            "the gateway")
    return problems


async def run_audit(settings: Settings) -> dict[str, list[str]]:
    db = Database(settings.database_url, pool_size=2)
    gateway = (Gateway(settings.payment_gateway_url, settings.payment_secret_key or "",
                       timeout=settings.payment_timeout_seconds)
               if settings.payment_gateway_url else None)
    try:
        report = await audit_database(db)
        if gateway is not None:
            report[GATEWAY_CHECK] = await audit_gateway(db, gateway)
        return report
    finally:
        await db.dispose()
        if gateway is not None:
            await gateway.close()
