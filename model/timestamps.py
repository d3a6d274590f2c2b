"""Timestamps: every instant in the project is float Unix **seconds** (UTC); this module turns
them into and out of RFC 3339 text at the edges (API, payloads, intake).

The sample store and PromQL count integer milliseconds, as Prometheus does; they convert at
their own edge (``seconds * 1000``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["rfc3339", "parse_rfc3339", "parse_api_time", "from_datetime", "to_datetime", "MAX_TIME",
           "ZERO_TIME"]

#: The largest API time (seconds) whose milliseconds fit an int64 (Prometheus ``maxTime``).
MAX_TIME = 9_223_309_901_257_974
#: Go's zero time as Alertmanager prints it for "no end" (``endsAt`` of a firing alert).
ZERO_TIME = "0001-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
_YEAR_10000 = 253_402_300_800.0  # 10000-01-01T00:00:00Z in Unix seconds


def rfc3339(t: float) -> str:
    """Format Unix seconds as RFC 3339 UTC with exactly three fraction digits
    (``2026-11-30T10:00:00.000Z``): the one timestamp shape of every API and payload.

    Rounds to the nearest millisecond (exact for whole-millisecond float seconds).
    """
    ms = math.floor(t * 1000 + 0.5)
    d = _EPOCH + timedelta(milliseconds=ms)
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: Any) -> float | None:
    """Parse an RFC 3339 timestamp into Unix seconds; ``None``, ``""`` and Go's zero time
    (year 1, Alertmanager's "unset") give ``None``. Fractions beyond microseconds are cut.

    :raises ValueError: ``invalid RFC 3339 time "<value>"`` (also for a time without zone).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f'invalid RFC 3339 time "{value}"')
    s = _FRACTION_RE.sub(r"\1", value.strip())
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f'invalid RFC 3339 time "{value}"') from None
    if t.tzinfo is None:
        raise ValueError(f'invalid RFC 3339 time "{value}" (no time zone)')
    if t.year <= 1:
        return None
    seconds = t.timestamp()
    if seconds >= _YEAR_10000:  # 9999-12-31T23:00:00-14:00 is past year 9999 in UTC: no RFC 3339 form
        raise ValueError(f'invalid RFC 3339 time "{value}" (out of range)')
    return seconds


def parse_api_time(text: str | None, default: float) -> float:
    """Parse a Prometheus HTTP API time: Unix seconds (``1700000000.5``) or RFC 3339;
    ``default`` when absent (Prometheus ``web/api/v1`` ``parseTime``).

    :raises ValueError: ``cannot parse "<text>" to a valid timestamp`` (neither form, NaN,
        infinite, or beyond :data:`MAX_TIME`).
    """
    if text is None or text == "":
        return default
    try:
        t = float(text)
    except ValueError:
        try:
            t = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError):
            raise ValueError(f'cannot parse "{text}" to a valid timestamp') from None
    if not -MAX_TIME <= t <= MAX_TIME:  # NaN, infinite (1e400) or beyond an int64 of ms
        raise ValueError(f'cannot parse "{text}" to a valid timestamp')
    return t


def from_datetime(t: datetime) -> float:
    """Return Unix seconds of an aware datetime.

    :raises ValueError: for a naive datetime (an instant needs a zone).
    """
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()} (an aware datetime is required)")
    return t.timestamp()


def to_datetime(t: float) -> datetime:
    """Return the aware UTC datetime of Unix seconds ``t`` (for calendar arithmetic only:
    schedules, time intervals, maintenance windows)."""
    return datetime.fromtimestamp(float(t), timezone.utc)
