"""The one retry policy every channel uses: classify a response, back off, redact secrets.

* 2xx: done.
* 5xx and 429: retryable; 429 (and 503) honour ``Retry-After`` given in seconds or as an
  HTTP date (RFC 9110 section 10.2.3).
* Timeouts and connection errors: retryable.
* Other 4xx: permanent, surfaced once with the status and a trimmed body.
* Every error string is passed through :func:`redact` with the notifier's secret values.

Backoff is exponential with *full jitter* (``delay = U(0, min(cap, base * 2**attempt))``,
AWS Architecture Blog "Exponential Backoff And Jitter"); the random source is injected so
tests are deterministic.

Shape after Alertmanager ``notify/util.go`` (``Retrier.Check``: 5xx retried, 4xx not, body
trimmed) and ``config/config.go`` (secret URL redaction); Alertmanager leaves 429 to
per-integration config, we always retry it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

import httpx

from monitor.errors import NotifyError
from model.secrets import scrub_secrets

#: How much of a response body goes into an error message (characters).
BODY_LIMIT = 256


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret in ``text`` with a short prefix and ``...``
    (at most 4 leading characters, ``"xoxb..."``; ``"***"`` for short values), so a secret is
    never recoverable from a log line or an error message (:func:`model.secrets.scrub_secrets`).
    """
    return scrub_secrets(text, *secrets, keep=4)


def url_secrets(url: str) -> list[str]:
    """Return the pieces of a secret URL that must not leak on their own.

    A server echoing the request line shows the path and query, not the whole URL, so the
    whole URL, its path + query, the password of its userinfo, and every path segment or
    query value of 12+ characters (tokens) are all treated as secrets.
    """
    parts = urlsplit(url)
    out = [url]
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(tail) > 1:
        out.append(tail)
    if parts.password:
        out.append(parts.password)
    out += [seg for seg in parts.path.split("/") if len(seg) >= 12]
    out += [v for _, v in parse_qsl(parts.query) if len(v) >= 12]
    return out


def trim(body: str | bytes, limit: int = BODY_LIMIT) -> str:
    """Return ``body`` as text, cut to ``limit`` characters with a marker when longer."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = " ".join(body.split())
    return body if len(body) <= limit else body[:limit] + f"... ({len(body)} chars)"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds to wait from a ``Retry-After`` header, or ``None``.

    :param value: ``"120"`` (delta-seconds) or an HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
    :param now: the current time in unix seconds (for the date form); wall clock when ``None``.
    :return: seconds, never negative; ``None`` when absent or unparseable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ref = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, when.timestamp() - ref)


def check_status(status: int, body: str | bytes, headers: Mapping[str, str] | None = None, *,
                 what: str, secrets: Iterable[str | None] = (), now: float | None = None) -> None:
    """Return if ``status`` is 2xx; otherwise raise the classified :class:`NotifyError`.

    :param status: the HTTP status code.
    :param body: the response body (trimmed into the message).
    :param headers: response headers (``Retry-After`` is read case-insensitively).
    :param what: a short description for the message, e.g. ``"pagerduty"``.
    :param secrets: values to redact from the message.
    :raises NotifyError: retryable for 429 and 5xx (with ``retry_after``), permanent otherwise.
    """
    if 200 <= status < 300:
        return
    retry_after = None
    if headers is not None:
        lowered = {k.lower(): v for k, v in headers.items()}
        retry_after = parse_retry_after(lowered.get("retry-after"), now)
    retryable = status == 429 or status >= 500
    msg = redact(f"{what}: unexpected status code {status}: {trim(body)}", secrets)
    raise NotifyError(msg, retryable=retryable, retry_after=retry_after if retryable else None)


def transport_error(exc: BaseException, *, what: str, secrets: Iterable[str | None] = ()) -> NotifyError:
    """Translate a network-level exception (timeout, refused, reset) into a retryable error."""
    kind = "timeout" if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)) \
        else "connection error"
    detail = str(exc) or type(exc).__name__
    return NotifyError(redact(f"{what}: {kind}: {trim(detail)}", secrets), retryable=True)


async def send_http(client: httpx.AsyncClient, method: str, url: str, *, what: str,
                    secrets: Iterable[str | None] = (), now: float | None = None,
                    **kwargs) -> httpx.Response:
    """Send one HTTP request with ``client`` and classify the outcome.

    :return: the 2xx response.
    :raises NotifyError: as :func:`check_status` and :func:`transport_error` decide.
    """
    secrets = list(secrets)
    try:
        resp = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:  # timeouts, refused, reset, protocol errors
        raise transport_error(exc, what=what, secrets=secrets) from None
    check_status(resp.status_code, resp.content, resp.headers, what=what, secrets=secrets, now=now)
    return resp


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, capped low (20 s) so a vendor that recovers gets its
    pending messages within 30 s (a 300 s cap with full jitter left pages 153 s late).

    The delay is drawn from ``[ceiling / 2, ceiling]`` ("equal jitter"): spread enough to avoid
    a thundering herd, never zero.

    :param base: the first attempt's ceiling in seconds.
    :param cap: the largest ceiling in seconds.
    :param rng: a ``() -> float in [0, 1)`` source (``random.random`` by default).

    >>> Backoff(base=2, cap=60, rng=lambda: 0.5).delay(3)
    12.0
    """

    base: float = 5.0
    cap: float = 20.0
    rng: Callable[[], float] = random.random

    def ceiling(self, attempt: int) -> float:
        """Return the upper bound of the delay after ``attempt`` failures (0-based), in seconds."""
        return min(self.cap, self.base * (2 ** max(0, min(attempt, 62))))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the delay in seconds before the next attempt.

        :param attempt: failures so far minus one (0 after the first failure).
        :param retry_after: the receiver's ``Retry-After`` in seconds; when given it is the
            delay (the server's word beats our guess, even beyond ``cap``).
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.rng() * ceiling / 2
