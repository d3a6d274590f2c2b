"""The alerting API over its narrow interfaces alone (no daemon): a follower answers 503 before any
token check, and the ``api:`` settings are read on every request, so a reload's tokens and keys
apply at once."""

from __future__ import annotations

import httpx

from monitor.api.deps import AlertingDeps, ApiDeps
from monitor.config.model import ApiConfig
from tests.alerting_service.conftest import API_TOKEN, ApiServer

SILENCE = {"matchers": [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}],
           "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T12:00:00Z", "comment": "deploy"}


async def test_a_follower_answers_503_on_every_alerting_route_before_checking_tokens(harness):
    deps = ApiDeps(settings=lambda: harness.config.api, alerting=AlertingDeps(ports=lambda: None))
    async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url) as c:
        for method, path in (("POST", "/api/v1/alerts/abc/ack"), ("GET", "/api/v1/alerts/abc/timeline"),
                             ("GET", "/api/v2/alerts"), ("POST", "/api/v2/alerts"),
                             ("POST", "/api/v1/intake/alertmanager"), ("GET", "/api/v2/silences"),
                             ("POST", "/api/v2/silences"), ("DELETE", "/api/v2/silence/x"),
                             ("POST", "/api/v1/slack/actions"), ("GET", "/ack/x.ack.1.sig")):
            r = await c.request(method, path)
            assert r.status_code == 503, (method, path, r.text)
            assert r.json() == {"status": "error", "error": "alerting is not running"}
        # only the groups given are mounted: no process or query routes here
        assert (await c.get("/health")).status_code == 404
        assert (await c.get("/-/healthy")).text == "OK\n"


async def test_settings_are_read_per_request_so_a_reload_applies(harness):
    await harness.new_service()
    settings = {"api": ApiConfig.model_validate({"tokens": [{"name": "alice", "token": API_TOKEN}]})}
    deps = ApiDeps(settings=lambda: settings["api"], alerting=AlertingDeps(ports=harness.service.ports))
    rotated = "ck_live_rotated_token_0123456789"
    async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url) as c:
        r = await c.post("/api/v2/silences", json=SILENCE, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert r.status_code == 200, r.text
        assert (await c.post("/api/v1/slack/actions", content=b"")).status_code == 404  # no signing secret
        assert (await c.get("/ack/x.ack.1.sig")).status_code == 404  # no link key

        settings["api"] = ApiConfig.model_validate({"tokens": [{"name": "bob", "token": rotated}],
                                                    "slack_signing_secret": "s" * 32, "link_key": "k" * 32})
        r = await c.post("/api/v2/silences", json=SILENCE, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert r.status_code == 401
        r = await c.post("/api/v2/silences", json=SILENCE, headers={"Authorization": f"Bearer {rotated}"})
        assert r.status_code == 200, r.text
        assert harness.service.silences.get(r.json()["silenceID"]).created_by == "bob"
        assert (await c.post("/api/v1/slack/actions", content=b"")).status_code == 401  # verified now
        assert (await c.get("/ack/x.ack.1.sig")).status_code == 403  # checked now
