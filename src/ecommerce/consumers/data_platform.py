"""The `data-platform` consumer: each order event POSTed to DATA_PLATFORM_URL, signed
(SPEC §4, events). Any 2xx is delivered; anything else is a failure, retried by the
runner. The receiver dedupes on `eventId` (a worker that dies after the POST and before
its record repeats that one POST)."""

from __future__ import annotations

from typing import ClassVar

import aiohttp

from ecommerce.consumers.repository import Event
from ecommerce.consumers.runner import Failure
from ecommerce.consumers.signing import signature
from ecommerce.platform.settings import Settings


class DataPlatform:
    name: ClassVar[str] = "data-platform"
    event_types: ClassVar[frozenset[str]] = frozenset({"order.completed", "order.cancelled"})
    settle_each: ClassVar[bool] = False  # a repeated POST is deduped by the receiver
    concurrency: ClassVar[int] = 32

    def __init__(self, settings: Settings):
        assert settings.data_platform_url
        self.url = settings.data_platform_url
        self.secret = settings.data_platform_secret or ""
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # The same client as the payment gateway's (payments/gateway.py, decision 82);
        # idle connections let go before a receiver's own 5 s keep-alive ends them.
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5.0),
            connector=aiohttp.TCPConnector(limit=self.concurrency, keepalive_timeout=4.0))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def handle(self, event: Event) -> str:
        if self._http is None:
            await self.start()
        assert self._http is not None
        body = event.payload.encode()
        try:
            async with self._http.post(self.url, data=body, headers={
                    "Content-Type": "application/json", "X-Event-Id": event.event_id,
                    "X-Event-Type": event.event_type,
                    "X-Signature": signature(self.secret, body)}) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as failure:
            raise Failure(f"{type(failure).__name__}: {failure}") from None
        if not 200 <= status < 300:
            raise Failure(f"HTTP {status}")
        return "delivered"
