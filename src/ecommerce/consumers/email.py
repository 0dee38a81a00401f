"""The `email` consumer: order confirmation, cancellation and card payment failure, in
Korean, as HTML with a plain-text part, through SMTP_URL.

A user without an e-mail address is skipped (settled as "no e-mail address" and counted);
an event older than EMAIL_MAX_AGE_HOURS too ("too old": switching the consumer on late
does not mail the past). Each mail is settled right after the server accepted it, one at
a time per worker, so a worker killed mid-batch repeats no mail it had recorded; the one
mail in flight at the moment of death is sent again only if the server had accepted it in
the milliseconds before its record, and it carries the event's Message-ID, which mail
stores treat as one message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
import orjson
from jinja2 import Environment, PackageLoader, select_autoescape

from ecommerce.accounts import repository as accounts
from ecommerce.catalog import repository as catalog
from ecommerce.consumers.repository import Event
from ecommerce.consumers.runner import Failure
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.settings import Settings

SUBJECTS = {
    "order.completed": "주문이 완료되었습니다",
    "order.cancelled": "주문이 취소되었습니다",
    "order.payment_failed": "결제에 실패했습니다",
}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: upgrade if the server offers it

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)  # checked by the settings (SMTP_URL)
        assert parts.hostname
        tls = parts.scheme == "smtps"
        return cls(host=parts.hostname, port=parts.port or (465 if tls else 25),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   use_tls=tls, start_tls=True if parts.scheme == "smtp+starttls" else None)


def won(amount: int) -> str:
    return f"{amount:,}원"


def templates() -> Environment:
    environment = Environment(loader=PackageLoader("ecommerce.consumers", "templates"),
                              autoescape=select_autoescape(["html"]), keep_trailing_newline=True)
    environment.filters["won"] = won
    return environment


class Email:
    name: ClassVar[str] = "email"
    event_types: ClassVar[frozenset[str]] = frozenset(SUBJECTS)
    settle_each: ClassVar[bool] = True  # a mail cannot be taken back: record each at once
    concurrency: ClassVar[int] = 1

    def __init__(self, settings: Settings, db: Database, clock: Clock | None = None):
        assert settings.smtp_url
        self.server = SmtpServer.parse(settings.smtp_url)
        self.sender = settings.smtp_from
        self.domain = settings.smtp_from.rpartition("@")[2] or "localhost"
        self.shop = settings.shop_name
        self.timeout = settings.smtp_timeout_seconds
        self.max_age = timedelta(hours=settings.email_max_age_hours)
        self.db = db
        self.clock = clock or Clock()
        self.templates = templates()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def handle(self, event: Event) -> str:
        if event.created_at < self.clock.now() - self.max_age:
            return "too old"
        order = orjson.loads(event.payload)
        async with self.db.uow(write=False) as uow:
            user = await accounts.get_by_id(uow.conn, order["userId"])
            names = await catalog.names(uow.conn, [item["productId"]
                                                   for item in order["items"]])
        if user is None or not user.email:
            return "no e-mail address"
        message = self.message(event, order, user, names)
        try:
            await aiosmtplib.send(message, hostname=self.server.host, port=self.server.port,
                                  username=self.server.username,
                                  password=self.server.password, use_tls=self.server.use_tls,
                                  start_tls=self.server.start_tls, timeout=self.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
            raise Failure(f"SMTP: {type(failure).__name__}: {failure}") from None
        return "sent"

    def message(self, event: Event, order: dict[str, Any], user: Any,
                names: dict[int, str]) -> EmailMessage:
        subject = f"[{self.shop}] {SUBJECTS[event.event_type]} (주문번호 {order['orderId']})"
        context = {
            "shop": self.shop, "subject": subject, "name": user.username, "order": order,
            "items": [{"name": names.get(item["productId"], f"상품 {item['productId']}"),
                       "quantity": item["quantity"],
                       "amount": item["quantity"] * item["unitPrice"]}
                      for item in order["items"]],
        }
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = user.email
        message["Subject"] = subject
        message["Date"] = format_datetime(event.created_at)
        # The event's id: a mail sent again is the same message to every mail store.
        message["Message-ID"] = f"<{event.event_id}@{self.domain}>"
        message.set_content(self.templates.get_template(f"{event.event_type}.txt")
                            .render(context))
        message.add_alternative(self.templates.get_template(f"{event.event_type}.html")
                                .render(context), subtype="html")
        return message
