"""Intake isolation through the real HTTP API: a big intake batch does not hold acknowledgements
back (it is taken in chunks that release the pipeline lock), and an intake source resolves only
the alerts it raised itself."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from monitor.config.model import ApiToken
from tests.alerting_service.conftest import API_TOKEN, INTAKE_TOKEN, T0, ApiServer

INTAKE = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
OTHER_TOKEN = "ck_live_intake_token_other_prom_77"
OTHER = {"Authorization": f"Bearer {OTHER_TOKEN}"}
ALICE = {"Authorization": f"Bearer {API_TOKEN}"}


def _item(name: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": "warning", "service": "db", **labels},
            "annotations": {"summary": name}}


@pytest.fixture
async def api2(harness):
    """The alerting API with a second intake token (``other-prom``)."""
    from monitor.api.deps import AlertingDeps, ApiDeps

    tokens = [*harness.config.api.tokens, ApiToken(name="other-prom", token=OTHER_TOKEN, scopes=["intake"])]
    harness.config = harness.config.model_copy(
        update={"api": harness.config.api.model_copy(update={"tokens": tokens})})
    await harness.new_service()
    deps = ApiDeps(settings=lambda: harness.config.api,
                   alerting=AlertingDeps(ports=harness.service.ports, claims=lambda: harness.store))
    async with ApiServer(deps) as srv:
        yield srv


async def test_ack_is_answered_while_a_5000_alert_intake_runs(harness, api):
    async with httpx.AsyncClient(base_url=api.url, timeout=300) as c:
        assert (await c.post("/api/v2/alerts", json=[_item("AckMe")], headers=INTAKE)).status_code == 200
        [shown] = (await c.get("/api/v2/alerts")).json()
        done: dict[str, float] = {}
        loop = asyncio.get_running_loop()

        async def intake() -> None:
            batch = [_item("Storm", instance=f"host-{i}") for i in range(5000)]
            r = await c.post("/api/v2/alerts", json=batch, headers=INTAKE)
            assert r.status_code == 200
            done["intake"] = loop.time()

        async def ack() -> None:
            # the batch is being taken (some of it is held) before the ack is sent
            while len(harness.service.leader.pipeline.provider.current) < 50:
                await asyncio.sleep(0.005)
            r = await c.post(f"/api/v1/alerts/{shown['fingerprint']}/ack", json={}, headers=ALICE)
            assert r.status_code == 200, r.text
            done["ack"] = loop.time()

        await asyncio.gather(intake(), ack())
    assert done["ack"] < done["intake"], "the acknowledgement waited for the whole intake"
    assert len(harness.service.leader.pipeline.provider.current) == 5001
    rows = await harness.store.list_alerts("firing")
    assert len(rows) == 5001 and {r["source"] for r in rows} == {"token:prometheus"}


async def test_an_intake_source_resolves_only_alerts_it_raised(harness, api2):
    async with httpx.AsyncClient(base_url=api2.url) as c:
        r = await c.post("/api/v2/alerts", json=[_item("Mine"), _item("Theirs")], headers=INTAKE)
        assert r.status_code == 200
        assert (await c.post("/api/v2/alerts", json=[_item("ByOther")], headers=OTHER)).status_code == 200
        shown = {a["labels"]["alertname"]: a for a in (await c.get("/api/v2/alerts")).json()}
        assert {a["status"]["state"] for a in shown.values()} == {"active"}

        # the other source resolves one of prometheus's alerts (endsAt = now) and its own: only
        # its own resolves; the webhook endpoint is held to the same rule
        ended = "2026-11-30T10:00:00Z"
        r = await c.post("/api/v2/alerts", json=[dict(_item("Theirs"), endsAt=ended),
                                                 dict(_item("ByOther"), endsAt=ended)], headers=OTHER)
        assert r.status_code == 200
        hook = {"version": "4", "status": "resolved", "receiver": "x", "groupKey": "{}", "groupLabels": {},
                "commonLabels": {}, "externalURL": "", "alerts": [dict(_item("Mine"), status="resolved",
                                                                       startsAt="2026-11-30T09:00:00Z",
                                                                       endsAt=ended)]}
        assert (await c.post("/api/v1/intake/alertmanager", json=hook, headers=OTHER)).status_code == 200
        # nor may it cut the alert short with an earlier endsAt
        soon = "2026-11-30T10:00:01Z"
        assert (await c.post("/api/v2/alerts", json=[dict(_item("Mine"), endsAt=soon)],
                             headers=OTHER)).status_code == 200

        harness.clock.t = T0 + 2
        await harness.service.tick()
        rows = {r["labels"]["alertname"]: r for r in await harness.store.list_alerts()}
        assert rows["Theirs"]["state"] == "firing" and rows["Mine"]["state"] == "firing"
        assert rows["ByOther"]["state"] == "resolved"
        assert (rows["Mine"]["source"], rows["ByOther"]["source"]) == ("token:prometheus", "token:other-prom")
        assert harness.service.escalation.get(shown["Theirs"]["fingerprint"]) is None or \
            harness.service.escalation.get(shown["Theirs"]["fingerprint"]).state.status != "resolved"
        from tests.support.daemon_helpers import metric_values
        from prometheus_client import generate_latest
        text = generate_latest(harness.registry).decode()
        assert metric_values(text, "monitor_alerts_resolve_refused_total", source="api") == [2.0]
        assert metric_values(text, "monitor_alerts_resolve_refused_total", source="webhook") == [1.0]

        # the raiser resolves its own alert
        r = await c.post("/api/v2/alerts", json=[dict(_item("Theirs"), endsAt="2026-11-30T10:00:02Z")],
                         headers=INTAKE)
        assert r.status_code == 200
        assert (await harness.store.get_alert(shown["Theirs"]["fingerprint"]))["state"] == "resolved"
