"""``/metrics`` rendering: the probe collector and the labelled counters render their own lines,
byte for byte what ``prometheus_client.generate_latest`` writes, and keep them current as results
come, go and change labels; per-probe duration is the ``probe_duration_seconds`` gauge and the
``monitor_probe_duration_seconds`` histogram is per kind."""

from __future__ import annotations

import json
import math
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.config.loader import load_config_text
from monitor.daemon.collectors import update_store_gauges
from monitor.daemon.probing import ProbeCollector, ProbeRunner
from monitor.metrics import LabelledCounter, Metrics, line_prefix, render_text
from monitor.tsdb.store import SampleStore
from probes.base import ProbeResult, Sample

TRICKY = 'a "quoted" \\ back\nslash é'


def probes_config(tmp_path, extra_labels: str = "", names=("disk-a", "disk-b")):
    probes = "".join(f"""
  - name: {n}
    kind: disk
    paths: [{tmp_path}]
    interval: 15s
    timeout: 5s{extra_labels}
""" for n in names)
    return load_config_text(f"probes:{probes}", str(tmp_path / "monitor.yaml"), base_dir=tmp_path, env={})


def result(value: float, *, free: float = 0.5, with_detail: bool = True) -> ProbeResult:
    r = ProbeResult(success=value == 1.0)
    r.duration_seconds = 0.25
    r.finished_at = 1_700_000_000.0
    if with_detail:
        r.add("probe_disk_free_ratio", free, path=TRICKY)
    r.samples.append(Sample("probe_success", {}, value))
    r.samples.append(Sample("probe_duration_seconds", {}, 0.25))
    return r


class Holder:
    """Stands in for the daemon: holds the running ProbeRunner (a reload replaces it)."""

    def __init__(self, runner: ProbeRunner) -> None:
        self.runner = runner


def setup(tmp_path, **kw):
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    store = SampleStore()
    holder = Holder(ProbeRunner(probes_config(tmp_path, **kw).probes, store, metrics))
    registry.register(ProbeCollector(lambda: holder.runner))
    return registry, metrics, store, holder


def lines_of(text: bytes, name: str) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


def test_render_text_is_generate_latest_byte_for_byte(tmp_path):
    registry, metrics, store, holder = setup(tmp_path, extra_labels=f"\n    labels: {{team: {json.dumps(TRICKY)}}}")
    holder.runner._record("disk-a", result(1.0), time.time())
    holder.runner._record("disk-b", result(0.0, free=math.inf), time.time())
    metrics.scheduler_missed.labels(TRICKY).inc(3)
    metrics.scrapes.labels("backend", "success").inc()
    Gauge("plain_gauge", "A plain gauge.", ["x"], registry=registry).labels(TRICKY).set(float("nan"))
    Counter("plain_events", "Plain counter.", registry=registry).inc(2)
    Histogram("plain_seconds", "Plain histogram.", registry=registry).observe(1e7)
    update_store_gauges(metrics, store)
    assert render_text(registry) == generate_latest(registry)
    text = render_text(registry).decode()
    assert 'team="a \\"quoted\\" \\\\ back\\nslash é"' in text
    assert registry.get_sample_value("probe_success", {"probe": "disk-b", "kind": "disk", "target": str(tmp_path),
                                                       "instance": str(tmp_path),
                                                       "team": TRICKY}) == 0.0
    assert registry.get_sample_value("monitor_scheduler_missed_runs_total", {"job": TRICKY}) == 3.0


def test_line_prefix_matches_generate_latest():
    for name, labels in [("up", {}), ("probe_x", {"b": "2", "a": TRICKY}), ("m", {"z": "", "_x": "1"})]:
        reg = CollectorRegistry()
        Gauge(name, "h", list(labels), registry=reg).labels(*labels.values()).set(1.5) if labels else \
            Gauge(name, "h", registry=reg).set(1.5)
        (line,) = [x for x in generate_latest(reg).decode().splitlines() if not x.startswith("#")]
        assert line == line_prefix(name, labels) + "1.5"


def test_probe_lines_follow_results_reloads_and_removals(tmp_path):
    registry, metrics, store, holder = setup(tmp_path)
    assert lines_of(render_text(registry), "probe_success") == []
    holder.runner._record("disk-a", result(1.0), time.time())
    holder.runner._record("disk-b", result(1.0), time.time())
    text = render_text(registry)
    assert len(lines_of(text, "probe_success")) == 2 and len(lines_of(text, "probe_disk_free_ratio")) == 2
    # a new result replaces the probe's lines; a family it no longer reports goes
    holder.runner._record("disk-a", result(0.0, with_detail=False), time.time())
    text = render_text(registry)
    assert [x for x in lines_of(text, "probe_success") if 'probe="disk-a"' in x][0].endswith(" 0.0")
    assert len(lines_of(text, "probe_disk_free_ratio")) == 1
    assert render_text(registry) == generate_latest(registry)

    # reload: disk-b removed, disk-a's labels changed; the last result is kept, as the daemon does
    old = holder.runner
    holder.runner = ProbeRunner(probes_config(tmp_path, extra_labels="\n    labels: {env: prod}",
                                              names=("disk-a",)).probes, store, metrics)
    holder.runner.last.update({n: r for n, r in old.last.items() if n in holder.runner.settings})
    text = render_text(registry)
    assert lines_of(text, "probe_success") == [
        f'probe_success{{env="prod",instance="{tmp_path}",kind="disk",probe="disk-a",target="{tmp_path}"}} 0.0']
    old._record("disk-b", result(1.0), time.time())  # a run of the old runner finishing late: not shown
    holder.runner._record("disk-a", result(1.0), time.time())
    assert lines_of(render_text(registry), "probe_success") == [
        f'probe_success{{env="prod",instance="{tmp_path}",kind="disk",probe="disk-a",target="{tmp_path}"}} 1.0']
    assert render_text(registry) == generate_latest(registry)


async def test_probe_duration_is_a_gauge_per_probe_and_a_histogram_per_kind(tmp_path):
    registry, metrics, store, holder = setup(tmp_path)
    await holder.runner.run_all()  # real disk probe runs
    text = render_text(registry)
    assert len(lines_of(text, "probe_duration_seconds")) == 2
    buckets = lines_of(text, "monitor_probe_duration_seconds_bucket")
    assert buckets and all('kind="disk"' in x and "probe=" not in x for x in buckets)
    assert registry.get_sample_value("monitor_probe_duration_seconds_count", {"kind": "disk"}) == 2
    assert registry.get_sample_value("monitor_probe_runs_total",
                                     {"probe": "disk-a", "kind": "disk", "outcome": "success"}) == 1


def test_labelled_counter():
    registry = CollectorRegistry()
    c = LabelledCounter("jobs_total", "Jobs.", ["job", "outcome"], registry=registry)
    assert c.labels("a", "ok") is c.labels("a", "ok")
    c.labels("a", "ok").inc()
    c.labels("b", "failed").inc(2.5)
    with pytest.raises(ValueError):
        c.labels("a", "ok").inc(-1)
    with pytest.raises(ValueError):
        c.labels("a")
    with pytest.raises(ValueError):  # the registry sees its name: no second family of it
        Counter("jobs", "Again.", registry=registry)
    assert render_text(registry).decode() == (
        "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"
        'jobs_total{job="a",outcome="ok"} 1.0\njobs_total{job="b",outcome="failed"} 2.5\n')
    assert render_text(registry) == generate_latest(registry)


def test_tsdb_memory_is_set_from_the_store(tmp_path):
    registry, metrics, store, holder = setup(tmp_path)
    for k in range(10):
        r = result(1.0)
        r.finished_at += 15 * k
        holder.runner._record("disk-a", r, time.time())
    update_store_gauges(metrics, store)
    got = registry.get_sample_value("monitor_tsdb_memory_bytes")
    assert got == store.estimated_memory_bytes > 0


def test_probe_histograms_are_histogram_families(tmp_path):
    """A probe's histogram samples (the llm probe's GenAI ones) are one ``histogram`` family each,
    so ``promtool check metrics`` accepts their ``_bucket``/``_sum``/``_count`` names."""
    from probes.genai import TOKENS, GenAiMetrics

    config = load_config_text("probes:\n  - {name: llm, kind: llm, provider: openai, api_key: k, interval: 15s,"
                              " timeout: 5s}\n", str(tmp_path / "monitor.yaml"), base_dir=tmp_path, env={})
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    runner = ProbeRunner(config.probes, SampleStore(), metrics)
    holder = Holder(runner)
    registry.register(ProbeCollector(lambda: holder.runner))
    r = result(1.0, with_detail=False)
    genai = GenAiMetrics()
    genai.record(operation="chat", provider="openai", model="m", seconds=0.3, input_tokens=20, output_tokens=5)
    genai.emit(r)
    runner._record("llm", r, time.time())
    text = render_text(registry).decode()
    assert f"# TYPE {TOKENS} histogram" in text and f"# TYPE {TOKENS}_bucket" not in text
    assert render_text(registry) == generate_latest(registry)
    target = runner.settings["llm"].target()
    labels = {"probe": "llm", "kind": "llm", "target": target, "instance": target, "gen_ai_operation_name": "chat",
              "gen_ai_provider_name": "openai", "gen_ai_request_model": "m", "gen_ai_token_type": "input"}
    assert registry.get_sample_value(f"{TOKENS}_count", labels) == 1
    r2 = result(1.0, with_detail=False)  # a result without the histograms drops their families
    runner._record("llm", r2, time.time())
    assert f"{TOKENS}_bucket" not in render_text(registry).decode()
