"""Incidents and their events in the state store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from monitor.errors import NotFoundError


async def test_incident_lifecycle_round_trip(backend):
    store = await backend.open()
    inc = await store.open_incident("{}:{alertname=\"ApiDown\"}", "API is down", "P0", ["api"], ["fp1"], 100.0)
    assert (inc["status"], inc["alerts"], inc["components"]) == ("open", ["fp1"], ["api"])
    await store.update_incident(inc["id"], 110.0, alerts=["fp1", "fp2"], acknowledged_at=105.0, acknowledged_by="al")
    await store.add_incident_event(inc["id"], 106.0, "note", actor="al", text="looking")
    await store.add_incident_event(inc["id"], 107.0, "update", actor="al", text="We are on it", public=True,
                                   detail={"status": "identified"})
    other = await store.open_incident("k2", "DB down", "P1", [], ["fp3"], 200.0)

    again = await backend.open()  # a restart
    got = await again.get_incident(inc["id"])
    assert (got["alerts"], got["acknowledged_at"], got["acknowledged_by"]) == (["fp1", "fp2"], 105.0, "al")
    assert [e["kind"] for e in await again.list_incident_events(inc["id"])] == ["opened", "note", "update"]
    public = await again.list_incident_events(inc["id"], public_only=True)
    assert [(e["text"], e["public"], e["detail"]) for e in public] == [("We are on it", True, {"status": "identified"})]
    assert [r["id"] for r in await again.list_incidents()] == [other["id"], inc["id"]]
    await again.update_incident(inc["id"], 300.0, status="resolved", resolved_at=300.0)
    assert [r["id"] for r in await again.list_incidents(status="open")] == [other["id"]]
    assert [r["id"] for r in await again.list_incidents(opened_after=150.0)] == [other["id"]]
    with pytest.raises(NotFoundError):
        await again.get_incident(999_999)
    with pytest.raises(NotFoundError):
        await again.update_incident(999_999, 1.0, status="resolved")
    with pytest.raises(ValueError):
        await again.update_incident(inc["id"], 1.0, group_key="x")
    await backend.close_all()
