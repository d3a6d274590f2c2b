"""Secret redaction: a secret never reaches a log line, a metric, a notification or an
exception; a short prefix at most (``ck_live_...``).

The widths are policies of the callers: log lines keep 8 characters (:func:`redact`), notifier
errors 4, probe errors 6.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["secret_prefix", "scrub_secrets", "redact", "redact_url", "shown_url"]


def _value(secret: Any) -> str:
    return secret.get_secret_value() if hasattr(secret, "get_secret_value") else (secret or "")


def secret_prefix(secret: Any, keep: int = 6) -> str:
    """Return a loggable hint of a secret: its first ``keep`` characters and ``...``.

    Secrets shorter than ``2 * keep`` characters give ``"***"`` only, so a short key is never
    mostly revealed. ``None`` or an empty secret gives ``""``.

    :param secret: a ``pydantic.SecretStr`` or plain string.
    """
    value = _value(secret)
    if not value:
        return ""
    if len(value) < 2 * keep:
        return "***"
    return value[:keep] + "..."


def scrub_secrets(text: str, *secrets: Any, keep: int = 6) -> str:
    """Return ``text`` with every occurrence of each secret replaced by its :func:`secret_prefix`.

    Used on error strings built from vendor responses, which may echo a key back. Longer
    secrets are replaced first, so a secret containing another is not half-replaced.

    :param secrets: ``pydantic.SecretStr`` values, plain strings or ``None`` (ignored).
    :param keep: leading characters a replaced secret may keep (see :func:`secret_prefix`).
    """
    values = {_value(s) for s in secrets}
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, secret_prefix(value, keep))
    return text


def redact(value: str) -> str:
    """Return the stand-in a log line shows for a secret: a prefix at most.

    ``ck_live_1234567890abcdef`` -> ``ck_live_...`` (first 8 characters and ``...`` for values of
    16 characters or more); anything shorter -> ``***``.
    """
    return secret_prefix(value, keep=8) or "***"


def redact_url(text: str) -> str:
    """Return a URL as a message may show it: ``scheme://host[:port]/path``.

    User info (``user:password@``), query string and fragment are left out: they may hold a
    password or a token (``?token=...``). Text that is not URL-shaped (``not a url``) is cut
    the same way: at the first ``?`` or ``#``, after the last ``@``.

    ``htp://bob:pa55@example.com/x?token=abc`` -> ``htp://example.com/x``.
    """
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or not parts.netloc:
        base = text.split("?", 1)[0].split("#", 1)[0]
        scheme, sep, rest = base.partition("://")
        return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else base.rsplit("@", 1)[-1]
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else f"//{host}{parts.path}"


def shown_url(text: str) -> str:
    """Return ``"<redact_url(text)>"`` quoted for an error message, saying what was left out.

    ``"https://example.com/x" (user info and query not shown)``; just the quoted URL when
    nothing was left out.
    """
    shown = redact_url(text)
    return f'"{shown}"' if shown == text else f'"{shown}" (user info and query not shown)'
