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

import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
import orjson
from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, PackageLoader, select_autoescape

from ecommerce.consumers.repository import Event
from ecommerce.consumers.runner import Failure, Permanent
from ecommerce.orders import repository as orders
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.settings import Settings

IDLE_SECONDS = 20.0  # a kept SMTP connection unused this long is opened afresh

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
        self.shop_url = settings.shop_url.rstrip("/") if settings.shop_url else None
        self.zone = settings.timezone
        self.timeout = settings.smtp_timeout_seconds
        self.max_age = timedelta(hours=settings.email_max_age_hours)
        self.db = db
        self.clock = clock or Clock()
        self.templates = templates()
        self._smtp: aiosmtplib.SMTP | None = None
        self._used = 0.0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await smtp.quit()

    async def _send(self, message: MIMEMultipart) -> None:
        """Over one kept connection (one mail after another, never at once), opened again
        when the server closed it or after IDLE_SECONDS unused."""
        reused = self._smtp is not None and time.monotonic() - self._used < IDLE_SECONDS
        if not reused:
            await self.close()
            self._smtp = aiosmtplib.SMTP(
                hostname=self.server.host, port=self.server.port, use_tls=self.server.use_tls,
                start_tls=self.server.start_tls, timeout=self.timeout,
                username=self.server.username, password=self.server.password)
            await self._smtp.connect()
        assert self._smtp is not None
        try:
            await self._smtp.sendmail(self.sender, [message["To"]], message.as_bytes())
        except aiosmtplib.SMTPServerDisconnected:
            await self.close()
            if not reused:
                raise
            await self._send(message)  # the server had closed the kept connection: once more
        except BaseException:
            await self.close()  # after a refusal or a timeout, start the next one afresh
            raise
        self._used = time.monotonic()

    async def handle(self, event: Event) -> str:
        if event.created_at < self.clock.now() - self.max_age:
            return "too old"
        order = orjson.loads(event.payload)
        async with self.db.uow(write=False) as uow:
            facts = await orders.mail_facts(uow.conn, order["userId"], order["orderId"],
                                            [item["productId"] for item in order["items"]])
        if facts is None or not facts[0].email:
            return "no e-mail address"
        user, stored, names = facts
        message = self.message(event, order, user, names, sendable(user.email), stored)
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            # A 5xx to the address is for good (no such mailbox, not relayed): sending it
            # again changes nothing until someone fixes the address.
            if refused.recipients and all(r.code >= 500 for r in refused.recipients):
                raise Permanent(f"SMTP refused the address for good: "
                                f"{refused.recipients[0].code} "
                                f"{refused.recipients[0].message}") from None
            raise Failure(f"SMTP: {type(refused).__name__}: {refused}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
            raise Failure(f"SMTP: {type(failure).__name__}: {failure}") from None
        return "sent"

    def message(self, event: Event, order: dict[str, Any], user: Any,
                names: dict[int, str], address: str, stored: Any = None) -> MIMEMultipart:
        """HTML with a plain-text part (the stdlib's MIME classes: a third of the time of
        `EmailMessage`, which parses every header it is given)."""
        subject = f"[{self.shop}] {SUBJECTS[event.event_type]} (주문번호 {order['orderId']})"
        placed = stored.created_at if stored is not None else event.created_at
        context = {
            "shop": self.shop, "subject": subject, "name": user.username, "order": order,
            "placed": placed.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"),
            # A card order's two parts (each goes back where it came from when cancelled).
            "split": ({"balance": stored.balance_amount, "card": stored.card_amount}
                      if stored is not None and stored.payment_method == "CARD" else None),
            "link": f"{self.shop_url}/shop/#/orders" if self.shop_url else None,
            "items": [{"name": names.get(item["productId"], f"상품 {item['productId']}"),
                       "quantity": item["quantity"],
                       "amount": item["quantity"] * item["unitPrice"]}
                      for item in order["items"]],
        }
        message = MIMEMultipart("alternative")
        message["From"] = self.sender
        message["To"] = address
        message["Subject"] = Header(subject, "utf-8")
        message["Date"] = format_datetime(event.created_at)
        # The event's id: a mail sent again is the same message to every mail store.
        message["Message-ID"] = f"<{event.event_id}@{self.domain}>"
        for kind in ("plain", "html"):
            template = f"{event.event_type}.{'txt' if kind == 'plain' else 'html'}"
            message.attach(MIMEText(self.templates.get_template(template).render(context),
                                    kind, "utf-8"))
        return message


def sendable(address: str) -> str:
    """The address as an SMTP server without SMTPUTF8 takes it (the domain in its IDNA
    form); Permanent if it cannot take mail at all (stored before addresses were checked)."""
    try:
        return validate_email(address, check_deliverability=False, allow_smtputf8=False,
                              allow_domain_literal=False).ascii_email or address
    except EmailNotValidError as error:
        raise Permanent(f"the address cannot take mail: {error}") from None
