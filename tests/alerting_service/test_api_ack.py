"""Acknowledge through every path — HTTP API (bearer), Slack button (signed), signed link, CLI — each
stops the escalation; unauthenticated, forged, stale and replayed requests are rejected."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from urllib.parse import urlencode

import httpx

from monitor.cli import main
from monitor.escalation.schedule import OnCallLookup
from monitor.notify.links import make_token
from tests.alerting_service.conftest import (API_TOKEN, CLI_TOKEN, LINK_KEY, PAGER_KEY, PD_KEYS, SIGNING_SECRET, T0,
                                             firing_rule_alert, resolved_rule_alert)

LABELS = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}


async def _fire_to_secondary(harness):
    """Fire, deliver, and let 15 minutes pass: primary and secondary paged."""
    alert = firing_rule_alert(LABELS, T0 - 60)
    harness.clock.t = T0
    await harness.service.ingest([alert])
    await harness.deliver()
    await harness.at(T0 + 900)
    return alert


def _assert_stopped(harness, fp):
    esc = harness.service.escalation.get(fp)
    assert esc.state.status == "acknowledged"
    assert harness.pd_triggers(PD_KEYS["em"]) == []


async def test_api_ack_with_bearer_stops_escalation_and_acknowledges_everywhere(harness, api):
    alert = await _fire_to_secondary(harness)
    fp = alert.fingerprint
    lookup = OnCallLookup.from_config(harness.config.alerting)
    primary, secondary = lookup("schedule:primary", T0), lookup("schedule:secondary", T0)
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.post(f"/api/v1/alerts/{fp}/ack")
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
        r = await c.post(f"/api/v1/alerts/{fp}/ack", headers={"Authorization": "Bearer not-the-token"})
        assert r.status_code == 401
        r = await c.post(f"/api/v1/alerts/{fp}/ack", headers={"Authorization": "Basic " + API_TOKEN})
        assert r.status_code == 401
        assert harness.service.escalation.get(fp).state.status == "escalating"
        r = await c.post(f"/api/v1/alerts/{fp}/ack", headers={"Authorization": f"Bearer {API_TOKEN}"},
                         json={"comment": "looking"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["status"] == "acknowledged"
        assert r.json()["data"]["acked_by"] == "alice"
        r = await c.post("/api/v1/alerts/0000000000000000/ack", headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert r.status_code == 404
    await harness.deliver()
    await harness.at(T0 + 1800)
    await harness.at(T0 + 2700)
    _assert_stopped(harness, fp)
    # the channel message is updated; PagerDuty incidents are acknowledged
    assert any(u["channel"] == "CINCIDENTS" for u in harness.slack_updates())
    acks = {e["routing_key"] for e in harness.pd_events() if e["event_action"] == "acknowledge"}
    assert acks >= {PAGER_KEY, PD_KEYS[primary], PD_KEYS[secondary]}
    audit = await harness.store.list_audit(target=fp)
    assert audit[0]["actor"] == "alice" and audit[0]["action"] == "ack"
    assert audit[0]["source"] == "api:127.0.0.1"
    assert harness.registry.get_sample_value("monitor_acknowledgements_total", {"source": "api"}) == 1
    assert harness.registry.get_sample_value("monitor_time_to_acknowledge_seconds_count", {"priority": "P0"}) == 1

    # unack restarts from the primary; resolve ends it
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {API_TOKEN}"}) as c:
        harness.clock.t = T0 + 3000
        r = await c.post(f"/api/v1/alerts/{fp}/unack")
        assert r.json()["data"]["status"] == "escalating"
        await harness.deliver()
        assert len(harness.pd_triggers(PD_KEYS[primary])) == 2
        r = await c.post(f"/api/v1/alerts/{fp}/resolve")
        assert r.json()["data"]["status"] == "resolved"
        r = await c.get(f"/api/v1/alerts/{fp}/timeline")
        events = [e["event"] for e in r.json()["data"]]
        assert "acknowledged" in events and "unacknowledged" in events and "resolved" in events


def _slack_request(payload: dict, ts: str, secret: str = SIGNING_SECRET):
    body = urlencode({"payload": json.dumps(payload)}).encode()
    sig = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
                  "Content-Type": "application/x-www-form-urlencoded"}


async def test_slack_button_signed_acks_and_forged_stale_replayed_are_rejected(harness, api):
    alert = await _fire_to_secondary(harness)
    fp = alert.fingerprint
    payload = {"type": "block_actions", "user": {"id": "U01BOB", "username": "bob"},
               "actions": [{"action_id": "ack", "value": fp}]}
    ts = str(int(harness.clock()))
    async with httpx.AsyncClient(base_url=api.url) as c:
        body, headers = _slack_request(payload, ts, secret="wrong-secret")
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 401 and "bad signature" in r.text
        stale = str(int(harness.clock()) - 301)
        body, headers = _slack_request(payload, stale)
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 401 and "stale" in r.text
        r = await c.post("/api/v1/slack/actions", content=body)
        assert r.status_code == 401
        assert harness.service.escalation.get(fp).state.status == "escalating"

        body, headers = _slack_request(payload, ts)
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 200, r.text
        r = await c.post("/api/v1/slack/actions", content=body, headers=headers)
        assert r.status_code == 401 and "replay" in r.text
    await harness.at(T0 + 1800)
    _assert_stopped(harness, fp)
    esc = harness.service.escalation.get(fp)
    assert esc.state.acked_by == "slack:bob"
    audit = await harness.store.list_audit(target=fp)
    assert audit[0]["source"] == "slack:U01BOB"


async def test_signed_link_confirms_then_acks_and_bad_links_are_refused(harness, api):
    alert = await _fire_to_secondary(harness)
    fp = alert.fingerprint
    # the pages carry signed links
    page = harness.pd_triggers(PAGER_KEY)[0]
    hrefs = {link["text"]: link["href"] for link in page.get("links", [])}
    assert hrefs["Acknowledge"].startswith("http://127.0.0.1:9/ack/")
    token = hrefs["Acknowledge"].rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=api.url) as c:
        r = await c.get(f"/ack/{token}")
        assert r.status_code == 200 and "<form" in r.text
        assert harness.service.escalation.get(fp).state.status == "escalating"  # GET never acts
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        assert (await c.post(f"/ack/{forged}")).status_code == 403
        expired = make_token(fp, "ack", harness.clock() - 1, LINK_KEY)
        r = await c.post(f"/ack/{expired}")
        assert r.status_code == 403 and "expired" in r.text
        r = await c.post(f"/ack/{token}")
        assert r.status_code == 200 and "acknowledged" in r.text
    await harness.at(T0 + 1800)
    _assert_stopped(harness, fp)
    audit = await harness.store.list_audit(target=fp)
    assert audit[0]["actor"] == "signed-link" and audit[0]["source"].startswith("link:")


async def test_cli_ack_and_silences(harness, api, monkeypatch, capsys):
    alert = await _fire_to_secondary(harness)
    fp = alert.fingerprint
    monkeypatch.delenv("MONITOR_API_TOKEN", raising=False)
    rc = await asyncio.to_thread(main, ["ack", fp, "--url", api.url, "--config", "/nonexistent.yaml"])
    assert rc == 1 and "401" in capsys.readouterr().err
    monkeypatch.setenv("MONITOR_API_TOKEN", CLI_TOKEN)
    rc = await asyncio.to_thread(main, ["ack", fp, "--url", api.url])
    assert rc == 0
    assert f"{fp}: acknowledged" in capsys.readouterr().out
    await harness.at(T0 + 1800)
    _assert_stopped(harness, fp)
    audit = await harness.store.list_audit(target=fp)
    assert audit[0]["actor"] == "cli-bot" and audit[0]["source"].startswith("cli:")

    rc = await asyncio.to_thread(main, ["silence", "add", 'service="api"', "alertname=~Api.*", "--duration", "2h",
                                        "--start", "2026-11-30T10:00:00Z", "--comment", "deploy", "--author", "alice",
                                        "--url", api.url])
    assert rc == 0
    sid = capsys.readouterr().out.strip()
    assert harness.service.silences.get(sid).created_by == "alice"
    rc = await asyncio.to_thread(main, ["silence", "list", "--url", api.url])
    out = capsys.readouterr().out
    assert rc == 0 and sid in out and 'alertname=~"Api.*"' in out and "deploy" in out
    rc = await asyncio.to_thread(main, ["silence", "expire", sid, "--url", api.url])
    assert rc == 0
    assert harness.service.silences.get(sid).state(harness.clock()) == "expired"
    rc = await asyncio.to_thread(main, ["silence", "expire", sid, "--url", api.url])
    assert rc == 1


async def test_silences_api_v2_shapes_and_auth(harness, api):
    await harness.service.start()
    async with httpx.AsyncClient(base_url=api.url) as c:
        body = {"matchers": [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}],
                "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T12:00:00Z",
                "createdBy": "alice", "comment": "maintenance"}
        assert (await c.post("/api/v2/silences", json=body)).status_code == 401
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        r = await c.post("/api/v2/silences", json=body, headers=auth)
        assert r.status_code == 200, r.text
        sid = r.json()["silenceID"]
        bad = dict(body, matchers=[{"name": "service", "value": "", "isRegex": False, "isEqual": True}])
        r = await c.post("/api/v2/silences", json=bad, headers=auth)
        assert r.status_code == 400 and "empty string" in r.text
        [s] = (await c.get("/api/v2/silences")).json()
        assert s["id"] == sid and s["status"]["state"] == "active" and s["createdBy"] == "alice"
        assert (await c.get(f"/api/v2/silence/{sid}")).json()["comment"] == "maintenance"
        assert (await c.delete(f"/api/v2/silence/{sid}")).status_code == 401
        assert (await c.delete(f"/api/v2/silence/{sid}", headers=auth)).status_code == 200
        assert (await c.get(f"/api/v2/silence/{sid}")).json()["status"]["state"] == "expired"
        assert (await c.delete("/api/v2/silence/nope", headers=auth)).status_code == 404


async def test_ack_comment_is_on_the_timeline_and_resolved_alerts_leave_the_list(harness, api):
    """Regression (new-user report): the timeline shows the acknowledger's comment; a resolved
    alert is no longer listed by ``GET /api/v2/alerts`` (Alertmanager leaves resolved alerts out)."""
    alert = firing_rule_alert({"alertname": "CommentedDown", "severity": "critical", "service": "api"}, T0 - 60)
    await harness.service.ingest([alert], now=T0)
    fp = alert.fingerprint
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {API_TOKEN}"}) as c:
        r = await c.post(f"/api/v1/alerts/{fp}/ack", json={"comment": "looking at pinecone"})
        assert r.status_code == 200
        timeline = (await c.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
        acked = [e for e in timeline if e["event"] == "acknowledged"]
        assert acked and acked[-1]["detail"]["detail"] == "looking at pinecone"
        assert fp in {a["fingerprint"] for a in (await c.get("/api/v2/alerts")).json()}
        harness.clock.advance(60)
        await harness.service.ingest([resolved_rule_alert(alert, harness.clock())])
        assert fp not in {a["fingerprint"] for a in (await c.get("/api/v2/alerts")).json()}


async def test_acking_a_muted_never_notified_alert_tells_no_vendor_and_says_why(harness, api, monkeypatch, capsys):
    """Issue 16 C: an alert muted from the start was never paged nor posted; acknowledging or
    resolving it sends no PagerDuty acknowledge/resolve and no Slack [ACK], and the CLI says why."""
    monkeypatch.setenv("MONITOR_API_TOKEN", CLI_TOKEN)
    rc = await asyncio.to_thread(main, ["silence", "add", 'service="api"', "--duration", "2h",
                                        "--start", "2026-11-30T09:00:00Z", "--comment", "maintenance",
                                        "--author", "alice", "--url", api.url])
    assert rc == 0
    sid = capsys.readouterr().out.strip()
    alert = firing_rule_alert(LABELS, T0 - 60)
    fp = alert.fingerprint
    harness.clock.t = T0
    await harness.service.ingest([alert])
    await harness.deliver()
    await harness.at(T0 + 900)
    assert harness.pd_events() == [] and harness.slack_posts() == []

    rc = await asyncio.to_thread(main, ["ack", fp, "--url", api.url])
    out = capsys.readouterr().out
    assert rc == 0
    await harness.deliver()
    assert harness.pd_events() == []
    assert harness.slack_posts() == [] and harness.slack_updates() == []
    assert out.strip() == (f"{fp}: acknowledged; no escalation was running (the alert is silenced by silence "
                           f"{sid}); no receiver had been notified of it, so none was told")
    rc = await asyncio.to_thread(main, ["ack", fp, "--url", api.url, "--resolve"])
    assert rc == 0 and "resolved; no escalation was running" in capsys.readouterr().out
    await harness.deliver()
    await harness.at(T0 + 1000)
    assert harness.pd_events() == []
    assert harness.slack_posts() == [] and harness.slack_updates() == []


async def test_ack_answer_names_the_receivers_told(harness, api):
    alert = await _fire_to_secondary(harness)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {API_TOKEN}"}) as c:
        r = await c.post(f"/api/v1/alerts/{alert.fingerprint}/ack")
    data = r.json()["data"]
    assert data["notified_receivers"] == ["pager", "slack-incidents"]
    assert data["outcome"] == "acknowledged; escalation stopped; updated receivers: pager, slack-incidents"
