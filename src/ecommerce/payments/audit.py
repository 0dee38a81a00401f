"""Invariant 7, the gateway's side: every approval the gateway holds for one of the shop's
gateway order ids is applied (a DONE payment, or one being settled or refunded) or
refunded here. Each payment is read back by the key the shop confirmed it with, and by
its gateway order id, where an approval under any other key shows (a stray: it must be
recorded and refunded). A payment the gateway did not answer for is "not checked",
apart from a violation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecommerce.payments import repository
from ecommerce.payments.gateway import CANCELED, Gateway, GatewayError, GatewayPayment
from ecommerce.platform.database import Database

# What a payment may be here, by what the gateway holds for the key it was confirmed with.
AT_GATEWAY = {"DONE": ("DONE", "CONFIRMING", "CANCEL_PENDING"),
              "CANCELED": ("CANCELLED", "CANCEL_PENDING")}
NOT_CHARGED = ("READY", "CONFIRMING", "FAILED", "EXPIRED", "VOIDED")


@dataclass
class GatewayReport:
    violations: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)


async def audit_gateway(db: Database, gateway: Gateway) -> GatewayReport:
    async with db.uow(write=False) as uow:
        rows = await repository.all_payments(uow.conn)
        strays = {row.payment_key: row for row in await repository.all_strays(uow.conn)}
    report = GatewayReport()
    for row in rows:
        try:
            mine = (await gateway.by_payment_key(row.payment_key)
                    if row.payment_key is not None else None)
            by_order = await gateway.by_order_id(row.pg_order_id)
        except GatewayError as error:
            report.unchecked.append(f"payment {row.id}: the gateway did not answer ({error})")
            continue
        report.violations += _mine(row, mine)
        if by_order is not None and by_order.approved and (
                by_order.payment_key != row.payment_key):
            report.violations += _stray(row, by_order, strays.get(by_order.payment_key))
    return report


def _name(row: Any) -> str:
    return f"payment {row.id} ({row.kind} {row.order_id or row.id})"


def _mine(row: Any, held: GatewayPayment | None) -> list[str]:
    """The payment of the key the shop confirmed with, against the row."""
    status = held.status if held is not None and held.approved else "NONE"
    allowed = AT_GATEWAY.get(status, NOT_CHARGED)
    if held is not None and held.approved and status not in AT_GATEWAY:
        allowed = ("CANCEL_PENDING",)  # partly refunded: only a refund under way explains it
    if row.status not in allowed:
        return [f"{_name(row)} is {row.status} here but "
                f"{held.status if held is not None else 'unknown'} at the gateway"]
    if held is not None and held.approved and held.total_amount != row.amount and (
            row.status != "CANCEL_PENDING" and row.status != "CANCELLED"):
        return [f"{_name(row)}: {row.amount} here, {held.total_amount} at the gateway"]
    return []


def _stray(row: Any, approval: GatewayPayment, recorded: Any) -> list[str]:
    """An approval under a key the shop did not confirm: recorded and refunded."""
    if recorded is None:
        return [f"{_name(row)}: the gateway approved {approval.total_amount} under key "
                f"{approval.payment_key}, neither applied nor refunded"]
    if recorded.status == "REFUNDED" and approval.status != CANCELED:
        return [f"{_name(row)}: stray approval {approval.payment_key} is refunded here but "
                f"{approval.status} at the gateway"]
    return []
