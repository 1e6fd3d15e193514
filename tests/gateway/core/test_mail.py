"""Outgoing mail: through a real SMTP server, or to the outbox directory without one."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from gateway.core.mail import Mail, Mailer
from tests.conftest import Inbox, make_settings


async def test_mail_goes_through_smtp_with_the_tenants_name_and_sender(
        tmp_path: Path, smtp_server: Inbox) -> None:
    mailer = Mailer(make_settings("sqlite+aiosqlite:///:memory:", tmp_path,
                                  smtp_host=smtp_server.host, smtp_port=smtp_server.port))
    to = "ana@mail-smtp.example"
    mailer.send_later(Mail(to=to, subject="Verify your address", sender_name="Acme Studio",
                           sender_address="hello@acme.example",
                           text="Open https://acme.example/verify?token=abc to verify."))
    received = await smtp_server.next(to)
    assert received["Subject"] == "Verify your address"
    assert received["From"].addresses[0].display_name == "Acme Studio"
    assert received["From"].addresses[0].addr_spec == "hello@acme.example"
    assert Inbox.link(received) == "https://acme.example/verify?token=abc"


async def test_without_smtp_mail_is_written_to_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    mailer = Mailer(make_settings("sqlite+aiosqlite:///:memory:", tmp_path,
                                  mail_outbox_dir=str(outbox)))
    await mailer.send(Mail(to="bo@example.com", subject="Hi", sender_name="Platform",
                           text="Body"))
    [written] = list(outbox.glob("*.eml"))
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["To"] == "bo@example.com"
    assert message["From"].addresses[0].addr_spec == "no-reply@mediahub.localhost"


async def test_a_failed_send_is_logged_without_the_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused.
    mailer = Mailer(make_settings("sqlite+aiosqlite:///:memory:", tmp_path,
                                  smtp_host="127.0.0.1", smtp_port=1))
    with caplog.at_level(logging.WARNING, logger="gateway.core.mail"):
        mailer.send_later(Mail(to="cy@example.org", subject="Reset", sender_name="T",
                               text="https://t.example/reset?token=SECRET-TOKEN"))
        await mailer.drain()
    [record] = [r for r in caplog.records if r.name == "gateway.core.mail"]
    assert record.getMessage() == "mail not sent"
    assert record.__dict__["to_domain"] == "example.org"
    assert "SECRET-TOKEN" not in caplog.text
