"""The flash sale as its shoppers see it: every claimer sends one claim, once (no replay),
over a fixed number of keep-alive connections, and every answer is timed on its own, so
that the coupons issued (200) and the refusals (409 sold out, ...) are counted apart.

wrk cannot do this: it replays its request file until the time is up and reports one
latency distribution over every answer, so a sale's few winners drown in its refusals.
This client is plain asyncio streams (uvloop when present) in the benchmark's process,
which is light next to the server: it parses only the status line, Content-Length and the
error code."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

_CODE = re.compile(rb'"code":"([A-Z_]+)"')


@dataclass(frozen=True)
class Answer:
    sent: float  # monotonic seconds
    answered: float
    status: int
    code: str  # the error code of a refusal, "" for a 2xx

    @property
    def ms(self) -> float:
        return (self.answered - self.sent) * 1000


def claim_request(token: str, user_id: int, code: str) -> bytes:
    body = f'{{"userId":{user_id},"couponCode":"{code}"}}'.encode()
    return (f"POST /api/coupons/claim HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


async def _shopper_line(host: str, port: int, requests: list[bytes], cursor: list[int],
                        answers: list[Answer], errors: list[str], started: float,
                        rate: float) -> None:
    """One connection: takes the next claimer until none is left; reconnects after an error
    (that claimer's answer is lost: counted as an error, not retried). With a `rate`,
    claimer i arrives at `started + i / rate`: the connection waits for that moment, and a
    claimer who arrives while every connection is busy has waited from the moment they
    arrived (their latency counts it)."""
    reader = writer = None
    while cursor[0] < len(requests):
        index = cursor[0]
        request = requests[index]
        cursor[0] += 1
        sent = time.monotonic()
        if rate:
            arrives = started + index / rate
            if arrives > sent:
                await asyncio.sleep(arrives - sent)
            sent = arrives
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status, body = await _read_answer(reader)  # type: ignore[arg-type]
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            errors.append(type(error).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        match = _CODE.search(body) if status >= 300 else None
        answers.append(Answer(sent, time.monotonic(), status,
                              match.group(1).decode() if match else ""))
    if writer is not None:
        writer.close()


async def _sale(host: str, port: int, requests: list[bytes], connections: int, rate: float
                ) -> tuple[list[Answer], list[str], float]:
    answers: list[Answer] = []
    errors: list[str] = []
    cursor = [0]
    started = time.monotonic()
    await asyncio.gather(*(_shopper_line(host, port, requests, cursor, answers, errors,
                                         started, rate) for _ in range(connections)))
    return answers, errors, started


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def summarise(answers: list[Answer], errors: list[str], started: float) -> dict[str, Any]:
    """What the shop owner asks: how long the sale took to sell out, at what rate coupons
    were issued, how long the winners waited, and the refusals apart."""
    won = sorted((a for a in answers if a.status == 200), key=lambda a: a.answered)
    refused = [a for a in answers if a.status != 200]
    codes: dict[str, int] = {}
    for a in answers:
        key = str(a.status) + (f" {a.code}" if a.code else "")
        codes[key] = codes.get(key, 0) + 1
    ended = max((a.answered for a in answers), default=started)
    summary: dict[str, Any] = {
        "claimers": len(answers) + len(errors), "issued": len(won), "codes": codes,
        "socket_errors": len(errors), "seconds": round(ended - started, 3)}
    if won:
        sell_out = won[-1].answered - started
        summary.update({
            "sell_out_s": round(sell_out, 3),  # first claim sent → last coupon answered
            "first_to_last_issue_s": round(won[-1].answered - won[0].answered, 3),
            "issues_per_s": round(len(won) / sell_out, 1) if sell_out > 0 else None,
            "won_p50_ms": _percentile([a.ms for a in won], 0.50),
            "won_p99_ms": _percentile([a.ms for a in won], 0.99),
            "won_max_ms": round(max(a.ms for a in won), 2)})
    if refused:
        span = max(a.answered for a in refused) - min(a.sent for a in refused)
        summary.update({
            "refusals": len(refused),
            "refusals_per_s": round(len(refused) / span, 1) if span > 0 else None,
            "refused_p50_ms": _percentile([a.ms for a in refused], 0.50),
            "refused_p99_ms": _percentile([a.ms for a in refused], 0.99)})
    return summary


def run_sale(port: int, requests: list[bytes], connections: int, rate: float = 0, *,
             host: str = "127.0.0.1") -> dict[str, Any]:
    """Every request once over `connections` connections to host:port, at `rate` arrivals a
    second (0: each connection sends its next as soon as it is answered); the summary."""
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    return summarise(*runner(_sale(host, port, requests, connections, rate)))
