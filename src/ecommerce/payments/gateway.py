"""The card payment gateway's client: the Toss Payments v1 API shape, over aiohttp.

Four calls: confirm a payment the customer authorised at the gateway's checkout, look one
up by our order id or by its payment key, and cancel (refund) it with an Idempotency-Key.
Basic auth with the secret key (`<secret>:` in base64), every call bounded by
`PAYMENT_TIMEOUT_SECONDS` as a whole (connecting, sending and reading together, so a
call has surely ended at the gateway once that much time has passed). Three outcomes a
caller must tell apart:

* an answer: the payment as the gateway now holds it (`GatewayPayment`);
* a refusal (`GatewayRefused`, a 4xx with the gateway's `{code, message}`): nothing
  happened at the gateway, e.g. `REJECT_CARD_PAYMENT`;
* no answer (`GatewayUnreachable`: a timeout, a connection error, a 5xx or a body that is
  not the gateway's): the call may or may not have taken effect, and only a lookup tells.

Never await these while a database transaction or row lock is open: a slow gateway would
hold them for its whole timeout.

aiohttp rather than httpx (decision 82): a call costs about 0.16 ms of CPU through aiohttp's
C parser and asyncio streams, 0.75 ms through httpx's h11 and anyio layers, and a card
confirm makes one call beside about 3 ms of everything else."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

# Payment statuses of the v1 API that matter here.
DONE = "DONE"  # approved: the card was charged
CANCELED, PARTIAL_CANCELED = "CANCELED", "PARTIAL_CANCELED"
APPROVED_STATUSES = frozenset({DONE, CANCELED, PARTIAL_CANCELED})


class GatewayError(Exception):
    """A gateway call that did not give a payment."""


class GatewayRefused(GatewayError):
    """The gateway answered with an error: the call did not take effect."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class GatewayUnreachable(GatewayError):
    """No usable answer (timeout, connection, 5xx): the outcome is unknown."""


@dataclass(frozen=True)
class Cancellation:
    amount: int
    reason: str
    canceled_at: datetime | None
    transaction_key: str | None


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the gateway holds it."""

    payment_key: str
    order_id: str
    status: str
    total_amount: int
    balance_amount: int  # what is left to cancel
    approved_at: datetime | None
    cancels: tuple[Cancellation, ...]

    @property
    def approved(self) -> bool:
        """The card was charged (and possibly refunded since, in part or whole)."""
        return self.status in APPROVED_STATUSES

    @property
    def refunded(self) -> int:
        return sum(cancel.amount for cancel in self.cancels)

    @classmethod
    def from_body(cls, body: Any) -> GatewayPayment:
        try:
            return cls(
                payment_key=str(body["paymentKey"]), order_id=str(body["orderId"]),
                status=str(body["status"]), total_amount=int(body["totalAmount"]),
                balance_amount=int(body.get("balanceAmount", body["totalAmount"])),
                approved_at=_moment(body.get("approvedAt")),
                cancels=tuple(Cancellation(
                    amount=int(item["cancelAmount"]), reason=str(item.get("cancelReason", "")),
                    canceled_at=_moment(item.get("canceledAt")),
                    transaction_key=item.get("transactionKey"))
                    for item in body.get("cancels") or ()))
        except (KeyError, TypeError, ValueError) as error:
            raise GatewayUnreachable(f"not a payment: {error!r}") from None


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class Gateway:
    """One client per process; `close()` on shutdown. `notices` is a second client of the
    same gateway with a small pool of its own (`notice_connections`), for lookups that
    unauthenticated webhooks cause: a flood of them can fill only that pool, never the one
    confirms, refunds and the reconcile job use."""

    def __init__(self, base_url: str, secret_key: str, *, timeout: float = 10.0,
                 connections: int = 100, notice_connections: int | None = 4):
        token = base64.b64encode(f"{secret_key}:".encode()).decode()
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        # Made on the first call, in the event loop that makes it (an aiohttp session
        # belongs to one loop); a call from another loop gets a session of its own.
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.notices = (Gateway(base_url, secret_key, timeout=timeout,
                                connections=notice_connections, notice_connections=None)
                        if notice_connections else self)
        self.capacity = connections

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # An idle connection is let go after 4 s, before a server that closes idle
            # ones at 5 s (uvicorn's default) does: a confirm is never sent down a
            # connection the other side is closing.
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=0,
                                               keepalive_timeout=4.0))
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()
        if self.notices is not self:
            await self.notices.close()

    async def confirm(self, payment_key: str, order_id: str, amount: int) -> GatewayPayment:
        """Approve the payment the customer authorised: the card is charged `amount`.
        A repeat of a confirmed payment is refused (`ALREADY_PROCESSED_PAYMENT`), and so is
        a second approval for an order id that has one (`DUPLICATED_ORDER_ID`)."""
        return await self._payment("POST", "/v1/payments/confirm", json={
            "paymentKey": payment_key, "orderId": order_id, "amount": amount})

    async def by_order_id(self, order_id: str) -> GatewayPayment | None:
        """The payment made for our order id (its approved one if it has one: a gateway
        approves an order id once); None if there is none."""
        return await self._lookup(f"/v1/payments/orders/{order_id}")

    async def by_payment_key(self, payment_key: str) -> GatewayPayment | None:
        """The payment of this key; None if the gateway knows no such key."""
        return await self._lookup(f"/v1/payments/{payment_key}")

    async def cancel(self, payment_key: str, amount: int | None, reason: str,
                     idempotency_key: str) -> GatewayPayment:
        """Refund `amount` of an approved payment (None: all that is left). The same
        Idempotency-Key always gets the same answer and refunds once, so a retry after no
        answer is safe."""
        body: dict[str, Any] = {"cancelReason": reason}
        if amount is not None:
            body["cancelAmount"] = amount
        return await self._payment("POST", f"/v1/payments/{payment_key}/cancel", json=body,
                                   headers={"Idempotency-Key": idempotency_key})

    async def _lookup(self, path: str) -> GatewayPayment | None:
        try:
            return await self._payment("GET", path)
        except GatewayRefused as refused:
            if refused.status == 404:
                return None
            raise

    async def _payment(self, method: str, path: str, **options: Any) -> GatewayPayment:
        try:
            async with self._http().request(method, self.base_url + path,
                                             **options) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:  # timeouts, refused or reset
            raise GatewayUnreachable(f"{method} {path}: {type(error).__name__}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status >= 500 or not isinstance(body, dict):
            raise GatewayUnreachable(f"{method} {path}: HTTP {status}")
        if status >= 400:
            raise GatewayRefused(status, str(body.get("code", "UNKNOWN")),
                                 str(body.get("message", "")))
        return GatewayPayment.from_body(body)
