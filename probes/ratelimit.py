"""The LLM providers' rate-limit headers, parsed into remaining / limit / reset per resource.

Wire formats (the providers' "Rate limits" documentation):

- OpenAI: ``x-ratelimit-limit-{requests,tokens}``, ``x-ratelimit-remaining-{requests,tokens}``,
  ``x-ratelimit-reset-{requests,tokens}``; the reset is a Go-style duration until the window
  refills, e.g. ``6m0s``, ``1s``, ``17ms``, ``1h2m3.5s``.
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
  reset}``; the reset is an RFC 3339 time, e.g. ``2025-08-21T12:40:59Z``.

A value of ``-1`` (or one that does not parse) means unknown and is left out. The resource
label is the header's own word: ``requests``, ``tokens``, ``input-tokens``, ``output-tokens``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probes.base import ProbeResult

OPENAI_RESOURCES = ("requests", "tokens")
ANTHROPIC_RESOURCES = ("requests", "tokens", "input-tokens", "output-tokens")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class RateLimit:
    """One resource's rate limit as the provider reported it; None where unknown.

    :ivar limit: requests or tokens allowed per window.
    :ivar remaining: what is left in the current window.
    :ivar reset_at: Unix time at which the window refills.
    """

    limit: float | None
    remaining: float | None
    reset_at: float | None


def parse_go_duration(text: str) -> float | None:
    """Parse a Go duration (``6m0s``, ``17ms``, ``1h2m3.5s``, ``0s``) to seconds; None if it is not one."""
    text = text.strip()
    if text in ("0", "-1", ""):
        return 0.0 if text == "0" else None
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def parse_rfc3339(text: str) -> float | None:
    """Parse an RFC 3339 time (``2025-08-21T12:40:59Z``) to Unix time; None if it is not one."""
    try:
        at = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return None if value < 0 else value


def parse_ratelimits(provider: str, headers: Mapping[str, str], now: float) -> dict[str, RateLimit]:
    """Return ``{resource: RateLimit}`` for every resource with at least one known value.

    :param provider: ``openai`` (and OpenAI-compatible servers) or ``anthropic``.
    :param headers: the response headers (case-insensitive mapping, e.g. ``httpx.Headers``).
    :param now: Unix time of the answer, the origin of OpenAI's relative reset durations.
    """
    out: dict[str, RateLimit] = {}
    if provider == "anthropic":
        for res in ANTHROPIC_RESOURCES:
            reset_text = headers.get(f"anthropic-ratelimit-{res}-reset")
            found = RateLimit(_number(headers.get(f"anthropic-ratelimit-{res}-limit")),
                              _number(headers.get(f"anthropic-ratelimit-{res}-remaining")),
                              parse_rfc3339(reset_text) if reset_text else None)
            if found != RateLimit(None, None, None):
                out[res] = found
        return out
    for res in OPENAI_RESOURCES:
        reset_text = headers.get(f"x-ratelimit-reset-{res}")
        seconds = parse_go_duration(reset_text) if reset_text else None
        found = RateLimit(_number(headers.get(f"x-ratelimit-limit-{res}")),
                          _number(headers.get(f"x-ratelimit-remaining-{res}")),
                          None if seconds is None else now + seconds)
        if found != RateLimit(None, None, None):
            out[res] = found
    return out


def export_ratelimits(result: ProbeResult, limits: dict[str, RateLimit], horizon: float) -> None:
    """Add ``probe_llm_ratelimit_*{resource}`` samples for the known values of ``limits``."""
    for res, rl in limits.items():
        if rl.limit is not None:
            result.add("probe_llm_ratelimit_limit", rl.limit, resource=res)
        if rl.remaining is not None:
            result.add("probe_llm_ratelimit_remaining", rl.remaining, resource=res)
            result.add("probe_llm_ratelimit_horizon_seconds", horizon, resource=res)
            if rl.limit:
                result.add("probe_llm_ratelimit_remaining_ratio", rl.remaining / rl.limit, resource=res)
        if rl.reset_at is not None:
            result.add("probe_llm_ratelimit_reset_timestamp_seconds", rl.reset_at, resource=res)
