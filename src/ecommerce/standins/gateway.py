"""`ecommerce dev-pg`: a local stand-in for the card payment gateway (issue 17).

It answers the part of the Toss Payments v1 API the shop uses (confirm, look up by order id
and by payment key, cancel with an Idempotency-Key, Basic auth with the secret key, errors
as `{code, message}`) and serves a checkout page that stands in for the gateway's payment
widget: the customer enters a card, and the page redirects to the shop's success URL with
`paymentKey`, `orderId` and `amount`, or to its fail URL with `code` and `message`.

Test cards decide what a confirm does:

    4330 0000 0000 0001  approved (as is any other number)
    4330 0000 0000 0002  declined: 403 REJECT_CARD_PAYMENT, nothing charged
    4330 0000 0000 0003  approved, but the answer comes only after `timeout_delay` seconds
                         (the shop's call times out; a lookup shows the payment DONE)
    4330 0000 0000 0004  500 FAILED_INTERNAL_SYSTEM_PROCESSING, nothing charged

Like the real gateway, an order id is approved once: a confirm of another key for an order
id that has an approval (or had one, refunded) is refused with `DUPLICATED_ORDER_ID`. A
lookup by order id answers with the order id's latest checkout, approved or not (a gateway
may: the shop reads a payment back by the key it confirmed, never relying on the order id
naming the approval). Every payment is kept in memory while the process runs, so lookups and cancels
answer truthfully. `latency` adds a fixed delay to every API call. It stands in for the
external service only, never for the shop's own code."""

from __future__ import annotations

import asyncio
import base64
import hmac
import html
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

DEFAULT_SECRET_KEY = "test_sk_sandbox"
DEFAULT_CLIENT_KEY = "test_ck_sandbox"
DECLINE, LATE, FAIL = "4330000000000002", "4330000000000003", "4330000000000004"
TEST_CARDS = [("4330 0000 0000 0001", "승인 / approved"),
              ("4330 0000 0000 0002", "거절 / declined (REJECT_CARD_PAYMENT)"),
              ("4330 0000 0000 0003", "승인, 늦은 응답 / approved, answered late"),
              ("4330 0000 0000 0004", "오류 / 500, not charged")]
_CARD_LIST = "<ul>" + "".join(f"<li><code>{number}</code> {html.escape(meaning)}</li>"
                              for number, meaning in TEST_CARDS) + "</ul>"


@dataclass
class SandboxPayment:
    payment_key: str
    order_id: str
    order_name: str
    amount: int
    card: str
    requested_at: datetime
    status: str = "IN_PROGRESS"  # authorised at checkout, waiting for the shop's confirm
    approved_at: datetime | None = None
    balance: int = 0
    cancels: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "version": "2022-11-16", "mId": "sandbox", "paymentKey": self.payment_key,
            "orderId": self.order_id, "orderName": self.order_name, "type": "NORMAL",
            "method": "카드", "currency": "KRW", "status": self.status,
            "totalAmount": self.amount, "balanceAmount": self.balance,
            "requestedAt": _iso(self.requested_at), "approvedAt": _iso(self.approved_at),
            "card": {"number": self.card[:8] + "****" + self.card[-4:], "amount": self.amount,
                     "issuerCode": "SB", "approveNo": self.payment_key[-8:]},
            "cancels": self.cancels or None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


# The gateway's messages, in Korean as it sends them.
MESSAGES = {
    "UNAUTHORIZED_KEY": "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
    "INVALID_REQUEST": "잘못된 요청입니다.",
    "NOT_FOUND_PAYMENT": "존재하지 않는 결제 정보 입니다.",
    "REJECT_CARD_PAYMENT": "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
    "ALREADY_PROCESSED_PAYMENT": "이미 처리된 결제 입니다.",
    "DUPLICATED_ORDER_ID": "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 "
                           "진행해주세요.",
    "FAILED_INTERNAL_SYSTEM_PROCESSING": "내부 시스템 처리 작업이 실패했습니다.",
    "ALREADY_CANCELED_PAYMENT": "이미 취소된 결제 입니다.",
    "NOT_CANCELABLE_PAYMENT": "취소 할 수 없는 결제 입니다.",
    "NOT_CANCELABLE_AMOUNT": "취소 할 수 없는 금액 입니다.",
}


def _body(code: str, message: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message or MESSAGES[code]}


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    return JSONResponse(_body(code, message), status_code=status)


def sandbox_app(*, secret_key: str = DEFAULT_SECRET_KEY, client_key: str = DEFAULT_CLIENT_KEY,
                latency: float = 0.0, timeout_delay: float = 30.0) -> Starlette:
    payments: dict[str, SandboxPayment] = {}
    by_order: dict[str, str] = {}  # order id -> its latest checkout's key
    approved: dict[str, str] = {}  # order id -> the key approved for it
    cancels_by_key: dict[str, tuple[int, dict[str, Any]]] = {}
    expected_auth = "Basic " + base64.b64encode(f"{secret_key}:".encode()).decode()

    async def api_call(request: Request) -> Response | None:
        """What every API call does first: the added latency, then the secret key."""
        if latency:
            await asyncio.sleep(latency)
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected_auth):
            return _error(401, "UNAUTHORIZED_KEY")
        return None

    async def json_body(request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def confirm(request: Request) -> Response:
        if (refused := await api_call(request)) is not None:
            return refused
        body = await json_body(request)
        if body is None or not isinstance(body.get("amount"), int) or not all(
                isinstance(body.get(name), str) for name in ("paymentKey", "orderId")):
            return _error(400, "INVALID_REQUEST")
        payment = payments.get(body["paymentKey"])
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT")
        if payment.order_id != body["orderId"] or payment.amount != body["amount"]:
            return _error(400, "INVALID_REQUEST", "결제 금액 또는 주문번호가 일치하지 않습니다.")
        if payment.status != "IN_PROGRESS":
            if payment.status == "ABORTED":
                return _error(403, "REJECT_CARD_PAYMENT")
            return _error(400, "ALREADY_PROCESSED_PAYMENT")
        if approved.get(payment.order_id, payment.payment_key) != payment.payment_key:
            return _error(400, "DUPLICATED_ORDER_ID")
        if payment.card == DECLINE:
            payment.status = "ABORTED"
            return _error(403, "REJECT_CARD_PAYMENT")
        if payment.card == FAIL:
            return _error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING")
        payment.status, payment.approved_at = "DONE", datetime.now(UTC)
        payment.balance = payment.amount
        approved[payment.order_id] = payment.payment_key
        if payment.card == LATE:  # charged now, answered after the caller gave up
            await asyncio.sleep(timeout_delay)
        return JSONResponse(payment.body())

    async def lookup(request: Request) -> Response:
        """By payment key, or by the shop's order id (the payment made for it)."""
        if (refused := await api_call(request)) is not None:
            return refused
        key = request.path_params.get("payment_key") or by_order.get(
            request.path_params.get("order_id", ""), "")
        payment = payments.get(key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT")
        return JSONResponse(payment.body())

    async def cancel(request: Request) -> Response:
        if (refused := await api_call(request)) is not None:
            return refused
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key and idempotency_key in cancels_by_key:
            status, answer = cancels_by_key[idempotency_key]
            return JSONResponse(answer, status_code=status)
        status, answer = _cancel(payments.get(request.path_params["payment_key"]),
                                 await json_body(request))
        if idempotency_key:
            cancels_by_key[idempotency_key] = (status, answer)
        return JSONResponse(answer, status_code=status)

    def _cancel(payment: SandboxPayment | None, body: dict[str, Any] | None
                ) -> tuple[int, dict[str, Any]]:
        if payment is None:
            return 404, _body("NOT_FOUND_PAYMENT")
        if body is None or not isinstance(body.get("cancelReason"), str):
            return 400, _body("INVALID_REQUEST", "취소 사유가 필요합니다.")
        if payment.status == "CANCELED":
            return 400, _body("ALREADY_CANCELED_PAYMENT")
        if payment.status not in ("DONE", "PARTIAL_CANCELED"):
            return 403, _body("NOT_CANCELABLE_PAYMENT")
        amount = body.get("cancelAmount", payment.balance)
        if not isinstance(amount, int) or amount <= 0 or amount > payment.balance:
            return 400, _body("NOT_CANCELABLE_AMOUNT")
        payment.balance -= amount
        payment.status = "CANCELED" if payment.balance == 0 else "PARTIAL_CANCELED"
        payment.cancels.append({
            "cancelAmount": amount, "cancelReason": body["cancelReason"],
            "canceledAt": _iso(datetime.now(UTC)), "transactionKey": secrets.token_hex(16),
            "cancelStatus": "DONE"})
        return 200, payment.body()

    async def checkout_page(request: Request) -> Response:
        """The stand-in for the payment widget: a card form for one order."""
        fields = dict(request.query_params)
        problem = _checkout_problem(fields)
        if problem:
            return HTMLResponse(_page("결제할 수 없습니다", f"<p>{html.escape(problem)}</p>"),
                                status_code=400)
        hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                         for name, value in fields.items())
        form = (f"<p>{html.escape(fields.get('orderName', ''))}: "
                f"<strong>{int(fields['amount']):,}원</strong></p>"
                f'<form method="post" action="/checkout">{hidden}'
                '<label>카드 번호 / card number <input name="cardNumber" required '
                'inputmode="numeric" autocomplete="cc-number" value="4330 0000 0000 0001">'
                '</label><button name="action" value="pay">결제하기 / Pay</button>'
                '<button name="action" value="cancel" formnovalidate>취소 / Cancel</button>'
                f"</form><p>테스트 카드 / test cards:</p>{_CARD_LIST}")
        return HTMLResponse(_page("카드 결제 (샌드박스)", form))

    async def checkout_submit(request: Request) -> Response:
        # A plain urlencoded form (the page's own), read without python-multipart.
        fields = {key: values[0] for key, values in
                  parse_qs((await request.body()).decode(errors="replace")).items()}
        problem = _checkout_problem(fields)
        if problem:
            return HTMLResponse(_page("결제할 수 없습니다", f"<p>{html.escape(problem)}</p>"),
                                status_code=400)
        if fields.get("action") == "cancel":
            return RedirectResponse(_with_query(fields["failUrl"], {
                "code": "PAY_PROCESS_CANCELED", "message": "사용자에 의해 결제가 취소되었습니다.",
                "orderId": fields["orderId"]}), status_code=303)
        card = "".join(ch for ch in fields.get("cardNumber", "") if ch.isdigit())
        if len(card) < 15:
            return RedirectResponse(_with_query(fields["failUrl"], {
                "code": "INVALID_CARD_NUMBER", "message": "카드 번호를 다시 확인해주세요.",
                "orderId": fields["orderId"]}), status_code=303)
        payment = SandboxPayment(
            payment_key="tsb_" + secrets.token_hex(20), order_id=fields["orderId"],
            order_name=fields.get("orderName", ""), amount=int(fields["amount"]), card=card,
            requested_at=datetime.now(UTC))
        payments[payment.payment_key] = payment
        by_order[payment.order_id] = payment.payment_key
        return RedirectResponse(_with_query(fields["successUrl"], {
            "paymentKey": payment.payment_key, "orderId": payment.order_id,
            "amount": str(payment.amount)}), status_code=303)

    def _checkout_problem(fields: dict[str, str]) -> str | None:
        if fields.get("clientKey") != client_key:
            return "unknown clientKey"
        if not fields.get("amount", "").isdigit() or int(fields["amount"]) <= 0:
            return "amount must be a positive integer"
        for name in ("orderId", "successUrl", "failUrl"):
            if not fields.get(name):
                return f"{name} is required"
        return None

    async def home(_: Request) -> Response:
        return HTMLResponse(_page("ecommerce dev-pg", f"<p>{len(payments)} payments kept.</p>"
                                  f"<p>Test cards:</p>{_CARD_LIST}"))

    return Starlette(routes=[
        Route("/", home),
        Route("/checkout", checkout_page, methods=["GET"]),
        Route("/checkout", checkout_submit, methods=["POST"]),
        Route("/v1/payments/confirm", confirm, methods=["POST"]),
        Route("/v1/payments/orders/{order_id}", lookup, methods=["GET"]),
        Route("/v1/payments/{payment_key}", lookup, methods=["GET"]),
        Route("/v1/payments/{payment_key}/cancel", cancel, methods=["POST"]),
    ])


def _with_query(url: str, values: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(values)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _page(title: str, content: str) -> str:
    return (f'<!doctype html><html lang="ko"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
            f"max-width:28rem;margin:2rem auto;padding:0 1rem}}label,button{{display:block;"
            f"margin:.6rem 0}}input{{font-size:1.1rem;width:100%}}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{content}</body></html>")
