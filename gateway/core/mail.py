"""Outgoing mail: verification, password reset, magic sign-in and invitation links.

One `Mailer` per process (on the `Runtime`). With `MEDIAHUB_SMTP_HOST` set it sends through
that server (aiosmtplib); without, it writes each message as an `.eml` file to
`MEDIAHUB_MAIL_OUTBOX_DIR` (development and the demo: open the file, follow the link).

`send_later` is what request handlers call: the message goes out in a background task, so an
answer takes as long whether or not a message was sent (sign-in and reset must not reveal
whether an account exists through their timing). A failed send is logged with its recipient's
domain and the error, never the message's body (it carries one-time links).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib
import msgspec

from gateway.core.settings import Settings
from tenants.kernel.db import utcnow

log = logging.getLogger(__name__)


class Mail(msgspec.Struct, frozen=True):
    """One message: to one address, from a tenant (its name as the sender's display name)."""

    to: str
    subject: str
    text: str
    #: The sender's display name: the tenant's (or the platform's) name.
    sender_name: str
    #: The sender's address; None: `MEDIAHUB_MAIL_FROM`.
    sender_address: str | None = None
    html: str | None = None


class Mailer:
    """Sends `Mail` through SMTP, or writes it to the outbox directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pending: set[asyncio.Task[None]] = set()

    def build(self, mail: Mail) -> EmailMessage:
        """The RFC 5322 message for `mail` (headers folded and encoded by the stdlib)."""
        message = EmailMessage()
        address = mail.sender_address or self.settings.mail_from
        user, _, domain = address.partition("@")
        message["From"] = Address(display_name=mail.sender_name, username=user, domain=domain)
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=domain or None)
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: Mail) -> None:
        """Send one message now; raises the SMTP or file system error when it cannot."""
        message = self.build(mail)
        settings = self.settings
        if settings.smtp_host is None:
            await asyncio.to_thread(self._write, message)
            return
        await aiosmtplib.send(
            message, hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_username, password=settings.smtp_password,
            start_tls=settings.smtp_starttls or None, use_tls=settings.smtp_tls,
            timeout=30)

    def send_later(self, mail: Mail) -> None:
        """Send in the background (see the module's docstring); `drain` waits for it."""
        task = asyncio.create_task(self._send_logged(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the messages still being sent (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _send_logged(self, mail: Mail) -> None:
        try:
            await self.send(mail)
        except Exception as exc:  # a lost mail must not crash the process
            log.warning("mail not sent", extra={"to_domain": mail.to.rpartition("@")[2],
                                                "error": type(exc).__name__})

    def _write(self, message: EmailMessage) -> None:
        outbox = Path(self.settings.mail_outbox_dir)
        outbox.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.eml"
        (outbox / name).write_bytes(bytes(message))
