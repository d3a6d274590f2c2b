"""The daemon with ``remote_write`` and ``rules.datasource`` pointed at a real VictoriaMetrics:
rule results, ``ALERTS``, the daemon's own ``monitor_*`` metrics reach the store through the
queue beside the sample store, and rules evaluated remotely go through the alerting path."""

from __future__ import annotations


from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config
from tests.support.remote_stores import needs_vm, running_store

RULES = """\
groups:
  - name: remote
    interval: 1s
    rules:
      - record: rw:one
        expr: vector(1)
      - alert: RwStoreSeesUs
        expr: count(monitor_remote_write_samples_sent_total) > 0
        labels: {severity: warning}
"""


@needs_vm
async def test_the_daemon_writes_out_and_evaluates_remotely(tmp_path):
    async with running_store("vm", tmp_path / "vm") as vm:
        (tmp_path / "r.yaml").write_text(RULES)
        cfg = write_config(tmp_path, f"""
            tsdb: {{path: tsdb}}
            remote_write:
              - url: {vm.write_url}
                name: vm
                queue_config: {{min_backoff: 50ms, max_backoff: 1s}}
            rules:
              files: [r.yaml]
              external_labels: {{replica: a}}
              datasource: {{url: {vm.url}, partial_response: warn}}
            receivers: [{{name: hook, webhook_configs: [{{url: "http://127.0.0.1:9/hook"}}]}}]
            alerting:
              route: {{receiver: hook, group_wait: 0s, group_by: [alertname]}}
            """)
        async with run_daemon(cfg) as d:
            assert (tmp_path / "tsdb" / "remote" / "vm").is_dir()

            async def written():
                got = await vm.raw('{__name__=~"rw:one|monitor_remote_write_samples_sent_total|ALERTS"}', "10m")
                names = {dict(k)["__name__"] for k in got}
                return names if {"rw:one", "monitor_remote_write_samples_sent_total", "ALERTS"} <= names else None
            await eventually(written, timeout=90, what="rule results, self metrics and ALERTS in VictoriaMetrics")
            got = await vm.raw("rw:one", "10m")
            assert {dict(k).get("replica") for k in got} == {"a"}

            async def firing():
                r = await d.get("/api/v1/alerts")
                return [a for a in r.json()["data"]["alerts"] if a["state"] == "firing"] or None
            [alert] = await eventually(firing, timeout=60, what="the remotely evaluated alert fires")
            assert alert["labels"]["alertname"] == "RwStoreSeesUs"

            async def in_pipeline():  # the leader's alert pipeline received it (Alertmanager v2 API view)
                r = await d.get("/api/v2/alerts")
                return [a for a in r.json() if a["labels"]["alertname"] == "RwStoreSeesUs"] or None
            await eventually(in_pipeline, timeout=60, what="the alert in the alerting path")
            text = await d.metrics()
            assert metric_values(text, "monitor_remote_write_samples_sent_total", remote_name="vm")[0] > 0
            assert metric_values(text, "monitor_remote_write_samples_failed_total", remote_name="vm") == [0.0]


async def test_config_errors_name_the_key(tmp_path):
    from monitor.config.loader import load_config
    from monitor.errors import ConfigErrors

    cfg = write_config(tmp_path, """
        remote_write:
          - url: ftp://x
        rules:
          datasource: {url: "http://127.0.0.1:1", partial_response: maybe}
        """)
    try:
        load_config(cfg)
    except ConfigErrors as e:
        text = str(e)
    else:
        raise AssertionError("accepted")
    assert "remote_write[0].url" in text and "rules.datasource.partial_response" in text




def test_the_readme_configurations_load(tmp_path):
    import re
    from pathlib import Path

    from monitor.config.loader import load_config_text

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## When one machine is not enough"):readme.index("### Sharded probes")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    urls = set()
    for text in blocks:
        cfg = load_config_text(text.replace("rules/*.yaml", ""), base_dir=tmp_path)
        assert cfg.remote_write and cfg.rules.datasource is not None
        urls.add(cfg.remote_write[0].url)
    assert len(urls) == 3


@needs_vm
async def test_a_daemon_restart_resumes_its_queue(tmp_path):
    from tests.support.remote_stores import free_port

    def config(url: str):
        return write_config(tmp_path, f"""
            tsdb: {{path: tsdb, sync_interval: 200ms}}
            remote_write: [{{url: "{url}", name: store, queue_config: {{min_backoff: 50ms, max_backoff: 1s}}}}]
            rules:
              files: [r.yaml]
            """)
    (tmp_path / "r.yaml").write_text(
        "groups: [{name: g, interval: 1s, rules: [{record: 'rw:resumed', expr: 'vector(7)'}]}]\n")
    async with run_daemon(config(f"http://127.0.0.1:{free_port()}/api/v1/write")) as d:  # nothing listens
        async def queued():
            v = metric_values(await d.metrics(), "monitor_remote_write_queue_samples", remote_name="store")
            return v and v[0] > 0
        await eventually(queued, timeout=60, what="samples queued while the store is unreachable")
        from model.matchers import Matcher
        first = d.daemon.store.select([Matcher("__name__", "=", "rw:resumed")], 0, 2**62)
        assert first
    async with running_store("vm", tmp_path / "vm") as vm:
        async with run_daemon(config(vm.write_url)):
            want = {t for s in first for t in s.timestamps}

            async def arrived():
                got = await vm.raw("rw:resumed", "30m")
                have = {t for samples in got.values() for t, _ in samples}
                return want <= have or None
            await eventually(arrived, timeout=90, what="the samples queued before the restart")


def test_remote_write_names_are_unique_after_defaults(tmp_path):
    from monitor.config.loader import load_config
    from monitor.errors import ConfigErrors

    cfg = write_config(tmp_path, """
        remote_write:
          - url: http://vm:8428/api/v1/write
          - url: http://vm:8428/api/v1/write
        """)
    try:
        load_config(cfg)
    except ConfigErrors as e:
        assert 'remote_write[1].url: remote_write name "vm:8428" is used twice' in str(e)
    else:
        raise AssertionError("accepted")
