"""The card-order scenario: card payments confirmed through a gateway that takes 50 ms
(`ecommerce dev-pg --latency 0.05`), at a fixed rate, while balance-paid orders run as fast
as they can beside them in the same run.

Before the measured run (not timed), card orders are placed through the API and each is
authorised at the sandbox's checkout page, as a customer would (the tests' own steps,
`tests/payments/checkout.authorise`). The measured
run then replays their confirms (`POST /api/orders/{id}/payment/confirm`, each once) at
`CARD_RATE` a second, beside the `order_mix` of balance orders. The confirm's gateway call
holds no database connection or lock (orders/card.py), so the balance orders should keep
their rate: compare with `order_mix` alone in the same report."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

import httpx
from tests.payments.checkout import authorise

CARD_RATE = 100  # confirms a second
# Seconds the sandbox adds to every API call; BENCH_GATEWAY_LATENCY=0 gives the run to
# compare with (the same work without the wait: what the wait itself costs the shop).
GATEWAY_LATENCY = float(os.environ.get("BENCH_GATEWAY_LATENCY", "0.05"))


async def _prepare(port: int, sandbox: str, data: dict[str, Any], count: int
                   ) -> list[str]:
    rng = random.Random("card_orders")
    lines: list[str] = []
    slots = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as shop:
        async def one() -> None:
            uid = rng.choice(data["rich"])
            body = {"userId": uid, "paymentMethod": "CARD",
                    "items": [{"productId": rng.choice(data["products"]), "quantity": 1}]}
            async with slots:
                placed = await shop.post(
                    f"http://127.0.0.1:{port}/api/orders", json=body,
                    headers={"Authorization": f"Bearer {data['tokens'][uid]}"})
                if placed.status_code != 201:
                    raise RuntimeError(f"card order refused: {placed.text}")
                order = placed.json()
                amount = order["payment"]["amount"]
                key, _ = await authorise(sandbox, amount,
                                         order_id=order["payment"]["pgOrderId"])
            confirm = json.dumps({"paymentKey": key, "amount": amount}, separators=(",", ":"))
            lines.append("\t".join(("POST", f"/api/orders/{order['orderId']}/payment/confirm",
                                    data["tokens"][uid], confirm, "")))

        await asyncio.gather(*(one() for _ in range(count)))
    return lines


def confirm_lines(port: int, sandbox: str, data: dict[str, Any], count: int) -> list[str]:
    """Place `count` card orders and authorise each at the sandbox; their confirms."""
    return asyncio.run(_prepare(port, sandbox, data, count))
