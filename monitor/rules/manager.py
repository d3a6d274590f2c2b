"""The rule manager: atomic load/reload, scheduled and on-new-data evaluation, alert persistence.

* :meth:`RuleManager.load` / :meth:`RuleManager.update` parse and validate **every** file first;
  on any error the running groups are kept and every error is returned / raised ("previous rule
  set restored"); on success the groups are swapped and alert state is copied for rules with the
  same (file, group, kind, name, labels) — Prometheus ``rules/manager.go`` ``Update`` and
  ``Group.CopyState`` — so ``for`` timers survive a reload.
* :meth:`RuleManager.run` evaluates each group only when that can change something:

  - on its slots (the interval, aligned as Prometheus's ``EvalTimestamp``);
  - when a pending alert's ``for`` elapses, so it fires then rather than a slot later;
  - when new samples arrive for a metric the group reads, for fast detection, ``debounce``
    seconds (default 50 ms) after the first of them, coalesced:

    * a sample whose value *changed* (``probe_success`` 1 -> 0, a counter that moved, a new
      series, a staleness marker) is evaluated promptly, but data-triggered evaluations are at
      least :data:`MIN_DATA_WINDOW` (1 s) apart — a failing probe among a thousand healthy ones
      is seen within a second;
    * samples that only repeat their series' previous value are evaluated at most once per
      *data window*, ``min(group interval, shortest input interval)``: the input interval is the
      shortest spacing between a series' last two samples among the series the group reads —
      their probe or scrape interval (:meth:`~monitor.tsdb.store.SampleStore.sample_interval`),
      floored at :data:`MIN_DATA_WINDOW`.

    Samples arriving inside a window wait for its end; an evaluation of any kind in between
    takes them in, so nothing is evaluated twice. With 1,000 staggered healthy probes a group
    thus evaluates about twice per interval (its slot and one data window), not once per probe
    run; bursts of changes (a mass outage) at most once a second.

  Writes made by rule evaluation itself do not wake groups (that would loop).
* After each group evaluation ``on_alerts(alerts)`` receives the alerts that are firing or newly
  resolved, and the active alerts are saved through an :class:`AlertStateStore` — when their
  states change, and at least every :data:`STATE_REFRESH_INTERVAL` seconds while any is active,
  with ``seen_at`` (the group's last evaluation: when the process was last known alive with it).
* At start :meth:`RuleManager.restore` puts them back with Prometheus's ``RestoreForState``
  semantics (``rules/group.go``): rows whose ``seen_at`` is older than ``outage_tolerance``
  (1 h) are not restored; a firing alert stays firing with its ``active_at`` and ``fired_at``;
  a pending one keeps the time it spent pending, shifted by the downtime, and a rule whose
  ``for`` is longer than ``for_grace_period`` (10 m) gets at least that much ``for`` left
  (:func:`~monitor.rules.alerting.restored_active_at`).
* Restored alerts are **held** — neither resolved nor dropped when their expression does not
  return them — because the sample store starts empty and the first evaluations run before
  the first probe results. A held alert is released at the first evaluation that sees, in the
  evaluated range, samples appended since the restore from input series that may produce it,
  for every metric the rule reads: series of that metric whose labels agree with the alert's
  on every label both have (``__name__``, ``alertname`` and the rule's own labels left out);
  from then on the normal state machine goes on from the restored state. Whatever happens, it
  is released ``for_grace_period`` after the restore (an input that never comes back, or
  expressions whose metric names cannot be known). An input read by ``rate``, ``increase``
  and the like counts only once a matching series has two samples since the restore (one gives
  such a function no value yet), and every input the rule reads must have enough: an alert is
  not decided on a half-filled window (``x or (y and absent(x))`` before ``x``'s second sample).
  An evaluation that returns a held alert does not release it either — the next one, still
  short of data, could otherwise drop it. While held, a firing alert is listed firing
  and handed on at each evaluation; a pending one keeps its ``active_at`` but fires only when
  an evaluation returns it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import RuleError
from model.matchers import Matcher
from monitor.rules.alerting import (
    DEFAULT_FOR_GRACE_PERIOD,
    DEFAULT_OUTAGE_TOLERANCE,
    DEFAULT_RESOLVED_RETENTION,
    Alert,
    AlertingRule,
    AlertState,
)
from monitor.rules.compat_check import compat_errors
from monitor.rules.group import RESEND_DELAY, RuleGroup, engine_query_fn
from monitor.rules.recording import RecordingRule
from monitor.rules.rulefmt import SEVERITIES, RuleFileSpec, RuleText, compile_rule_expr, load_rule_files
from monitor.rules.state import AlertStateStore

__all__ = ["RuleManager", "RuleLoadError", "DEFAULT_INTERVAL", "MIN_DATA_WINDOW", "STATE_REFRESH_INTERVAL"]

DEFAULT_INTERVAL = 15.0
#: The shortest data window, seconds: data-triggered evaluations of one group are at least this
#: far apart however often its inputs arrive (a burst of pushed samples cannot spin a group).
MIN_DATA_WINDOW = 1.0
#: Series looked at when estimating a group's shortest input interval (bounds the cost).
_INTERVAL_SCAN_SERIES = 10_000
#: While alerts are active their rows are rewritten at least this often (seconds), so ``seen_at``
#: (from which a restart measures the downtime) is at most this old after a crash.
STATE_REFRESH_INTERVAL = 5.0
#: Row keys that only refresh (compared for "changed" without them).
_REFRESH_KEYS = ("seen_at", "annotations", "value")
log = logging.getLogger("monitor.rules")


class RuleLoadError(RuleError):
    """Rule files failed validation; the previous rule set keeps running.

    :param errors: every error message (``file:line:col: group "g", rule N, "name": ...``).
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class _Triggers:
    """When one group evaluates next: the wake-up event and the data-window bookkeeping.

    Times are seconds of the manager's clock.
    """

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: When the first sample the group has not evaluated yet arrived (``None``: nothing new).
    dirty_since: float | None = None
    #: When the first of those samples that changed its series' value arrived (``None``: none).
    changed_since: float | None = None
    #: When the last data-triggered evaluation ran (any data-triggered one).
    last_data_eval: float = -math.inf
    #: The data window and when it was estimated (re-estimated once per group interval).
    window: float | None = None
    window_at: float = -math.inf


class RuleManager:
    """Loads rule files into groups and evaluates them.

    :param store: the sample store (``append_batch``, ``add_listener``/``remove_listener``).
    :param engine: the PromQL engine (``instant_query(expr, t_ms)``).
    :param external_labels: for ``$externalLabels`` in templates.
    :param resolved_retention: seconds a resolved alert is kept (15 min).
    :param state_store: persistence of active alerts (:class:`AlertStateStore`), or ``None``.
    :param logger: logger (``monitor.rules`` by default).
    :param default_interval: evaluation interval of groups that set none, seconds.
    :param on_alerts: ``on_alerts(alerts)`` (sync or async) after each group evaluation.
    :param clock: wall-clock seconds (``time.time``); injected so tests can drive it.
    :param debounce: seconds to wait after the first new sample before a data-triggered
        evaluation (coalesces a burst of appends).
    :param require_severity: reject alerting rules without ``severity`` (our policy).
    :param outage_tolerance: persisted alert state older than this (seconds) is not restored.
    :param for_grace_period: least ``for`` left after a restart for rules with a longer ``for``.
    :param resend_delay: seconds; a firing alert handed on is valid for ``4 * max(group interval,
        resend_delay)`` unless handed on again (``RuleGroup.valid_until``).
    :param datasource: evaluate through a remote store's query API instead of ``engine``
        (:class:`monitor.remote.datasource.RemoteDatasource`: ``await query_fn(group, now)``
        before each evaluation, ``alerts_for_state`` at restore); ``None``: the local engine.

    >>> # mgr = RuleManager(store, Engine(store)); errs = mgr.load(["rules/api.yaml"])
    >>> # await mgr.run()   # until cancelled
    """

    def __init__(self, store: Any, engine: Any, *, external_labels: Mapping[str, str] | None = None,
                 resolved_retention: float = DEFAULT_RESOLVED_RETENTION,
                 state_store: AlertStateStore | None = None, logger: logging.Logger | None = None,
                 default_interval: float = DEFAULT_INTERVAL,
                 on_alerts: Callable[[list[Alert]], Awaitable[None] | None] | None = None,
                 clock: Callable[[], float] = time.time, debounce: float = 0.05,
                 require_severity: bool = True, external_url: str = "",
                 outage_tolerance: float = DEFAULT_OUTAGE_TOLERANCE,
                 for_grace_period: float = DEFAULT_FOR_GRACE_PERIOD,
                 resend_delay: float = RESEND_DELAY, datasource: Any = None) -> None:
        self.store = store
        self.datasource = datasource
        self.engine = engine
        self.external_labels = dict(external_labels or {})
        self.resolved_retention = resolved_retention
        self.state_store = state_store
        self.log = logger or log
        self.default_interval = default_interval
        self.on_alerts = on_alerts
        self.clock = clock
        self.debounce = debounce
        self.require_severity = require_severity
        self.external_url = external_url
        self.outage_tolerance = outage_tolerance
        self.for_grace_period = for_grace_period
        self.resend_delay = resend_delay
        self.files: list[str | Path | RuleText] = []
        self._groups: list[RuleGroup] = []
        self._query = engine_query_fn(engine)
        #: ``False`` after a rejected reload (``monitor_config_last_reload_successful``).
        self.last_reload_successful = True
        self.last_reload_success_time: float | None = None
        self.last_reload_errors: list[str] = []
        self._writing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._triggers: dict[tuple[str, str], _Triggers] = {}
        self._saved: Any = None
        self._saved_at = -math.inf
        self._save_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ loading

    def build(self, files: Sequence[str | Path | RuleText]) -> tuple[list[RuleGroup], list[str]]:
        """Parse, validate and construct groups for ``files`` without touching the running set.

        ``files`` are paths or :class:`~monitor.rules.rulefmt.RuleText` (generated SLO rules).

        :return: ``(groups, errors)``; ``groups`` is empty when there is any error.
        """
        specs, errs = load_rule_files(files, require_severity=self.require_severity)
        if errs:
            return [], [str(e) for e in errs]
        compat_errors = self._compat_errors(specs)
        if compat_errors:
            return [], compat_errors
        groups: list[RuleGroup] = []
        for spec in specs:
            groups.extend(self._groups_of(spec))
        return groups, []

    def _compat_errors(self, specs: Sequence[RuleFileSpec]) -> list[str]:
        """Errors for rule expressions the engine's ``promql_compat``/``enable_features`` reject
        (``holt_winters`` under 3, a disabled experimental function)."""
        compat = getattr(self.engine, "compat", None)
        if compat is None:
            return []
        return compat_errors(specs, compat, getattr(self.engine, "features", frozenset()))

    def _groups_of(self, spec: RuleFileSpec) -> list[RuleGroup]:
        out = []
        for g in spec.groups:
            rules: list[AlertingRule | RecordingRule] = []
            for r in g.rules:
                parsed = compile_rule_expr(r.expr)
                if r.kind == "alert":
                    rules.append(AlertingRule(r.name, r.expr, for_seconds=r.for_seconds,
                                              keep_firing_for_seconds=r.keep_firing_for_seconds,
                                              labels=r.labels, annotations=r.annotations, parsed=parsed,
                                              resolved_retention=self.resolved_retention,
                                              external_url=self.external_url,
                                              severities=SEVERITIES if self.require_severity else None))
                else:
                    rules.append(RecordingRule(r.name, r.expr, labels=r.labels, parsed=parsed))
            out.append(RuleGroup(g.name, spec.path, g.interval_seconds or self.default_interval, rules,
                                 store=self, query=self._query, external_labels=self.external_labels,
                                 limit=g.limit, query_offset=g.query_offset_seconds, logger=self.log,
                                 resend_delay=self.resend_delay))
        return out

    def load(self, files: Sequence[str | Path | RuleText]) -> list[str]:
        """Load ``files`` all-or-nothing; return every error (empty on success).

        On error the running groups are kept and :attr:`last_reload_successful` becomes ``False``.
        On success groups are swapped and alert state is carried over for unchanged rules.
        """
        groups, errors = self.build(files)
        if errors:
            self.last_reload_successful = False
            self.last_reload_errors = errors
            for e in errors:
                self.log.error("rule file error; previous rule set restored", extra={"error": e})
            return errors
        old = {g.key: g for g in self._groups}
        for g in groups:
            prev = old.get(g.key)
            if prev is not None:
                g.copy_state(prev)
        self._groups = groups
        self.files = [f if isinstance(f, RuleText) else str(f) for f in files]
        self.last_reload_successful = True
        self.last_reload_success_time = self.clock()
        self.last_reload_errors = []
        self._reschedule()
        return []

    def update(self, files: Sequence[str | Path | RuleText]) -> None:
        """Like :meth:`load` but raise :class:`RuleLoadError` (with every error) on failure."""
        errors = self.load(files)
        if errors:
            raise RuleLoadError(errors)

    def reload(self) -> list[str]:
        """Reload the files last loaded successfully (SIGHUP)."""
        return self.load(self.files)

    # ------------------------------------------------------------------ reading

    def groups(self) -> list[RuleGroup]:
        """Return the running groups in load order."""
        return list(self._groups)

    def alerts(self) -> list[Alert]:
        """Every active alert of every rule: pending, firing, and resolved ones still retained."""
        return [a for g in self._groups for r in g.alerting_rules() for a in r.alerts()]

    def to_api(self) -> dict[str, Any]:
        """``/api/v1/rules`` data: ``{"groups": [group.to_api(), ...]}``."""
        return {"groups": [g.to_api() for g in self._groups]}

    def alerts_api(self) -> dict[str, Any]:
        """``/api/v1/alerts`` data: ``{"alerts": [...]}`` of pending and firing alerts."""
        return {"alerts": [a.to_api() for a in self.alerts() if a.state != AlertState.INACTIVE]}

    # ------------------------------------------------------------------ evaluating

    def append_batch(self, samples: Any) -> int:
        """Store rule output (groups write through here so their own writes wake no one)."""
        self._writing = True
        try:
            return self.store.append_batch(samples)
        finally:
            self._writing = False

    async def eval_group(self, group: RuleGroup, now: float | None = None) -> list[Alert]:
        """Evaluate one group at ``now`` (default: the clock), hand alerts on, persist state."""
        ts = self.clock() if now is None else now
        if group.last_evaluation is not None and ts <= group.last_evaluation:
            ts = group.last_evaluation + 0.001
        self._release_held(group, ts)
        query = await self.datasource.query_fn(group, ts) if self.datasource is not None else None
        alerts = group.eval(ts, query)
        if alerts and self.on_alerts is not None:
            try:
                res = self.on_alerts(alerts)
                if inspect.isawaitable(res):
                    await res
            except Exception:  # noqa: BLE001 - the alerting layer must not stop evaluation
                self.log.exception("on_alerts failed", extra={"group": group.name})
        await self.persist()
        return alerts

    async def eval_all(self, now: float | None = None) -> list[Alert]:
        """Evaluate every group once, in load order, at ``now``."""
        out: list[Alert] = []
        for g in list(self._groups):
            out.extend(await self.eval_group(g, now))
        return out

    # ------------------------------------------------------------------ persistence

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for g in self._groups:
            for r in g.alerting_rules():
                for a in r.alerts():
                    if a.state == AlertState.INACTIVE:
                        continue
                    row = {"key": f"{g.file}|{g.name}|{r.name}|{a.fingerprint}", "active_at": a.active_at,
                           "fired_at": a.fired_at, "state": a.state, "labels": a.labels.as_dict(),
                           "seen_at": g.last_evaluation, "annotations": dict(a.annotations)}
                    if math.isfinite(a.value):
                        row["value"] = a.value
                    rows.append(row)
        rows.sort(key=lambda x: str(x["key"]))
        return rows

    @staticmethod
    def _core(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in _REFRESH_KEYS} for r in rows]

    async def persist(self, *, force: bool = False) -> None:
        """Save the active alerts if their states changed since the last save, or (to refresh
        ``seen_at``) the last save is :data:`STATE_REFRESH_INTERVAL` old and any is active.

        :param force: save whatever changed, refreshes included (at shutdown).
        """
        if self.state_store is None:
            return
        rows = self._rows()
        core = self._core(rows)
        now = self.clock()
        if core == self._saved and not (rows and (force or now - self._saved_at >= STATE_REFRESH_INTERVAL)):
            return
        try:
            await self.state_store.save_rule_alerts(rows)
            self._saved, self._saved_at = core, now
        except Exception:  # noqa: BLE001 - keep evaluating; the next evaluation retries
            self.log.exception("saving rule alert state failed")

    async def restore(self, now: float | None = None) -> int:
        """Give persisted alerts back to their rules (call after :meth:`load`, before evaluating).

        :param now: the restart time (default: the clock); the downtime of a row is
            ``now - seen_at``. See the module docstring for the semantics and the hold.
        :return: how many alerts were restored.
        """
        if self.state_store is None and self.datasource is None:
            return 0
        ts = self.clock() if now is None else now
        rows = await self.state_store.load_rule_alerts() if self.state_store is not None else []
        by_rule: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for row in rows:
            parts = str(row.get("key", "")).rsplit("|", 3)
            if len(parts) != 4:
                continue
            file, group, alertname, fp = parts
            by_rule.setdefault((file, group, alertname), []).append({**row, "fingerprint": fp})
        n = 0
        for g in self._groups:
            for r in g.alerting_rules():
                got = by_rule.get((g.file, g.name, r.name))
                if got:
                    n += r.restore(got, ts, outage_tolerance=self.outage_tolerance,
                                   for_grace_period=self.for_grace_period)
        self._saved = self._core(sorted(rows, key=lambda x: str(x.get("key", ""))))
        if not rows and self.datasource is not None and self.datasource.restore_for_state:
            n += await self._restore_from_store(ts)
        if n or rows:
            self.log.info("rule alert state restored", extra={"restored": n, "saved": len(rows)})
        return n

    async def _restore_from_store(self, ts: float) -> int:
        """Restore pending ``for`` timers from the remote store's ``ALERTS_FOR_STATE`` (as vmalert
        and Prometheus's ``RestoreForState``): each series' value is its alert's ``active_at``;
        the alert comes back pending and held, firing at the first evaluation that returns it
        once its ``for`` has passed. Without the state store's rows only (a new replica)."""
        try:
            found = await self.datasource.alerts_for_state(int(ts * 1000), self.external_labels)
        except Exception as e:  # noqa: BLE001 - a store that is down only costs the restore
            self.log.warning("restoring alert state from ALERTS_FOR_STATE failed", extra={"error": str(e)})
            return 0
        by_name: dict[str, list[dict[str, Any]]] = {}
        for labels, active_at in found:
            by_name.setdefault(labels.get("alertname"), []).append(
                {"fingerprint": labels.fingerprint(), "labels": labels.as_dict(), "active_at": active_at,
                 "state": AlertState.PENDING, "seen_at": None})
        n = 0
        for g in self._groups:
            for r in g.alerting_rules():
                got = by_name.get(r.name)
                if got:
                    n += r.restore(got, ts, outage_tolerance=self.outage_tolerance,
                                   for_grace_period=self.for_grace_period)
        if n:
            self.log.info("rule alert state restored from ALERTS_FOR_STATE", extra={"restored": n})
        return n

    def _release_held(self, g: RuleGroup, ts: float) -> None:
        """Release the restored alerts of ``g`` whose inputs have data by ``ts`` (or whose
        grace period is over) — see the module docstring."""
        rules = [r for r in g.alerting_rules() if r.held]
        if not rules:
            return
        for r in rules:
            if ts >= min(r.held.values()) + self.for_grace_period:
                r.release([fp for fp, at in r.held.items() if ts >= at + self.for_grace_period])
        rules = [r for r in rules if r.held]
        if not rules:
            return
        mint = int(min(min(r.held.values()) for r in rules) * 1000)
        maxt = int(round((ts - g.query_offset) * 1000))
        if maxt < mint:
            return
        inputs: dict[str, list[tuple[Any, int]]] = {}
        for r in rules:
            for name in sorted(r.samples_needed() or ()):
                if name not in inputs:
                    inputs[name] = [(s.labels, len(s.timestamps))
                                    for s in self.store.select([Matcher("__name__", "=", name)], mint, maxt)]
            r.release_ready(inputs)

    # ------------------------------------------------------------------ running

    def _on_new_data(self, names: set[str]) -> None:
        """Store listener: mark the groups that read one of ``names`` (runs inside the append)."""
        self._schedule_wake(names, False)

    def _on_changed_data(self, names: set[str]) -> None:
        """Store change listener: the new samples of ``names`` changed their series' values."""
        self._schedule_wake(names, True)

    def _schedule_wake(self, names: set[str], changed: bool) -> None:
        if self._writing or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._wake_groups, set(names), changed)
        except RuntimeError:  # loop closed
            pass

    def _wake_groups(self, names: set[str], changed: bool = False) -> None:
        """Mark the groups that read one of ``names`` as having new (or changed) data; wake each
        one only when that is news to it, so a thousand appends cost a group one wake-up."""
        now = None
        for g in self._groups:
            tr = self._triggers.get(g.key)
            if tr is None or (tr.changed_since if changed else tr.dirty_since) is not None:
                continue  # not running, or already due for such an evaluation
            wanted = g.metric_names()
            if wanted is None or wanted & names:
                now = self.clock() if now is None else now
                if tr.dirty_since is None:
                    tr.dirty_since = now
                if changed:
                    tr.changed_since = now
                tr.wake.set()

    def _reschedule(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._restart_tasks()
        else:
            loop.call_soon_threadsafe(self._restart_tasks)

    def _restart_tasks(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        self._tasks = {}
        self._triggers = {}
        for g in self._groups:
            self._triggers[g.key] = _Triggers()
            self._tasks[g.key] = asyncio.get_running_loop().create_task(self._group_loop(g),
                                                                        name=f"rules:{g.file}:{g.name}")

    @staticmethod
    def _next_for_deadline(g: RuleGroup) -> float | None:
        """Earliest time a pending alert of ``g`` reaches its ``for`` (Unix seconds), or ``None``."""
        due = None
        for rule in g.rules:
            if not isinstance(rule, AlertingRule):
                continue
            for a in rule.alerts():
                if a.state == AlertState.PENDING and a.active_at is not None:
                    t = a.active_at + rule.for_seconds
                    due = t if due is None else min(due, t)
        return due

    def data_window(self, g: RuleGroup) -> float:
        """Return the least time between two data-triggered evaluations of ``g``, seconds.

        ``min(group interval, shortest input interval)``, the input interval floored at
        :data:`MIN_DATA_WINDOW`; the group interval when the inputs are unknown (no samples yet,
        or expressions whose metric names cannot be known). Re-estimated once per group interval
        (and at every look while the inputs are still unknown).
        """
        tr = self._triggers.get(g.key)
        now = self.clock()
        if tr is not None and tr.window is not None and now - tr.window_at < g.interval:
            return tr.window
        names = g.metric_names()
        interval = None
        if names:
            sample_interval = getattr(self.store, "sample_interval", None)
            if sample_interval is not None:
                interval = sample_interval(names, max_series=_INTERVAL_SCAN_SERIES)
        if interval is None:
            return g.interval
        window = min(g.interval, max(interval, MIN_DATA_WINDOW))
        if tr is not None:
            tr.window, tr.window_at = window, now
        return window

    def _next_wake(self, g: RuleGroup, tr: _Triggers, now: float) -> tuple[float, str]:
        """Return when ``g`` evaluates next and why (``slot``, ``for``, ``change`` or ``data``)."""
        wake_at, trigger = g.eval_timestamp(now) + g.interval, "slot"
        due = self._next_for_deadline(g)
        if due is not None and now < due < wake_at:
            wake_at, trigger = due, "for"
        if tr.changed_since is not None:
            change_at = max(tr.changed_since + self.debounce, tr.last_data_eval + MIN_DATA_WINDOW)
            if change_at < wake_at:
                wake_at, trigger = change_at, "change"
        if tr.dirty_since is not None:
            data_at = max(tr.dirty_since + self.debounce, tr.last_data_eval + self.data_window(g))
            if data_at < wake_at:
                wake_at, trigger = data_at, "data"
        return wake_at, trigger

    async def _group_loop(self, g: RuleGroup) -> None:
        """Evaluate ``g`` at start, then on its slots, when a pending alert's ``for`` elapses, and
        after new samples it reads arrive — at most once per data window (see the module docstring)."""
        tr = self._triggers[g.key]
        await self._safe_eval(g, self.clock(), tr)
        while True:
            now = self.clock()
            wake_at, trigger = self._next_wake(g, tr, now)
            tr.wake.clear()
            try:
                # Set only when the group goes from nothing new to new data: then look again.
                await asyncio.wait_for(tr.wake.wait(), timeout=max(0.0, wake_at - now))
                continue
            except (TimeoutError, asyncio.TimeoutError):
                pass
            now = self.clock()
            if trigger in ("data", "change"):
                tr.last_data_eval = now
            await self._safe_eval(g, g.eval_timestamp(now) if trigger == "slot" else now, tr, trigger)

    async def _safe_eval(self, g: RuleGroup, ts: float, tr: _Triggers, trigger: str = "slot") -> None:
        # The evaluation reads every sample stored so far: nothing is new for this group any more.
        tr.dirty_since = tr.changed_since = None
        g.evaluations_by_trigger[trigger] = g.evaluations_by_trigger.get(trigger, 0) + 1
        try:
            await self.eval_group(g, ts)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never let one group's failure end its loop
            self.log.exception("group evaluation failed", extra={"group": g.name, "file": g.file})

    async def run(self) -> None:
        """Restore persisted state, then evaluate every group until cancelled."""
        self._loop = asyncio.get_running_loop()
        await self.restore()
        self.store.add_listener(self._on_new_data)
        self.store.add_listener(self._on_changed_data, changed_only=True)
        try:
            self._restart_tasks()
            await asyncio.Event().wait()
        finally:
            self.store.remove_listener(self._on_new_data)
            self.store.remove_listener(self._on_changed_data)
            for t in self._tasks.values():
                t.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks = {}
            self._loop = None
