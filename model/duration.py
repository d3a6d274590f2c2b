"""Durations: Prometheus duration strings <-> float seconds.

Semantics of Prometheus ``common/model/time.go`` (``ParseDuration``, ``Duration.String``):
units ``y`` (365 days), ``w``, ``d``, ``h``, ``m``, ``s``, ``ms``, largest first, each at most
once. Every duration in the project is float **seconds**.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

__all__ = ["parse_duration", "format_duration", "Duration", "PositiveDuration", "MAX_DURATION_SECONDS"]

_DURATION_RE = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
#: The longest duration accepted (10 years): beyond it timers and schedulers overflow.
MAX_DURATION_SECONDS = 10 * 365 * 86400


def parse_duration(text: str | int | float, *, numbers: bool = True) -> float:
    """Parse a Prometheus-style duration (``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d``) into seconds.

    :param numbers: accept plain non-negative numbers (and numeric strings other than ``0``
        only as duration strings) as seconds; rule files pass ``False``, as Prometheus takes
        duration strings only there.
    :return: the duration in seconds (float, >= 0, at most :data:`MAX_DURATION_SECONDS`).
    :raises ValueError: ``expected a duration such as 30s, got "<text>"``, or
        ``expected a duration of at most 10y, got "<text>"``.
    """
    if isinstance(text, bool) or (isinstance(text, (int, float)) and not numbers):
        raise ValueError(f'expected a duration such as 30s, got "{text}"')
    if isinstance(text, (int, float)):
        if not text >= 0 or text == float("inf"):  # negative, NaN or infinite
            raise ValueError(f'expected a duration such as 30s, got "{text}"')
        return _at_most_max(float(text), text)
    s = str(text).strip()
    if s == "0":
        return 0.0
    m = _DURATION_RE.match(s)
    if not s or not m:
        raise ValueError(f'expected a duration such as 30s, got "{text}"')
    total = 0.0
    for i, unit in enumerate(_UNITS):
        g = m.group(2 * i + 2)
        if g:
            total += int(g) * unit
    return _at_most_max(total, text)


def _at_most_max(seconds: float, text: object) -> float:
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f'expected a duration of at most 10y, got "{text}"')
    return seconds


def format_duration(seconds: float) -> str:
    """Format seconds like Prometheus ``model.Duration.String()``: ``90`` -> ``1m30s``,
    ``14 * 86400`` -> ``2w``, ``0`` -> ``0s``; below a millisecond rounds to the nearest one."""
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000),
                       ("m", 60_000), ("s", 1000), ("ms", 1)):
        q, ms = divmod(ms, size)
        if q:
            out.append(f"{q}{unit}")
    return "".join(out)


def _duration(v: Any) -> float:
    return parse_duration(v)


#: A pydantic field type: a Prometheus duration string (or number of seconds) -> float seconds.
Duration = Annotated[float, BeforeValidator(_duration)]
#: A duration that must be strictly positive.
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
