"""Secrets in the config: how they are shown (a prefix at most) and where they are.

Secret fields are ``pydantic.SecretStr`` (``str()``/``repr()`` give ``**********``). Their values
come from ``${ENV}`` or ``<field>_file`` (monitor.config.loader) and must never reach a log line
or an error message: :func:`secret_values` lists them for the log redaction filter
(monitor.logging), which replaces each by :func:`model.secrets.redact`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

__all__ = ["secret_values", "MIN_SECRET_LENGTH"]

#: Shorter values are not registered for redaction: replacing every "ab" in every log line would
#: make logs unreadable and reveal nothing anyway.
MIN_SECRET_LENGTH = 4


def secret_values(config: Any) -> list[str]:
    """Collect the value of every ``SecretStr`` anywhere in ``config``.

    Walks pydantic models (including probe settings subclasses and sections of other parts),
    lists, tuples, sets and dict values.

    :param config: a :class:`~monitor.config.model.Config` or any model / container.
    :return: distinct non-empty secret values of at least :data:`MIN_SECRET_LENGTH` characters,
        in the order found.
    """
    out: list[str] = []
    seen: set[str] = set()
    for value in _walk(config, set()):
        if len(value) >= MIN_SECRET_LENGTH and value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _walk(obj: Any, visiting: set[int]) -> Iterable[str]:
    if isinstance(obj, SecretStr):
        yield obj.get_secret_value()
        return
    if isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return
    if id(obj) in visiting:
        return
    visiting.add(id(obj))
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk(getattr(obj, name, None), visiting)
        for extra in (obj.model_extra or {}).values():
            yield from _walk(extra, visiting)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v, visiting)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _walk(v, visiting)
