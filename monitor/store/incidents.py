"""Incidents and their timelines: the ``incidents`` and ``incident_events`` tables (migration 21).

A mixin of :class:`~monitor.store.sql.SQLStore` (both backends). The leader's
:class:`monitor.escalation.incidents.IncidentTracker` opens an incident when critical alerts of
one alert group fire, adds alerts to it, marks it acknowledged and resolved; people add notes
(internal) and public updates (shown on ``/status``). An incident and its events stay after its
alerts resolve (the history MTTA/MTTR are computed from).

Rows: ``incidents`` — ``id``, ``group_key``, ``title``, ``priority``, ``status`` (``open`` |
``resolved``), ``components`` (list of names), ``alerts`` (list of fingerprints), ``opened_at``,
``acknowledged_at``/``acknowledged_by`` (the first acknowledgement), ``resolved_at``,
``public_status`` (``investigating`` | ``identified`` | ``monitoring`` | ``resolved``: the last
public update's), ``updated_at``. ``incident_events`` — ``id``, ``incident_id``, ``at``,
``kind`` (``opened``, ``alert_added``, ``acknowledged``, ``resolved``, ``note``, ``update``),
``actor``, ``text``, ``public`` (bool), ``detail`` (JSON).
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from monitor.errors import NotFoundError

if TYPE_CHECKING:
    from monitor.store.sql import Conn

Row = dict[str, Any]

__all__ = ["IncidentQueries", "IncidentStore", "PUBLIC_STATUSES"]

#: The public states of an incident (Atlassian Statuspage's words).
PUBLIC_STATUSES = ("investigating", "identified", "monitoring", "resolved")


class IncidentStore(Protocol):
    """The incident calls (the tracker, the API and the status page)."""

    async def open_incident(self, group_key: str, title: str, priority: str, components: list[str],
                            alerts: list[str], now: float) -> Row:
        """Create an open incident with an ``opened`` event; return its row."""
        ...

    async def update_incident(self, incident_id: int, now: float, **fields: Any) -> None:
        """Set ``fields`` (``alerts``, ``components``, ``status``, ``acknowledged_at``,
        ``acknowledged_by``, ``resolved_at``, ``public_status``, ``title``) of an incident.

        :raises NotFoundError: no such incident.
        """
        ...

    async def add_incident_event(self, incident_id: int, at: float, kind: str, *, actor: str = "", text: str = "",
                                 public: bool = False, detail: Any = None) -> int:
        """Append an event to an incident's timeline; return its id."""
        ...

    async def get_incident(self, incident_id: int) -> Row:
        """Return an incident's row. :raises NotFoundError: no such incident."""
        ...

    async def list_incidents(self, *, status: str | None = None, opened_after: float | None = None,
                             limit: int = 100) -> list[Row]:
        """Return incidents, newest first (of one ``status``; opened after ``opened_after``)."""
        ...

    async def list_incident_events(self, incident_id: int, *, public_only: bool = False) -> list[Row]:
        """Return an incident's events, oldest first (only the public ones when asked)."""
        ...

    def transaction(self) -> Any:
        """Return the store's batch context (see :meth:`monitor.store.base.Store.transaction`)."""
        ...

    async def audit(self, actor: str, action: str, at: float, *, target: str = "", source: str = "",
                    detail: Any = None) -> int:
        """Append an audit-log row (see :meth:`monitor.store.base.Store.audit`)."""
        ...


_FIELDS = {"alerts", "components", "status", "acknowledged_at", "acknowledged_by", "resolved_at",
           "public_status", "title"}


def _decode(row: Any) -> Row:
    out = dict(row)
    for c in ("components", "alerts", "detail"):
        if isinstance(out.get(c), str):
            out[c] = json.loads(out[c])
    if "public" in out:
        out["public"] = bool(out["public"])
    return out


class IncidentQueries:
    """The incident queries, mixed into :class:`~monitor.store.sql.SQLStore`."""

    if TYPE_CHECKING:
        def _tx(self) -> AbstractAsyncContextManager[Conn]: ...
        def _stmt(self) -> AbstractAsyncContextManager[Conn]: ...

    async def open_incident(self, group_key: str, title: str, priority: str, components: list[str],
                            alerts: list[str], now: float) -> Row:
        async with self._tx() as c:
            row = await c.fetchrow(
                "INSERT INTO incidents (group_key, title, priority, status, components, alerts, opened_at, "
                "updated_at) VALUES ($1, $2, $3, 'open', $4, $5, $6, $6) RETURNING *",
                group_key, title, priority, json.dumps(components), json.dumps(alerts), float(now))
            assert row is not None
            await c.execute("INSERT INTO incident_events (incident_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
                            int(row["id"]), float(now), "opened", json.dumps({"alerts": alerts}))
        return _decode(row)

    async def update_incident(self, incident_id: int, now: float, **fields: Any) -> None:
        bad = set(fields) - _FIELDS
        if bad:
            raise ValueError(f"unknown incident fields: {sorted(bad)}")
        names = sorted(fields)
        values = [json.dumps(fields[n]) if n in ("alerts", "components") else fields[n] for n in names]
        sets = ", ".join(f"{n} = ${i + 3}" for i, n in enumerate(names))
        async with self._stmt() as c:
            row = await c.fetchrow(f"UPDATE incidents SET updated_at = $2{', ' if sets else ''}{sets} "
                                   "WHERE id = $1 RETURNING id", int(incident_id), float(now), *values)
        if row is None:
            raise NotFoundError("incident", str(incident_id))

    async def add_incident_event(self, incident_id: int, at: float, kind: str, *, actor: str = "", text: str = "",
                                 public: bool = False, detail: Any = None) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("INSERT INTO incident_events (incident_id, at, kind, actor, text, public, detail) "
                                   "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id", int(incident_id), float(at),
                                   kind, actor, text, 1 if public else 0, json.dumps(detail or {}))
        assert row is not None
        return int(row["id"])

    async def get_incident(self, incident_id: int) -> Row:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT * FROM incidents WHERE id = $1", int(incident_id))
        if row is None:
            raise NotFoundError("incident", str(incident_id))
        return _decode(row)

    async def list_incidents(self, *, status: str | None = None, opened_after: float | None = None,
                             limit: int = 100) -> list[Row]:
        after = -1.0 if opened_after is None else float(opened_after)
        async with self._stmt() as c:
            if status is None:
                rows = await c.fetch("SELECT * FROM incidents WHERE opened_at > $1 ORDER BY opened_at DESC, id DESC "
                                     "LIMIT $2", after, int(limit))
            else:
                rows = await c.fetch("SELECT * FROM incidents WHERE status = $1 AND opened_at > $2 "
                                     "ORDER BY opened_at DESC, id DESC LIMIT $3", status, after, int(limit))
        return [_decode(r) for r in rows]

    async def list_incident_events(self, incident_id: int, *, public_only: bool = False) -> list[Row]:
        async with self._stmt() as c:
            if public_only:
                rows = await c.fetch("SELECT * FROM incident_events WHERE incident_id = $1 AND public = 1 "
                                     "ORDER BY id", int(incident_id))
            else:
                rows = await c.fetch("SELECT * FROM incident_events WHERE incident_id = $1 ORDER BY id",
                                     int(incident_id))
        return [_decode(r) for r in rows]
