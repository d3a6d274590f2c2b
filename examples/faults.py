"""The faults of the sample backend: what is currently broken, and how to validate a change.

A :class:`Faults` value is what ``GET /faults`` returns and what ``POST /faults`` updates.
``POST`` merges: the keys given replace their current value, the others keep theirs;
``DELETE /faults`` restores :meth:`Faults.healthy`.

Example body for ``POST /faults``::

    {"error_rate": 0.5, "extra_latency_seconds": 2, "health": "degraded",
     "checks": {"pinecone": "unhealthy"}, "llm_error_rate": 0.2,
     "vendor_status": {"llm": 429}}

Every invalid value is reported at once, one message per key (:class:`FaultsError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

HEALTH_STATES = ("healthy", "degraded", "unhealthy")
"""The states of ``/health``'s ``status`` and of each entry of ``checks``."""

CHECK_NAMES = ("database", "pinecone", "llm")
"""The dependencies reported in ``/health``'s ``checks``."""

VENDOR_NAMES = ("llm", "pinecone")
"""The vendor stand-ins whose HTTP status can be forced with ``vendor_status``."""

_KEYS = (
    "error_rate",
    "extra_latency_seconds",
    "health",
    "checks",
    "llm_error_rate",
    "vendor_status",
)

#: The most latency a fault may add (seconds): more only hangs the backend.
MAX_EXTRA_LATENCY = 600.0


class FaultsError(ValueError):
    """A ``POST /faults`` body that does not validate; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class Faults:
    """The faults applied to the sample backend's traffic and ``/health``.

    :ivar error_rate: probability (0..1) that an API request answers 500.
    :ivar extra_latency_seconds: seconds (>= 0) added to every API request's latency.
    :ivar health: forced ``/health`` status, or None to derive it from ``checks``.
    :ivar checks: per-dependency state for ``/health``'s ``checks`` (missing = healthy).
    :ivar llm_error_rate: probability (0..1) that a synthetic LLM provider call fails.
    :ivar vendor_status: HTTP status the vendor stand-ins answer with (``llm``, ``pinecone``).
    """

    error_rate: float = 0.0
    extra_latency_seconds: float = 0.0
    health: str | None = None
    checks: dict[str, str] = field(default_factory=dict)
    llm_error_rate: float = 0.0
    vendor_status: dict[str, int] = field(default_factory=dict)

    @classmethod
    def healthy(cls) -> "Faults":
        """Return the fault-free state."""
        return cls()

    def check_states(self) -> dict[str, str]:
        """Return the state of every dependency (``database``, ``pinecone``, ``llm``)."""
        return {name: self.checks.get(name, "healthy") for name in CHECK_NAMES}

    def health_status(self) -> str:
        """Return ``/health``'s overall status.

        The forced ``health`` wins; otherwise an unhealthy database makes the backend
        ``unhealthy``, and any other non-healthy dependency makes it ``degraded``.
        """
        if self.health is not None:
            return self.health
        states = self.check_states()
        if states["database"] == "unhealthy":
            return "unhealthy"
        if any(state != "healthy" for state in states.values()):
            return "degraded"
        return "healthy"

    def effective_error_rate(self) -> float:
        """Return the API error probability: 1 while the database is unhealthy, else ``error_rate``."""
        if self.check_states()["database"] == "unhealthy":
            return 1.0
        return self.error_rate

    def effective_llm_error_rate(self) -> float:
        """Return the LLM call error probability: 1 while the ``llm`` check is unhealthy."""
        if self.check_states()["llm"] == "unhealthy":
            return 1.0
        return self.llm_error_rate

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape served by ``GET /faults`` (with the derived status)."""
        return {
            "error_rate": self.error_rate,
            "extra_latency_seconds": self.extra_latency_seconds,
            "health": self.health,
            "checks": dict(self.checks),
            "llm_error_rate": self.llm_error_rate,
            "vendor_status": dict(self.vendor_status),
            "effective": {
                "status": self.health_status(),
                "checks": self.check_states(),
                "error_rate": self.effective_error_rate(),
                "llm_error_rate": self.effective_llm_error_rate(),
            },
        }

    def merged(self, body: Any) -> "Faults":
        """Return a copy with the keys of ``body`` applied (``POST /faults`` semantics).

        ``checks`` and ``vendor_status`` merge key by key; ``null`` for ``health`` returns it to
        being derived, ``null`` for a check or vendor removes the override.

        :raises FaultsError: listing every invalid key and value.
        """
        if not isinstance(body, dict):
            raise FaultsError([f"expected a JSON object with any of {', '.join(_KEYS)}"])
        errors: list[str] = []
        changes: dict[str, Any] = {}
        for key in body:
            if key not in _KEYS:
                errors.append(f"unknown key {key!r}; expected any of {', '.join(_KEYS)}")
        for key in ("error_rate", "llm_error_rate"):
            if key in body:
                value = _number(body[key])
                if value is None or not 0.0 <= value <= 1.0:
                    errors.append(f"{key}: expected a number between 0 and 1, got {body[key]!r}")
                else:
                    changes[key] = value
        if "extra_latency_seconds" in body:
            value = _number(body["extra_latency_seconds"])
            if value is None or not 0 <= value <= MAX_EXTRA_LATENCY:
                errors.append(
                    f"extra_latency_seconds: expected a number of seconds from 0 to {MAX_EXTRA_LATENCY:g}, "
                    f"got {body['extra_latency_seconds']!r}"
                )
            else:
                changes["extra_latency_seconds"] = value
        if "health" in body:
            if body["health"] is not None and body["health"] not in HEALTH_STATES:
                errors.append(
                    f"health: expected one of {', '.join(HEALTH_STATES)} (or null), got {body['health']!r}"
                )
            else:
                changes["health"] = body["health"]
        if "checks" in body:
            checks = _merge_map(
                "checks", body["checks"], self.checks, CHECK_NAMES, _check_state, errors
            )
            if checks is not None:
                changes["checks"] = checks
        if "vendor_status" in body:
            statuses = _merge_map(
                "vendor_status", body["vendor_status"], self.vendor_status, VENDOR_NAMES, _http_status, errors
            )
            if statuses is not None:
                changes["vendor_status"] = statuses
        if errors:
            raise FaultsError(errors)
        return replace(self, **changes)


def _number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None when it is not a JSON number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check_state(value: Any) -> str | None:
    return value if value in HEALTH_STATES else None


def _http_status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    return None


def _merge_map(key, body, current, names, convert, errors) -> dict | None:
    """Merge a ``{name: value}`` override map; ``null`` removes an entry. Errors go to ``errors``."""
    if not isinstance(body, dict):
        errors.append(f"{key}: expected an object keyed by {', '.join(names)}, got {body!r}")
        return None
    merged = dict(current)
    ok = True
    for name, value in body.items():
        if name not in names:
            errors.append(f"{key}.{name}: unknown name; expected any of {', '.join(names)}")
            ok = False
        elif value is None:
            merged.pop(name, None)
        elif convert(value) is None:
            expected = ", ".join(HEALTH_STATES) if key == "checks" else "an HTTP status code 100..599"
            errors.append(f"{key}.{name}: expected {expected}, got {value!r}")
            ok = False
        else:
            merged[name] = convert(value)
    return merged if ok else None
