"""No 500 on bad input, on the real HTTP server: each input that got a 500 before (webhook
``groupLabels`` not a mapping, deeply nested JSON, a silence matcher that is not an object, and
more found by the fuzzer) is a 400 with the reason, and the valid alerts of a partly bad batch
are kept. An unexpected exception in a handler is logged and answered 500, and the server keeps
serving; a state store that fails is a 503."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.api.deps import ApiDeps, MetricsExposition, ProcessDeps, ReloadResult
from tests.alerting_service.conftest import ApiServer
from tests.alerting_service.scoped_api import TOKENS

EVERYTHING = {"Authorization": f"Bearer {TOKENS['ops'][0]}"}
INTAKE = {"Authorization": f"Bearer {TOKENS['prometheus'][0]}"}
GOOD = {"labels": {"alertname": "Good", "severity": "warning", "service": "db"}}
SILENCE = {"matchers": [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}],
           "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T12:00:00Z"}


def webhook(**extra):
    return {"version": "4", "status": "firing", "alerts": [dict(GOOD, status="firing")], **extra}


async def _names(c: httpx.AsyncClient) -> list[str]:
    return sorted(a["labels"]["alertname"] for a in (await c.get("/api/v2/alerts")).json())


@pytest.mark.parametrize("group_labels", [["a", "b"], "ab", 5, {"a": 1}, {"a": ["x"]}])
async def test_webhook_with_bad_group_labels_is_400_and_keeps_the_alerts(scoped, group_labels):
    c = scoped.client
    r = await c.post("/api/v1/intake/alertmanager", json=webhook(groupLabels=group_labels), headers=INTAKE)
    assert r.status_code == 400
    assert r.json()["error"].startswith("groupLabels: expected an object of strings, got")
    assert await _names(c) == ["Good"]
    r = await c.post("/api/v1/intake/alertmanager", json=webhook(commonLabels=[1]), headers=INTAKE)
    assert r.status_code == 400 and r.json()["error"].startswith("commonLabels:")


BAD_JSON = [
    (b"[" * 8000 + b"]" * 8000, "bad JSON: nested deeper than 32 levels"),  # past the recursion limit
    (b'{"a":' * 40 + b"1" + b"}" * 40, "bad JSON: nested deeper than 32 levels"),
    (b"[NaN]", "bad JSON: NaN is not valid JSON"),
    (b'{"x": Infinity}', "bad JSON: Infinity is not valid JSON"),
    (b'["\\ud800"]', "bad JSON: a string holds a lone surrogate"),
    (b"\xff\xfe\xfd", "bad JSON"),
    (b"1" * 5000, "bad JSON"),  # past Python's integer-string limit
]


async def test_bad_json_is_400_with_the_reason_everywhere(scoped):
    for path, headers in (("/api/v2/alerts", INTAKE), ("/api/v1/intake/alertmanager", INTAKE),
                          ("/api/v2/silences", EVERYTHING), ("/api/v1/alerts/0123456789abcdef/ack", EVERYTHING)):
        for body, reason in BAD_JSON:
            r = await scoped.client.post(path, content=body, headers={**headers, "content-type": "application/json"})
            assert r.status_code == 400, (path, body[:20], r.text)
            assert r.json()["error"].startswith(reason), (path, r.json())


async def test_intake_time_out_of_range_is_400_and_the_valid_alerts_are_kept(scoped):
    bad = dict(GOOD, labels={"alertname": "Bad"}, startsAt="9999-12-31T23:00:00-14:00")
    r = await scoped.client.post("/api/v2/alerts", json=[GOOD, bad], headers=INTAKE)
    assert r.status_code == 400
    assert r.json()["error"] == 'alerts[1].startsAt: invalid RFC 3339 time "9999-12-31T23:00:00-14:00" (out of range)'
    assert await _names(scoped.client) == ["Good"]


BAD_MATCHERS = [
    (["service=api"], "matchers[0]: expected an object, got a string"),
    ([None], "matchers[0]: expected an object, got null"),
    ({"name": "service", "value": "api"}, "matchers: expected a non-empty list of matcher objects, got an object"),
    (5, "matchers: expected a non-empty list of matcher objects, got a number"),
    ([], "matchers: expected a non-empty list of matcher objects"),
    ([{"value": "api", "isRegex": False}], "matchers[0].name: required"),
    ([{"name": 1, "value": "api", "isRegex": False}], "matchers[0].name: expected a string, got a number"),
    ([{"name": "a", "value": None, "isRegex": False}], "matchers[0].value: expected a string, got null"),
    ([{"name": "a", "value": "b", "isRegex": "yes"}], "matchers[0].isRegex: expected a boolean, got a string"),
    ([{"name": "a", "value": "(", "isRegex": True}], "invalid matchers"),
    ('{service="api"', "invalid matchers"),
]


async def test_bad_silence_matchers_are_400_naming_the_item(scoped):
    for matchers, reason in BAD_MATCHERS:
        r = await scoped.client.post("/api/v2/silences", json=dict(SILENCE, matchers=matchers), headers=EVERYTHING)
        assert r.status_code == 400, (matchers, r.text)
        assert r.json()["error"].startswith(reason), (matchers, r.json())


async def test_bad_silence_fields_and_ack_bodies_are_400(scoped):
    for field, value in (("createdBy", 5), ("comment", ["x"]), ("id", {"a": 1}), ("startsAt", 5), ("endsAt", None),
                         ("endsAt", "soon"), ("endsAt", "9999-12-31T23:00:00-14:00")):
        r = await scoped.client.post("/api/v2/silences", json=dict(SILENCE, **{field: value}), headers=EVERYTHING)
        assert r.status_code == 400, (field, value, r.text)
    for body in (b"[]", b'"x"', b"5", b'{"comment": 5}', b'{"comment": {"a": 1}}'):
        r = await scoped.client.post("/api/v1/alerts/0123456789abcdef/ack", content=body, headers=EVERYTHING)
        assert r.status_code == 400, (body, r.text)


async def test_an_unexpected_error_is_logged_and_500_and_the_server_keeps_serving(caplog):
    def broken_health():
        raise ZeroDivisionError("a bug")

    deps = ApiDeps(process=ProcessDeps(health=broken_health, metrics=MetricsExposition(CollectorRegistry()),
                                       reload=ReloadResult))
    with caplog.at_level(logging.ERROR, logger="monitor.api"):
        async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url) as c:
            for _ in range(3):
                r = await c.get("/health")
                assert r.status_code == 500
                assert r.json() == {"status": "error", "error": "internal error (logged)"}
            assert (await c.get("/-/healthy")).status_code == 200
    [first, *_] = [rec for rec in caplog.records if rec.getMessage() == "API handler failed"]
    assert first.path == "/health" and first.exc_info[0] is ZeroDivisionError


async def test_a_failing_state_store_is_503(harness, scoped):
    await harness.store.close()
    r = await scoped.client.post("/api/v2/silences", json=dict(SILENCE, endsAt="2099-01-01T00:00:00Z"),
                                 headers=EVERYTHING)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "the state store is unavailable; try again"
