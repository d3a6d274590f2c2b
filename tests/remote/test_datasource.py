"""Rules evaluated through a store's query API (``rules.datasource``, the vmalert model).

Against the real VictoriaMetrics: the inputs are remote-written, the rule manager evaluates
through ``/api/v1/query``, the alert fires and reaches ``on_alerts`` (the alerting path), the
recording result and ``ALERTS``/``ALERTS_FOR_STATE`` are written back by remote write, and a new
manager restores the pending ``for`` timer from ``ALERTS_FOR_STATE``. Against a scripted local
server: partial responses per group policy, error statuses, POST form bodies.
"""

from __future__ import annotations

import time

import httpx
import pytest
from aiohttp import web

from model.labels import Labels
from monitor.remote.datasource import RemoteDatasource
from monitor.rules.alerting import AlertState
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import RuleText
from tests.remote.test_write_stores import pipe
from tests.support.daemon_helpers import eventually
from tests.support.remote_stores import needs_vm, running_store

RULES = """\
groups:
  - name: g
    interval: 10s
    rules:
      - record: job:rw_up:sum
        expr: sum by (job) (rw_up)
      - alert: RwDown
        expr: rw_up == 0
        for: 10m
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.instance }} is down"}
      - alert: RwDownNow
        expr: rw_up == 0
        labels: {severity: warning}
"""


def _manager(store, ds, **kw) -> tuple[RuleManager, list]:
    sent: list = []
    mgr = RuleManager(store, None, datasource=ds, on_alerts=sent.extend, **kw)
    assert mgr.load([RuleText("r.yaml", RULES)]) == []
    return mgr, sent


@needs_vm
async def test_rules_evaluate_through_victoriametrics_and_write_back(tmp_path):
    async with running_store("vm", tmp_path / "vm") as vm:
        async with pipe(tmp_path / "q", vm.write_url, external_labels={"replica": "a"}) as p, \
                httpx.AsyncClient() as client:
            now = time.time()
            t = int(now * 1000)
            p.store.append_batch([(Labels.of({"__name__": "rw_up", "job": "api", "instance": i}), t - 5000, v)
                                  for i, v in (("a", 1.0), ("b", 0.0))])
            await p.drained()
            await vm.flush()
            ds = RemoteDatasource(vm.url, client)
            mgr, sent = _manager(p.store, ds, external_labels={"replica": "a"})
            [group] = mgr.groups()

            async def fired():
                await mgr.eval_group(group, time.time())
                return [a for a in sent if a.labels.get("alertname") == "RwDownNow"] or None
            [alert] = (await eventually(fired, timeout=30, what="RwDownNow fires"))[:1]
            assert alert.state == AlertState.FIRING and alert.labels.get("instance") == "b"
            assert all(st.health == "ok" for st in group.status), [st.last_error for st in group.status]
            pending = [a for r in group.alerting_rules() if r.name == "RwDown" for a in r.alerts()]
            assert [a.state for a in pending] == [AlertState.PENDING]
            active_at = pending[0].active_at
            await p.drained()  # results and ALERTS* go out by remote write
        rec = await vm.raw("job:rw_up:sum", "10m")
        assert {k: [v for _, v in s] for k, s in rec.items()} == {
            frozenset({"__name__": "job:rw_up:sum", "job": "api", "replica": "a"}.items()): [1.0] * len(
                next(iter(rec.values())))}
        alerts = await vm.raw('ALERTS{alertname="RwDown"}', "10m")
        assert [dict(k)["alertstate"] for k in alerts] == ["pending"]

        # A new replica (no state store) takes the pending timer from ALERTS_FOR_STATE.
        async with httpx.AsyncClient() as client:
            from monitor.tsdb.store import SampleStore
            mgr2, _ = _manager(SampleStore(), RemoteDatasource(vm.url, client), external_labels={"replica": "a"})

            async def restored():  # VictoriaMetrics answers instant queries from samples a second old
                return await mgr2.restore(time.time()) or None
            assert await eventually(restored, timeout=30, what="the restore") == 2  # RwDown and RwDownNow
            [restored] = [a for g in mgr2.groups() for r in g.alerting_rules() if r.name == "RwDown"
                          for a in r.alerts()]
            assert restored.state == AlertState.PENDING and restored.active_at == int(active_at)
            assert restored.labels.get("instance") == "b" and restored.labels.get("replica") == ""


class Scripted:
    def __init__(self, docs: list[tuple[int, dict]]) -> None:
        self.docs = docs
        self.forms: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.forms.append(dict(await request.post()))
        status, doc = self.docs[min(len(self.forms) - 1, len(self.docs) - 1)]
        return web.json_response(doc, status=status)


async def _serve(s: Scripted) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/api/v1/query", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


PARTIAL = {"status": "success", "isPartial": True,
           "data": {"resultType": "vector", "result": [{"metric": {"__name__": "rw_up", "job": "api", "instance": "b"},
                                                        "value": [1, "0"]}]}}


@pytest.mark.parametrize("policy,fires", [("abort", False), ("warn", True)])
async def test_partial_responses_follow_the_group_policy(policy, fires):
    from monitor.tsdb.store import SampleStore
    s = Scripted([(200, PARTIAL)])
    runner, url = await _serve(s)
    try:
        async with httpx.AsyncClient() as client:
            ds = RemoteDatasource(url, client, query_offset=30, group_partial_response={"g": policy})
            mgr, sent = _manager(SampleStore(), ds)
            [group] = mgr.groups()
            await mgr.eval_group(group, 1000.0)
    finally:
        await runner.cleanup()
    assert bool([a for a in sent if a.labels.get("alertname") == "RwDownNow"]) is fires
    assert all(st.health == ("ok" if fires else "err") for st in group.status)
    # POST form: the expression and the evaluation time less the datasource's query_offset
    assert {f["query"] for f in s.forms} == {"sum by (job) (rw_up)", "rw_up == 0"}
    assert {f["time"] for f in s.forms} == {"970.000"}


async def test_an_error_status_fails_only_that_evaluation():
    from monitor.tsdb.store import SampleStore
    s = Scripted([(422, {"status": "error", "errorType": "execution", "error": "too many series"})])
    runner, url = await _serve(s)
    try:
        async with httpx.AsyncClient() as client:
            mgr, sent = _manager(SampleStore(), RemoteDatasource(url, client))
            [group] = mgr.groups()
            await mgr.eval_group(group, 1000.0)
    finally:
        await runner.cleanup()
    assert sent == []
    assert {st.last_error for st in group.status} == {"remote query failed: execution: too many series"}
