"""The reconcile job: every payment the request that began it did not settle gets settled
here, from what the gateway holds (Payments.reconcile_once says what one pass does). Every
`serve` process runs it; `ecommerce payments reconcile` runs one pass."""

from __future__ import annotations

import asyncio
import logging

from ecommerce.payments.usecases import Payments

log = logging.getLogger("ecommerce.payments")


async def run_forever(payments: Payments, stop: asyncio.Event, interval: float) -> None:
    """One pass every `interval` seconds until `stop`; a failed pass (the database away)
    is logged and the next one tries again."""
    while not stop.is_set():
        try:
            await payments.reconcile_once()
        except Exception:  # noqa: BLE001 - the job outlives a bad pass
            log.exception("payment reconcile pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
