"""Email over SMTP: multipart text + HTML from templates, stdlib ``smtplib`` in a thread.

Session (RFC 5321): ``EHLO``; ``STARTTLS`` + ``EHLO`` when ``require_tls`` (RFC 3207; fails
permanently if the server does not offer it); ``AUTH`` when ``auth_username`` is set
(RFC 4954); ``MAIL FROM`` / ``RCPT TO`` / ``DATA``. Port 465 uses implicit TLS.
Reply codes decide retries as RFC 5321 section 4.2.1 says: 4yz transient (retryable),
5yz permanent; disconnects, refused connections and timeouts are retryable.
Shape after Alertmanager ``notify/email/email.go``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from monitor.config.receivers import EmailConfig
from monitor.errors import NotifyError
from monitor.notify.base import Message, NotifyResult
from monitor.notify.retry import redact, transport_error, trim
from monitor.notify.templates import Templates


def build_email(message: Message, conf: EmailConfig, templates: Templates, *, now: float,
                to: str) -> EmailMessage:
    """Return the MIME message (``multipart/alternative``: text/plain then text/html)."""
    msg = EmailMessage()
    if message.kind == "maintenance":  # a notice to a client contact: plain text, no alert fields
        msg["Subject"] = " ".join(message.title.split())[:998]
        msg["From"] = conf.from_
        msg["To"] = to
        msg["Date"] = formatdate(now, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=conf.from_.rpartition("@")[2] or "codebook-monitor")
        msg.set_content(templates.render("email_maintenance.txt.j2", message) + "\n")
        return msg
    msg["Subject"] = " ".join(templates.render("email_subject.j2", message).split())[:998]
    msg["From"] = conf.from_
    msg["To"] = to
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=conf.from_.rpartition("@")[2] or "codebook-monitor")
    msg["X-Codebook-Fingerprints"] = ",".join(message.fingerprints)[:900]
    msg.set_content(templates.render("email_text.txt.j2", message) + "\n")
    msg.add_alternative(templates.render("email_html.html.j2", message) + "\n", subtype="html")
    return msg


def _classify(exc: BaseException, secrets: list[str]) -> NotifyError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        retryable = bool(codes) and all(400 <= c < 500 for c in codes)
        return NotifyError(redact(f"email: recipients refused: {codes}", secrets), retryable=retryable)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        retryable = 400 <= exc.smtp_code < 500
        return NotifyError(redact(f"email: SMTP {exc.smtp_code}: {trim(text)}", secrets), retryable=retryable)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return NotifyError(redact(f"email: {exc}", secrets), retryable=False)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)):
        return transport_error(exc, what="email", secrets=secrets)
    return NotifyError(redact(f"email: {type(exc).__name__}: {trim(str(exc))}", secrets), retryable=False)


class EmailNotifier:
    """Send templated email through an SMTP smarthost.

    :param conf: the ``email_configs`` entry.
    :param templates: the template set (defaults when ``None``).
    :param clock: unix-seconds clock (``Date`` header).
    :param tls_context: the SSL context for STARTTLS / implicit TLS (system defaults otherwise).

    Escalation messages carry the person's address as ``message.recipient``.
    """

    def __init__(self, conf: EmailConfig, *, templates: Templates | None = None,
                 clock: Callable[[], float] = time.time, tls_context: ssl.SSLContext | None = None) -> None:
        self.conf = conf
        self.send_resolved = conf.send_resolved
        self.templates = templates or Templates()
        self._password = conf.auth_password.get_secret_value() if conf.auth_password else ""
        self._clock = clock
        self._tls = tls_context

    def secrets(self) -> list[str]:
        """Return the SMTP password."""
        return [self._password] if self._password else []

    async def aclose(self) -> None:
        """Nothing to close: each send opens and closes its own SMTP session."""

    async def notify(self, message: Message) -> NotifyResult:
        """Send one email; return ``{"to", "message_id"}``.

        :raises NotifyError: 4yz/disconnect/timeout retryable, 5yz and no-STARTTLS permanent.
        """
        if message.kind == "handoff":  # handoff announcements are Slack-only
            return NotifyResult(skipped=True)
        to = message.recipient or self.conf.to
        if not to:
            raise NotifyError("email: no recipient configured and none given", retryable=False)
        try:
            mime = build_email(message, self.conf, self.templates, now=self._clock(), to=to)
        except Exception as exc:  # noqa: BLE001 - a broken user template is a config problem: permanent
            raise NotifyError(redact(f"email: template error: {exc}", self.secrets()), retryable=False) from None
        rcpts = [a.strip() for a in to.split(",") if a.strip()]
        try:
            await asyncio.to_thread(self._send, mime, rcpts)
        except NotifyError:
            raise
        except Exception as exc:  # noqa: BLE001 - smtplib raises many types; _classify sorts them
            raise _classify(exc, self.secrets()) from None
        return NotifyResult(meta={"to": to, "message_id": mime["Message-ID"]})

    def _send(self, mime: EmailMessage, rcpts: list[str]) -> None:
        conf = self.conf
        if self._tls is None and (conf.port == 465 or conf.require_tls):
            self._tls = ssl.create_default_context()  # built once: ~25 ms of CPU each time
        ctx = self._tls
        if conf.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(conf.host, conf.port, local_hostname=conf.hello,
                                                  timeout=conf.timeout, context=ctx)
        else:
            smtp = smtplib.SMTP(conf.host, conf.port, local_hostname=conf.hello, timeout=conf.timeout)
        with smtp:
            smtp.ehlo()
            if conf.require_tls and conf.port != 465:
                if not smtp.has_extn("starttls"):
                    raise NotifyError("email: require_tls is set but the server does not offer STARTTLS",
                                      retryable=False)
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if conf.auth_username:
                smtp.login(conf.auth_username, self._password)
            smtp.send_message(mime, from_addr=conf.from_, to_addrs=rcpts)
