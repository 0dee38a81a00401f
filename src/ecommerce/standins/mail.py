"""`ecommerce dev-mail`: a local SMTP server (aiosmtpd) that keeps every mail it receives
and shows them on a small web page, so `make run` can watch order e-mails arrive. The
tests use the same mailbox as their real SMTP server."""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mail:
    number: int
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str
    received_at: datetime
    times: int = 1  # received again under the same Message-ID

    def summary(self) -> dict[str, Any]:
        return {"number": self.number, "messageId": self.message_id, "from": self.sender,
                "to": self.recipients, "subject": self.subject, "text": self.text,
                "receivedAt": self.received_at.isoformat().replace("+00:00", "Z"),
                "times": self.times}


@dataclass
class Mailbox:
    """What the server received, in order; a Message-ID seen again counts as `times`."""

    mails: list[Mail] = field(default_factory=list)
    received: int = 0  # every DATA accepted, duplicates included
    lock: threading.Lock = field(default_factory=threading.Lock)
    by_id: dict[str, Mail] = field(default_factory=dict)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.keep(message, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def keep(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        message_id = str(message.get("Message-ID", ""))
        text = message.get_body(("plain",))
        rich = message.get_body(("html",))
        with self.lock:
            self.received += 1
            if message_id in self.by_id:
                self.by_id[message_id].times += 1
                return
            mail = Mail(
                number=len(self.mails) + 1, message_id=message_id, sender=sender,
                recipients=recipients, subject=str(message.get("Subject", "")),
                text=text.get_content() if text is not None else "",
                html=rich.get_content() if rich is not None else "",
                received_at=datetime.now(UTC))
            self.mails.append(mail)
            if message_id:
                self.by_id[message_id] = mail

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)


def smtp_server(mailbox: Mailbox, host: str, port: int) -> Controller:
    """A started-on-demand SMTP server in its own thread (`.start()`, `.stop()`)."""
    return Controller(mailbox, hostname=host, port=port, ready_timeout=10)


def web_app(mailbox: Mailbox) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    async def page(request: Any) -> HTMLResponse:
        rows = "".join(
            f"<details><summary><b>{html.escape(mail.subject)}</b> → "
            f"{html.escape(', '.join(mail.recipients))} · {mail.received_at:%H:%M:%S}"
            f"{f' · received {mail.times} times' if mail.times > 1 else ''}</summary>"
            f"<p><a href='/mails/{mail.number}.html'>HTML part</a> · "
            f"{html.escape(mail.message_id)}</p><pre>{html.escape(mail.text)}</pre></details>"
            for mail in reversed(mailbox.snapshot()))
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='3'>"
            "<title>dev-mail</title><body style='font-family: sans-serif'>"
            f"<h1>dev-mail: {len(mailbox.mails)} mails</h1>{rows or '<p>No mail yet.</p>'}")

    async def one(request: Any) -> HTMLResponse:
        number = int(request.path_params["number"])
        mails = [mail for mail in mailbox.snapshot() if mail.number == number]
        if not mails:
            return HTMLResponse("no such mail", status_code=404)
        return HTMLResponse(mails[0].html, headers={"Content-Security-Policy": "sandbox"})

    async def listing(request: Any) -> JSONResponse:
        return JSONResponse([mail.summary() for mail in mailbox.snapshot()])

    return Starlette(routes=[Route("/", page), Route("/mails/{number:int}.html", one),
                             Route("/api/mails", listing)])


def run(*, host: str, port: int, web_port: int) -> None:
    import uvicorn

    mailbox = Mailbox()
    server = smtp_server(mailbox, host, port)
    server.start()
    try:
        uvicorn.run(web_app(mailbox), host=host, port=web_port, log_level="warning")
    finally:
        server.stop()
