"""Alertmanager's v2 API as the real ``amtool`` (0.25) uses it, against the real daemon:
``alert query`` with matchers and the ``--active/--silenced/--inhibited`` filters, ``silence
add/query/expire`` (a silence of only negative matchers too), ``config show``; plus the
``/api/v2/alerts`` filters, ``/alerts/groups``, ``/receivers`` and ``/status`` shapes."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.support.daemon_helpers import ADMIN_TOKEN, TinyHttpServer, eventually, run_daemon, write_config

pytestmark = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")

WEBHOOK_SECRET = "https://hooks.example/secret-path-0123456789abcdef"


def _config(tmp_path, hook_url):
    return write_config(tmp_path, f"""
        api:
          tokens: [{{name: oncall, token: {ADMIN_TOKEN}, scopes: [read, ack, admin, intake]}}]
        receivers:
          - name: team-hook
            webhook_configs: [{{url: "{hook_url}/hook"}}]
          - name: db-hook
            webhook_configs: [{{url: "{hook_url}/db"}}]
          - name: secret-hook
            webhook_configs: [{{url: "{WEBHOOK_SECRET}"}}]
        alerting:
          route:
            receiver: team-hook
            group_wait: 1h
            group_by: [alertname]
            routes:
              - matchers: ['service="db"']
                receiver: db-hook
        """)


async def _amtool(tmp_path, url, *args):
    http = tmp_path / "amtool-http.yml"
    http.write_text(f"authorization:\n  credentials: {ADMIN_TOKEN}\n")
    proc = await asyncio.create_subprocess_exec(
        "amtool", f"--alertmanager.url={url}", f"--http.config.file={http}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


async def _post_alerts(d, alerts):
    r = await d.post("/api/v2/alerts", json=alerts)
    assert r.status_code == 200, r.text


async def test_amtool_against_the_daemon(tmp_path):
    async with TinyHttpServer({}) as hook, run_daemon(_config(tmp_path, hook.url)) as d:
        await eventually(lambda: _leading(d), what="leadership")
        await _post_alerts(d, [
            {"labels": {"alertname": "ApiDown", "service": "api", "severity": "critical"},
             "annotations": {"summary": "api down"}},
            {"labels": {"alertname": "DbSlow", "service": "db", "severity": "warning"}},
        ])
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json"))
        assert sorted(a["labels"]["alertname"] for a in out) == ["ApiDown", "DbSlow"]
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json", 'service="db"'))
        assert [a["labels"]["alertname"] for a in out] == ["DbSlow"]
        assert out[0]["receivers"] == [{"name": "db-hook"}]
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json", "--receiver=team-.*"))
        assert [a["labels"]["alertname"] for a in out] == ["ApiDown"]

        # silence add: a silence of only negative matchers that do not match "" is accepted, as in Alertmanager
        sid = (await _amtool(tmp_path, d.url, "silence", "add", "-c", "deploy", "-d", "1h",
                             'service!=""', 'severity!~"critical|"')).strip()
        assert len(sid) > 8
        silenced = lambda: _alerts(d, "silenced=true&active=false")  # noqa: E731
        got = await eventually(silenced, what="DbSlow silenced")
        assert [a["labels"]["alertname"] for a in got] == ["DbSlow"]
        assert got[0]["status"]["state"] == "suppressed" and got[0]["status"]["silencedBy"] == [sid]
        # amtool's default asks for active alerts only; --silenced alone for silenced ones only
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json"))
        assert [a["labels"]["alertname"] for a in out] == ["ApiDown"]
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json", "--silenced"))
        assert [a["labels"]["alertname"] for a in out] == ["DbSlow"]
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json", "--silenced", "--active"))
        assert sorted(a["labels"]["alertname"] for a in out) == ["ApiDown", "DbSlow"]

        out = json.loads(await _amtool(tmp_path, d.url, "silence", "query", "-o", "json"))
        assert [s["id"] for s in out] == [sid]
        out = json.loads(await _amtool(tmp_path, d.url, "silence", "query", "-o", "json", 'service="api"'))
        assert out == []  # the silence's matcher service!="" read as {service: ""} fails service="api"
        await _amtool(tmp_path, d.url, "silence", "expire", sid)
        out = json.loads(await _amtool(tmp_path, d.url, "silence", "query", "-o", "json"))
        assert out == []  # amtool shows active silences only
        out = json.loads(await _amtool(tmp_path, d.url, "silence", "query", "-o", "json", "--expired"))
        assert [s["id"] for s in out] == [sid]

        shown = await _amtool(tmp_path, d.url, "config", "show")
        assert "team-hook" in shown and "db-hook" in shown
        assert "secret-path" not in shown  # webhook URLs are secrets

        # resolved alerts leave the list, as in Alertmanager
        await _post_alerts(d, [{"labels": {"alertname": "DbSlow", "service": "db", "severity": "warning"},
                                "endsAt": "2020-01-01T00:00:00Z"}])
        out = json.loads(await _amtool(tmp_path, d.url, "alert", "query", "-o", "json", "--silenced", "--active"))
        assert [a["labels"]["alertname"] for a in out] == ["ApiDown"]


async def test_groups_receivers_status_and_bad_filters(tmp_path):
    async with TinyHttpServer({}) as hook, run_daemon(_config(tmp_path, hook.url)) as d:
        await eventually(lambda: _leading(d), what="leadership")
        await _post_alerts(d, [
            {"labels": {"alertname": "ApiDown", "service": "api", "instance": "a"}},
            {"labels": {"alertname": "ApiDown", "service": "api", "instance": "b"}},
            {"labels": {"alertname": "DbSlow", "service": "db"}},
        ])
        groups = (await d.get("/api/v2/alerts/groups")).json()
        assert [(g["receiver"]["name"], g["labels"], len(g["alerts"])) for g in groups] == [
            ("db-hook", {"alertname": "DbSlow"}, 1), ("team-hook", {"alertname": "ApiDown"}, 2)]
        assert "escalation" not in groups[0]["alerts"][0]
        groups = (await d.get("/api/v2/alerts/groups", params={"receiver": "db-.*"})).json()
        assert [g["receiver"]["name"] for g in groups] == ["db-hook"]
        groups = (await d.get("/api/v2/alerts/groups", params={"filter": 'instance="b"'})).json()
        assert [len(g["alerts"]) for g in groups] == [1]

        assert (await d.get("/api/v2/receivers")).json() == [
            {"name": "team-hook"}, {"name": "db-hook"}, {"name": "secret-hook"}]
        status = (await d.get("/api/v2/status")).json()
        assert status["cluster"]["status"] == "disabled"
        assert set(status["versionInfo"]) == {"branch", "buildDate", "buildUser", "goVersion", "revision",
                                              "version"}
        assert "secret-path" not in status["config"]["original"] and ADMIN_TOKEN not in status["config"]["original"]
        r = await d.client.get(d.url + "/api/v2/status", headers={"Authorization": ""})
        assert r.status_code == 401

        for params in ({"filter": "not a matcher"}, {"active": "maybe"}, {"receiver": "("}):
            r = await d.get("/api/v2/alerts", params=params)
            assert r.status_code == 400, (params, r.text)
        r = await d.get("/api/v2/alerts", params={"filter": 'instance=""'})  # absent label matches ""
        assert [a["labels"]["alertname"] for a in r.json()] == ["DbSlow"]
        r = await d.get("/api/v2/alerts", params={"filter": 'instance!=""'})
        assert sorted(a["labels"]["instance"] for a in r.json()) == ["a", "b"]


async def _leading(d):
    r = await d.get("/api/v2/alerts")
    return r.status_code == 200


async def _alerts(d, query):
    r = await d.get(f"/api/v2/alerts?{query}")
    return r.json() if r.status_code == 200 and r.json() else None
