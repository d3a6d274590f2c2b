"""The daemon's own health document, served on ``GET /health``, and the paging path's self-checks.

Shape (the Codebook backend's health guide)::

    {"status": "healthy" | "degraded", "timestamp": "<RFC 3339, milliseconds>", "version": "0.1.0",
     "checks": {"scheduler": ..., "config": ..., "tsdb": ..., "rules": ..., "rule_evaluation": ...,
                "outbox": ..., "leader": true | false}}

Each check is ``healthy`` or ``degraded`` (the scheduler: ``unhealthy`` when stopped); the status
is ``healthy`` when every check is. ``leader`` is informative only: a follower is healthy too.

``config`` is ``degraded: config reload failed: <first error> (and N more), running the config
loaded at <RFC 3339>`` after a rejected reload (:func:`config_problem`), until a reload succeeds.
The daemon keeps running the last good config, so that alone is not a failing daemon: ``/health``
then answers HTTP 200 with ``status`` ``degraded`` (:data:`NOT_FAILING`, read by
``monitor.api.management``); any other degraded check answers 503. Liveness (``/-/healthy``)
answers 200 whatever the checks say.

The two self-monitoring checks say why they are not healthy, after ``degraded:``
(:class:`PagingPathChecks`; the heartbeat, :mod:`monitor.daemon.heartbeat`, stops on them too):

* ``rule_evaluation`` — a rule group has not been evaluated for :data:`STALL_FACTOR` times its
  interval: ``degraded: group "api" (rules/api.yaml) not evaluated for 47 s (interval 15 s)``;
* ``outbox`` — notifications cannot be delivered: the oldest pending one is older than
  ``health.outbox_max_age``, or one has failed ``health.outbox_max_attempts`` times, or the outbox
  cannot be read: ``degraded: 8 notifications pending, oldest 300 s (limit 120 s)``.

The outbox is read by a scheduler job every :data:`OUTBOX_CHECK_INTERVAL` seconds, never by the
``/health`` request itself, so the answer never waits on the state store; a reading that has not
been renewed for :data:`OUTBOX_STALE_AFTER` seconds is itself a cause (the job or the store hangs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from monitor import __version__
from monitor.config.model import HealthConfig
from monitor.rules.manager import RuleManager
from monitor.tsdb.store import SampleStore

log = logging.getLogger("monitor.health")

#: Seconds between reads of the outbox backlog.
OUTBOX_CHECK_INTERVAL = 5.0
#: Seconds one read of the outbox may take before it counts as failed.
OUTBOX_READ_TIMEOUT = 10.0
#: Seconds after which an outbox reading that was not renewed is a cause itself.
OUTBOX_STALE_AFTER = 6 * OUTBOX_CHECK_INTERVAL
#: A rule group not evaluated for this many of its intervals has stalled.
STALL_FACTOR = 3.0
#: Causes named in full in one check value; the rest are counted.
MAX_NAMED = 3

HEALTHY = "healthy"
#: Checks whose degradation alone leaves ``/health`` at HTTP 200: the daemon does its work.
NOT_FAILING = frozenset({"config"})
#: Characters of the first reload error kept in the ``config`` check.
CONFIG_ERROR_CHARS = 300


def config_problem(errors: list[str], loaded_at: float) -> str:
    """Return the ``config`` check's cause after a rejected reload.

    :param errors: the reload's errors, formatted (``file:line:col: path: message``).
    :param loaded_at: Unix seconds when the running config was loaded.
    :return: e.g. ``config reload failed: monitor.yaml:3:5: ...: undefined receiver "x" (and 2 more
        errors), running the config loaded at 2026-12-04T23:50:01.123+00:00``.
    """
    first = errors[0] if errors else "unknown error"
    if len(first) > CONFIG_ERROR_CHARS:
        first = first[: CONFIG_ERROR_CHARS - 3] + "..."
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    since = datetime.fromtimestamp(loaded_at, timezone.utc).isoformat(timespec="milliseconds")
    return f"config reload failed: {first}{more}, running the config loaded at {since}"


@dataclass(frozen=True, slots=True)
class OutboxReading:
    """One read of the outbox backlog (:meth:`monitor.store.base.Store.outbox_backlog`).

    :ivar at: when it was read (unix seconds).
    :ivar pending: notifications not yet delivered.
    :ivar oldest_created_at: when the oldest of them was due (unix seconds), or ``None``.
    :ivar max_attempts: the most failed delivery attempts of any of them.
    :ivar error: why the read failed (then the counts are 0), else ``""``.
    """

    at: float
    pending: int = 0
    oldest_created_at: float | None = None
    max_attempts: int = 0
    error: str = ""


class PagingPathChecks:
    """Whether the paging path works: rule evaluation keeps its schedule and notifications leave
    the outbox. Read by ``/health`` and by the heartbeat.

    :param rules: the rule manager whose groups' ``last_evaluation`` is checked.
    :param settings: returns the current ``health:`` section (read at every check, so a reload
        applies at once).
    :param clock: unix-seconds clock.

    Usage (the daemon does this)::

        checks = PagingPathChecks(daemon.rules, lambda: config.health)
        await checks.read_outbox(state_store)     # every OUTBOX_CHECK_INTERVAL seconds
        checks.problems()                          # {} or {"outbox": "8 notifications pending, ..."}
    """

    def __init__(self, rules: RuleManager, settings: Callable[[], HealthConfig], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules = rules
        self._settings = settings
        self.clock = clock
        self.outbox_reading: OutboxReading | None = None
        self._created = clock()
        # When each group was first seen without an evaluation (the reference until it has one).
        self._first_seen: dict[tuple[str, str], float] = {}

    # -- outbox -------------------------------------------------------------------------------

    async def read_outbox(self, store: Any) -> OutboxReading:
        """Read the outbox backlog from ``store`` (bounded by :data:`OUTBOX_READ_TIMEOUT`) and keep it.

        A failed or timed-out read is kept as a reading with ``error`` set (a cause of its own).

        :param store: the state store (:class:`monitor.store.base.Store`), or ``None`` before it
            is open (nothing is read).
        """
        if store is None:
            return self.outbox_reading or OutboxReading(self.clock())
        try:
            row = await asyncio.wait_for(store.outbox_backlog(), OUTBOX_READ_TIMEOUT)
            reading = OutboxReading(self.clock(), int(row["pending"]), row["oldest_created_at"],
                                    int(row["max_attempts"]))
        except asyncio.CancelledError:
            raise
        except (TimeoutError, asyncio.TimeoutError):
            reading = OutboxReading(self.clock(), error=f"reading it took over {OUTBOX_READ_TIMEOUT:.0f} s")
        except Exception as exc:  # noqa: BLE001 - any failure to read is a degraded outbox, never a crash
            reading = OutboxReading(self.clock(), error=f"{type(exc).__name__}: {exc}"[:300])
        previous = self.outbox_reading
        if reading.error and (previous is None or not previous.error):
            log.warning("cannot read the outbox backlog", extra={"error": reading.error})
        elif previous is not None and previous.error and not reading.error:
            log.info("outbox backlog readable again")
        self.outbox_reading = reading
        return reading

    def outbox_problem(self, now: float | None = None) -> str | None:
        """Return why notifications cannot be delivered, or ``None`` when they can."""
        now = self.clock() if now is None else now
        settings = self._settings()
        r = self.outbox_reading
        if r is None:
            waited = now - self._created
            return f"not read since the start {waited:.0f} s ago" if waited > OUTBOX_STALE_AFTER else None
        if now - r.at > OUTBOX_STALE_AFTER:
            return f"not read for {now - r.at:.0f} s"
        if r.error:
            return f"cannot be read: {r.error}"
        parts = []
        age = now - r.oldest_created_at if r.oldest_created_at is not None else 0.0
        if r.pending and age > settings.outbox_max_age:
            parts.append(f"oldest {age:.0f} s (limit {settings.outbox_max_age:.0f} s)")
        if r.pending and r.max_attempts >= settings.outbox_max_attempts:
            parts.append(f"one failed {r.max_attempts} times (limit {settings.outbox_max_attempts})")
        if not parts:
            return None
        noun = "notification" if r.pending == 1 else "notifications"
        return f"{r.pending} {noun} pending, " + ", ".join(parts)

    # -- rule evaluation ----------------------------------------------------------------------

    def rule_evaluation_problem(self, now: float | None = None) -> str | None:
        """Return which rule groups have stalled (not evaluated for :data:`STALL_FACTOR` times
        their interval), or ``None`` when every group keeps its schedule.

        A group never evaluated yet is measured from when this check first saw it.
        """
        now = self.clock() if now is None else now
        stalled: list[str] = []
        seen: set[tuple[str, str]] = set()
        for g in self.rules.groups():
            seen.add(g.key)
            if g.last_evaluation is not None:
                self._first_seen.pop(g.key, None)
                since, what = g.last_evaluation, "not evaluated for"
            else:
                since = self._first_seen.setdefault(g.key, now)
                what = "never evaluated since it was loaded"
            age = now - since
            if age > STALL_FACTOR * g.interval:
                stalled.append(f'group "{g.name}" ({g.file}) {what} {age:.0f} s (interval {g.interval:g} s)')
        for key in set(self._first_seen) - seen:
            del self._first_seen[key]
        if not stalled:
            return None
        more = len(stalled) - MAX_NAMED
        return "; ".join(stalled[:MAX_NAMED]) + (f"; and {more} more" if more > 0 else "")

    # -- both -----------------------------------------------------------------------------------

    def problems(self, now: float | None = None) -> dict[str, str]:
        """Return ``{check: cause}`` for each self-check that is not healthy (empty when all are).

        Check names: ``rule_evaluation``, ``outbox``.
        """
        now = self.clock() if now is None else now
        found = {"rule_evaluation": self.rule_evaluation_problem(now), "outbox": self.outbox_problem(now)}
        return {name: cause for name, cause in found.items() if cause is not None}

    def checks(self, now: float | None = None) -> dict[str, str]:
        """Return ``{check: "healthy" | "degraded: <cause>"}`` for the health document."""
        problems = self.problems(now)
        return {name: f"degraded: {problems[name]}" if name in problems else HEALTHY
                for name in ("rule_evaluation", "outbox")}


def health_document(*, scheduler_running: bool, config_problem: str | None, store: SampleStore, rules: RuleManager,
                    is_leader: bool, paging: PagingPathChecks | None = None) -> dict[str, Any]:
    """Return the health document.

    :param scheduler_running: whether the job scheduler runs.
    :param config_problem: why the last reload was rejected (:func:`config_problem`), ``None``
        when it succeeded (``monitor_config_last_reload_successful``).
    :param store: the sample store: ``degraded`` once it holds its series limit.
    :param rules: the rule manager: ``degraded`` while a rule's last evaluation failed.
    :param is_leader: whether this replica leads (runs alerting).
    :param paging: the self-checks adding ``rule_evaluation`` and ``outbox`` (none without).
    """
    checks: dict[str, Any] = {
        "scheduler": HEALTHY if scheduler_running else "unhealthy",
        "config": HEALTHY if config_problem is None else f"degraded: {config_problem}",
        "tsdb": HEALTHY if store.series_count < store.max_series else "degraded",
        "rules": HEALTHY if all(st.health != "err" for g in rules.groups() for st in g.status) else "degraded",
    }
    if paging is not None:
        checks.update(paging.checks())
    status = HEALTHY if all(v == HEALTHY for v in checks.values()) else "degraded"
    checks["leader"] = is_leader  # informative: a follower is healthy too
    return {"status": status, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "version": __version__, "checks": checks}
