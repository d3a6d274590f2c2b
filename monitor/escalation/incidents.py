"""Incidents: what critical alerts open, kept with their timeline after the alerts resolve.

Run by the leader on each tick (:meth:`IncidentTracker.sync`, after the alert pipeline's):

- a firing, unmuted alert with ``severity="critical"`` belongs to the incident of its *alert
  group*: the group key of the first route it matches (``<route key>:{<group_by labels>}``, as
  the dispatcher groups notifications), or its ``alertname`` without a routing tree. The first
  such alert of a group with no open incident opens one (title: its ``summary`` annotation, else
  its alert name; priority: the escalation policy's for its labels; components: its
  ``component`` label, else ``service``); later ones join it (``alert_added``);
- the incident is *acknowledged* when one of its alerts' escalation is first acknowledged
  (``acknowledged_at`` / ``acknowledged_by`` of the escalation walk);
- it is *resolved* when none of its alerts fires any more (resolved, expired or forgotten; a
  silenced one still fires); a new critical alert of the group afterwards opens a new incident.

Notes (internal) and public updates are added through the API (``monitor.api.incidents``).
:func:`incident_stats` gives MTTA and MTTR per priority against the policy's SLA (the priority's
``ack`` and ``resolve`` deadlines).

Times are Unix seconds. Store calls: :class:`monitor.store.incidents.IncidentStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.alert import ACTIVE, Alert
from monitor.errors import StoreError
from monitor.escalation.policy import EscalationPolicy

__all__ = ["IncidentTracker", "incident_stats", "group_key_of", "CRITICAL"]

CRITICAL = "critical"


def group_key_of(route: Any, labels: Any) -> str:
    """Return the alert group of ``labels``: the first matching route's group key, else the alert name."""
    if route is not None:
        matched = route.match(labels)
        if matched:
            r = matched[0]
            return f"{r.key}:{r.opts.group_labels(labels)}"
    return f"alertname:{labels.get('alertname') or ''}"


@dataclass
class _Open:
    id: int
    alerts: list[str] = field(default_factory=list)
    acknowledged: bool = False


class IncidentTracker:
    """Open, grow, acknowledge and resolve incidents from the alerts the leader holds.

    :param store: the state store (:class:`~monitor.store.incidents.IncidentStore`).
    :param policy: returns the running escalation policy (priorities and SLAs).
    :param route: returns the running routing tree, or ``None``.
    :param acked: returns ``{fingerprint: (acked_at, acked_by)}`` of the acknowledged escalations.
    """

    def __init__(self, store: Any, policy: Callable[[], EscalationPolicy], route: Callable[[], Any],
                 acked: Callable[[], Mapping[str, tuple[float, str]]], *,
                 logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.policy = policy
        self.route = route
        self.acked = acked
        self.log = logger or logging.getLogger("monitor.escalation")
        self.open: dict[str, _Open] | None = None  # by group key; loaded on the first sync
        # fingerprint -> group key under the route it was computed with (a sync runs every tick:
        # matching the route tree once per alert, not once per alert per second)
        self._keys: dict[str, str] = {}
        self._keys_route: Any = None

    async def _load(self) -> dict[str, _Open]:
        if self.open is None:
            rows = await self.store.list_incidents(status="open", limit=10_000)
            self.open = {r["group_key"]: _Open(int(r["id"]), list(r["alerts"]), r["acknowledged_at"] is not None)
                         for r in rows}
        return self.open

    async def sync(self, now: float, marked: Sequence[Alert]) -> None:
        """Bring the incidents up to date with ``marked`` (every alert held, with mute markers).

        A failure is logged and never raised: incidents are a record beside the paging path,
        which must not stop for them; the next sync tries again (nothing is lost: the state is
        derived from the alerts).
        """
        if not hasattr(self.store, "open_incident"):
            return
        try:
            await self._sync(now, marked)
        except StoreError as exc:
            self.open = None  # re-read what was committed
            self.log.warning("incidents not updated", extra={"error": str(exc)})
        except Exception:  # noqa: BLE001 - a bug here must not stop escalation and delivery
            self.open = None
            self.log.exception("incidents not updated")

    async def _sync(self, now: float, marked: Sequence[Alert]) -> None:
        incidents = await self._load()
        route, policy = self.route(), self.policy()
        if route is not self._keys_route or len(self._keys) > 4 * len(marked) + 1000:
            self._keys, self._keys_route = {}, route  # a reload, or many alerts gone
        firing: dict[str, list[Alert]] = {}
        live: set[str] = set()  # firing, muted or not: an incident stays open while one of its alerts fires
        for a in marked:
            if a.resolved(now):
                continue
            live.add(a.fingerprint)
            if a.state == ACTIVE and a.labels.get("severity") == CRITICAL:
                key = self._keys.get(a.fingerprint)
                if key is None:
                    key = self._keys[a.fingerprint] = group_key_of(route, a.labels)
                firing.setdefault(key, []).append(a)
        for key, alerts in firing.items():
            inc = incidents.get(key)
            fps = [a.fingerprint for a in alerts]
            if inc is None:
                first = alerts[0]
                title = first.annotations.get("summary") or first.labels.get("alertname") or key
                component = first.labels.get("component") or first.labels.get("service") or ""
                row = await self.store.open_incident(key, title, policy.priority_for(first.labels).name,
                                                     [component] if component else [], fps, now)
                incidents[key] = _Open(int(row["id"]), fps)
                self.log.info("incident opened", extra={"incident": row["id"], "group": key, "title": title})
                continue
            new = [fp for fp in fps if fp not in inc.alerts]
            if new:
                inc.alerts += new
                await self.store.update_incident(inc.id, now, alerts=inc.alerts)
                await self.store.add_incident_event(inc.id, now, "alert_added", detail={"alerts": new})
        acked = self.acked()
        for key, inc in list(incidents.items()):
            if not inc.acknowledged:
                ack = min((acked[fp] for fp in inc.alerts if fp in acked), default=None)
                if ack is not None:
                    inc.acknowledged = True
                    await self.store.update_incident(inc.id, now, acknowledged_at=ack[0], acknowledged_by=ack[1])
                    await self.store.add_incident_event(inc.id, ack[0], "acknowledged", actor=ack[1])
            if not any(fp in live for fp in inc.alerts):
                await self.store.update_incident(inc.id, now, status="resolved", resolved_at=now,
                                                 public_status="resolved")
                await self.store.add_incident_event(inc.id, now, "resolved")
                del incidents[key]
                self.log.info("incident resolved", extra={"incident": inc.id, "group": key})


def _mean(values: Iterable[float]) -> float | None:
    vs = list(values)
    return sum(vs) / len(vs) if vs else None


def incident_stats(rows: Iterable[Mapping[str, Any]], policy: EscalationPolicy, now: float) -> dict[str, Any]:
    """Return MTTA and MTTR per priority against the SLA: ``{priority: {...}}``.

    Each entry: ``count``, ``open``, ``mtta_seconds`` (mean of acknowledged - opened over the
    acknowledged ones), ``mttr_seconds`` (mean of resolved - opened over the resolved ones),
    ``ack_sla_seconds`` / ``resolve_sla_seconds`` (the priority's deadlines), ``ack_breaches``
    (acknowledged after the deadline, or not acknowledged and past it) and ``resolve_breaches``
    (the same for resolution). ``None`` means no data.
    """
    out: dict[str, Any] = {}
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["priority"], []).append(r)
    for name in sorted(set(by) | set(policy.priorities)):
        items = by.get(name, [])
        prio = policy.priorities.get(name)
        ack_sla = prio.ack if prio else None
        res_sla = prio.resolve if prio else None

        def late(r: Mapping[str, Any], col: str, sla: float | None) -> bool:
            if sla is None:
                return False
            end = r[col] if r[col] is not None else now
            return end - r["opened_at"] > sla

        out[name] = {
            "count": len(items), "open": sum(1 for r in items if r["status"] == "open"),
            "mtta_seconds": _mean(r["acknowledged_at"] - r["opened_at"] for r in items
                                  if r["acknowledged_at"] is not None),
            "mttr_seconds": _mean(r["resolved_at"] - r["opened_at"] for r in items if r["resolved_at"] is not None),
            "ack_sla_seconds": ack_sla, "resolve_sla_seconds": res_sla,
            "ack_breaches": sum(1 for r in items if late(r, "acknowledged_at", ack_sla)),
            "resolve_breaches": sum(1 for r in items if late(r, "resolved_at", res_sla)),
        }
    return out
