"""The shipped rule tests (``rules/tests/*.yaml``, promtool's format) with the rules evaluated
remotely: inputs remote-written to a real Prometheus (its remote-write receiver; one fresh
process per test group), every group evaluated through its ``/api/v1/query`` by the rule
manager's datasource path, recording results and ``ALERTS`` written back by remote write.

Prometheus only appends samples near its newest one, so the run is stepwise, as an evaluating
daemon sees the world: at each evaluation step the inputs up to that time are written, then each
group is evaluated and its results are written before the next group runs (a later group reads
them, as in promtool). Alert expectations are checked as ``monitor.rules.unittest`` checks them.
The generated SLO rule tests are left out (see :data:`ONE_GROUP_CHAINS`). Debian's Prometheus is
2.42, so the expressions run with Prometheus 2 semantics here, as ``promtool test rules`` of that
version runs them in ``.ci/run``.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from model.labels import Labels
from monitor.remote.datasource import RemoteDatasource
from monitor.remote.protocol import HEADERS, compress, encode
from monitor.rules.alerting import AlertState
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import parse_duration
from monitor.rules.unittest import expand_values, parse_series
from monitor.tsdb.store import SampleStore
from tests.support.remote_stores import Store, needs_prometheus

ROOT = Path(__file__).resolve().parents[2]
#: ``slo_test`` and ``oncall_slo_test`` are left out: the generated SLO rules keep each SLO's
#: recording rules and the alerts reading them in one group, which remote evaluation (like
#: vmalert) sees one evaluation late — the recordings reach the store by remote write after the
#: group ran — so their minute-exact expectations ("pages within 2 minutes", budget figures) are a
#: minute off. (They also take minutes this way.) The other files' groups chain only across
#: groups, which the run preserves.
ONE_GROUP_CHAINS = {"slo_test", "oncall_slo_test"}
TEST_FILES = sorted(p for p in (ROOT / "rules" / "tests").glob("*_test.yaml") if p.stem not in ONE_GROUP_CHAINS)


class RemoteRun:
    """One test group against one Prometheus: a sample store teed into synchronous remote writes."""

    def __init__(self, store: Store, client: httpx.AsyncClient) -> None:
        self.prom = store
        self.client = client
        self.local = SampleStore(retention_seconds=None)
        self.out: list[tuple[Labels, list[int], list[float]]] = []
        self.local.set_tee(self._tee)

    def _tee(self, ids, ts, vs, labels_of) -> None:
        by: dict[Labels, tuple[list[int], list[float]]] = {}
        for i, t, v in zip(ids, ts, vs):
            got = by.setdefault(labels_of(i), ([], []))
            got[0].append(t)
            got[1].append(v)
        self.out += [(lbl, t, v) for lbl, (t, v) in by.items()]

    async def push(self) -> None:
        """Send what the local store accepted since the last push; raise unless accepted."""
        self.local.flush()
        out, self.out = self.out, []
        for k in range(0, len(out), 500):
            r = await self.client.post(self.prom.write_url, content=compress(encode(out[k:k + 500])), headers=HEADERS)
            assert r.status_code // 100 == 2, f"remote write refused: {r.status_code} {r.text[:300]}"


def _inputs(tg: dict[str, Any], interval: float) -> list[tuple[Labels, int, float]]:
    batch = []
    for s in tg.get("input_series") or []:
        lbl = parse_series(str(s["series"]))
        for i, v in enumerate(expand_values(str(s.get("values", "")))):
            if v is not None:
                batch.append((lbl, int(round(i * interval * 1000)), v))
    batch.sort(key=lambda x: x[1])
    return batch


async def _run_group(tmp: Path, files: list[str], ev: float, order: list[str], tg: dict[str, Any]) -> list[str]:
    interval = parse_duration(str(tg["interval"])) if tg.get("interval") else ev
    ext = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    inputs = _inputs(tg, interval)
    prom = Store("prometheus", tmp)
    await prom.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            run = RemoteRun(prom, client)
            ds = RemoteDatasource(prom.url, client)
            mgr = RuleManager(run.local, None, external_labels=ext, require_severity=False, default_interval=ev,
                              external_url=str(tg.get("external_url", "")), datasource=ds)
            groups, errs = mgr.build(files)
            assert not errs, errs
            pos = {n: i for i, n in enumerate(order)}
            groups.sort(key=lambda g: pos.get(g.name, len(pos)))
            alert_tests = list(tg.get("alert_rule_test") or [])
            times = [parse_duration(str(a.get("eval_time", 0))) for a in alert_tests]
            expr_tests = list(tg.get("promql_expr_test") or [])
            max_t = max(times + [parse_duration(str(e.get("eval_time", 0))) for e in expr_tests] + [0.0])
            errors: list[str] = []
            n_in = 0
            for k in range(int(math.floor(max_t / ev + 1e-9)) + 1):
                ts = k * ev
                while n_in < len(inputs) and inputs[n_in][1] <= int(round(ts * 1000)):
                    lbl, t, v = inputs[n_in]
                    run.local.append(lbl, t, v)
                    n_in += 1
                await run.push()
                for g in groups:
                    g.eval(ts, await ds.query_fn(g, ts))
                    for r, st in zip(g.rules, g.status):
                        assert st.health != "err", f"rule {r.name} at {ts}s: {st.last_error}"
                    await run.push()
                for t, case in zip(times, alert_tests):
                    if not (ts <= t + 1e-9 and t < ts + ev - 1e-9):
                        continue
                    name = str(case["alertname"])
                    got = sorted((a.labels, Labels.of(a.annotations)) for g in groups for r in g.alerting_rules()
                                 if r.name == name for a in r.alerts() if a.state == AlertState.FIRING)
                    exp = sorted((Labels.of({**{str(a): str(b) for a, b in (e.get("exp_labels") or {}).items()},
                                             "alertname": name}),
                                  Labels.of({str(a): str(b) for a, b in (e.get("exp_annotations") or {}).items()}))
                                 for e in case.get("exp_alerts") or [])
                    if got != exp:
                        errors.append(f"{tg.get('name', '')}: {name} at {t}s:\n  exp {exp}\n  got {got}")
            for lbl, t, v in inputs[n_in:]:
                run.local.append(lbl, t, v)
            await run.push()
            for case in expr_tests:
                t_ms = int(round(parse_duration(str(case.get("eval_time", 0))) * 1000))
                got_s = sorted((s.labels, s.v) for s in await ds.query(str(case["expr"]), t_ms))
                exp_s = sorted((parse_series(str(s.get("labels", "{}"))) if str(s.get("labels", "")).strip()
                                not in ("", "{}") else Labels(), float(s.get("value", 0)))
                               for s in case.get("exp_samples") or [])
                if [lb for lb, _ in got_s] != [lb for lb, _ in exp_s] or not all(
                        math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
                        for (_, a), (_, b) in zip(got_s, exp_s)):
                    errors.append(f"{tg.get('name', '')}: expr {case['expr']} at {t_ms}ms:\n"
                                  f"  exp {exp_s}\n  got {got_s}")
            return errors
    finally:
        prom.stop()


@needs_prometheus
@pytest.mark.parametrize("path", TEST_FILES, ids=[p.stem for p in TEST_FILES])
async def test_shipped_rule_tests_pass_with_rules_evaluated_remotely(tmp_path, path):
    doc = yaml.safe_load(path.read_text())
    ev = parse_duration(str(doc.get("evaluation_interval", "1m")))
    files: list[str] = []
    for rf in doc.get("rule_files") or []:
        files.extend(sorted(glob.glob(str(path.parent / rf))))
    order = [str(x) for x in doc.get("group_eval_order") or []]
    errors: list[str] = []
    for i, tg in enumerate(doc.get("tests") or []):
        errors += await _run_group(tmp_path / f"g{i}", files, ev, order, tg)
    assert not errors, "\n".join(errors)
