"""The payment sandbox (`ecommerce dev-pg`) as a process, and what a customer does on its
checkout page, for the payment tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx

from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY
from tests.scratch import free_port
from tests.waiting import until_sync

APPROVE, DECLINE, LATE, FAIL = ("4330 0000 0000 0001", "4330 0000 0000 0002",
                                "4330 0000 0000 0003", "4330 0000 0000 0004")


@contextlib.contextmanager
def dev_pg(*options: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", "dev-pg", "--port", str(port), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, "dev-pg exited"
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url, timeout=1).status_code == 200
        return False

    try:
        until_sync(answers, what="dev-pg answering")
        yield url
    finally:
        process.terminate()  # a held answer (the late card) may keep it from stopping
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def authorise(sandbox: str, amount: int, card: str = APPROVE,
                    order_id: str | None = None) -> tuple[str, str]:
    """What the customer does on the checkout page: (paymentKey, orderId) from the
    redirect to the shop's success URL."""
    order_id = order_id or f"order-{uuid.uuid4().hex[:12]}"
    fields = {"clientKey": DEFAULT_CLIENT_KEY, "orderId": order_id, "orderName": "테스트 주문",
              "amount": str(amount), "successUrl": "http://shop.test/pay/ok?from=test",
              "failUrl": "http://shop.test/pay/fail", "cardNumber": card, "action": "pay"}
    # A generous bound: on a busy machine (CI) the test process's loop may be slow to run
    # the connect (once seen as httpx.ConnectTimeout at the default 5 s).
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(f"{sandbox}/checkout", params={
            k: v for k, v in fields.items() if k not in ("cardNumber", "action")})
        assert page.status_code == 200 and f"{amount:,}원" in page.text
        answer = await client.post(f"{sandbox}/checkout", data=fields)
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert location.path == "/pay/ok" and query["from"] == "test"
    assert query["orderId"] == order_id and query["amount"] == str(amount)
    return query["paymentKey"], order_id


