"""Email over SMTP against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
from email import policy

import pytest

from monitor.config.receivers import EmailConfig
from monitor.errors import NotifyError
from monitor.notify.base import Message
from monitor.notify.email import EmailNotifier, build_email
from monitor.notify.templates import Templates
from tests.notify.notify_kit import assert_golden, assert_no_secret, firing_message, resolved_message
from tests.support.notify_servers import FakeSMTP
from tests.support.probe_servers import closed_port

PASSWORD = "smtp-pass-Very5ecretValue"
NOW = 1_800_000_000.0


def make(smarthost: str, *, timeout: float = 5.0, tls_context=None, **kw) -> EmailNotifier:
    kw.setdefault("require_tls", False)
    conf = EmailConfig(to="oncall@example.com", **{"from": "monitor@example.com"}, smarthost=smarthost,
                       timeout=timeout, **kw)
    return EmailNotifier(conf, clock=lambda: NOW, tls_context=tls_context)


def parts(raw: bytes) -> tuple[email.message.EmailMessage, str, str]:
    msg = email.message_from_bytes(raw, policy=policy.default)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_golden_text():
    conf = EmailConfig(to="oncall@example.com", **{"from": "monitor@example.com"}, smarthost="mail:25")
    for name, msg in (("email_firing", firing_message()), ("email_resolved", resolved_message())):
        mime = build_email(msg, conf, Templates(), now=NOW, to="oncall@example.com")
        assert_golden(name, {"subject": mime["Subject"], "text": mime.get_body(("plain",)).get_content()})


async def test_sends_multipart_text_and_html():
    with FakeSMTP() as smtp:
        n = make(smtp.smarthost)
        res = await n.notify(firing_message())
        assert res.meta["to"] == "oncall@example.com"
        sender, rcpts, raw = smtp.handler.messages[0]
        assert (sender, rcpts) == ("monitor@example.com", ["oncall@example.com"])
        msg, text, html = parts(raw)
        assert msg["Subject"] == "[FIRING:2] P0 ApiHighErrorRate (2 alerts): API 5xx ratio above 5%"
        assert msg.get_content_type() == "multipart/alternative"
        assert "Acknowledge: http://monitor.example/api/v1/links?token=abc.ack.1.sig" in text
        assert '<a href="http://monitor.example/api/v1/links?token=abc.ack.1.sig">Acknowledge</a>' in html


async def test_escalation_goes_to_the_person_and_html_is_escaped():
    with FakeSMTP() as smtp:
        alert = {"labels": {"alertname": "Evil"}, "annotations": {"summary": "<script>alert(1)</script>"}}
        await make(smtp.smarthost).notify(Message.build("escalation", "ops", [alert], recipient="cto@example.com"))
        _, rcpts, raw = smtp.handler.messages[0]
        assert rcpts == ["cto@example.com"]
        _, text, html = parts(raw)
        assert "<script>" in text and "<script>" not in html and "&lt;script&gt;" in html


async def test_starttls_and_auth():
    with FakeSMTP(users={"monitor": PASSWORD}, tls=True) as smtp:
        n = make(smtp.smarthost, require_tls=True, auth_username="monitor", auth_password=PASSWORD,
                 tls_context=smtp.client_context)
        await n.notify(firing_message())
        assert len(smtp.handler.messages) == 1


async def test_bad_password_is_permanent_and_not_leaked():
    with FakeSMTP(users={"monitor": "another-password"}) as smtp:
        n = make(smtp.smarthost, auth_username="monitor", auth_password=PASSWORD)
        with pytest.raises(NotifyError) as info:
            await n.notify(firing_message())
        assert not info.value.retryable and "535" in str(info.value)
        assert_no_secret(str(info.value), [PASSWORD])


async def test_require_tls_without_starttls_is_permanent():
    with FakeSMTP() as smtp:
        with pytest.raises(NotifyError) as info:
            await make(smtp.smarthost, require_tls=True).notify(firing_message())
        assert not info.value.retryable and "STARTTLS" in str(info.value)


@pytest.mark.parametrize("stage, reply, retryable", [
    ("rcpt", "450 4.2.1 Mailbox busy", True), ("rcpt", "550 5.1.1 No such user", False),
    ("data", "451 4.3.0 Try again later", True), ("data", "554 5.7.1 Rejected", False)])
async def test_reply_codes_decide(stage, reply, retryable):
    with FakeSMTP() as smtp:
        setattr(smtp.handler, f"{stage}_reply", reply)
        with pytest.raises(NotifyError) as info:
            await make(smtp.smarthost).notify(firing_message())
        assert info.value.retryable is retryable, str(info.value)
        assert reply[:3] in str(info.value)


async def test_refused_and_timeout_are_retryable():
    with pytest.raises(NotifyError) as info:
        await make(f"127.0.0.1:{closed_port()}").notify(firing_message())
    assert info.value.retryable

    async def silent(reader, writer):  # accepts, never greets
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NotifyError) as info:
            await make(f"127.0.0.1:{port}", timeout=0.3).notify(firing_message())
        assert info.value.retryable and "timed out" in str(info.value)
    finally:
        server.close()
