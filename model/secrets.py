"""Secret redaction: a secret never reaches a log line, a metric, a notification or an
exception; a short prefix at most (``ck_live_...``).

The widths are policies of the callers: log lines keep 8 characters (:func:`redact`), notifier
errors 4, probe errors 6.
"""

from __future__ import annotations

from typing import Any

__all__ = ["secret_prefix", "scrub_secrets", "redact"]


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
