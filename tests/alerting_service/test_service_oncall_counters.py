"""The on-call response counters through the leader's pipeline over SQLite and PostgreSQL: pages,
acknowledgements and resolutions counted once each, misses counted at their deadline, every value
unchanged by restarts, and copied into the sample store by the self-scrape."""

from __future__ import annotations

from model.labels import Labels
from monitor.daemon.self_scrape import SELF_JOB, SelfScrape
from monitor.tsdb.store import SampleStore
from tests.alerting_service.conftest import T0, Clock, Harness, firing_rule_alert, make_config, resolved_rule_alert

CRITICAL = {"alertname": "ApiDown", "severity": "critical", "service": "api", "family": "availability"}
WARNING = {"alertname": "ApiSlow", "severity": "warning", "service": "api", "family": "latency"}


def counters(h: Harness) -> dict[str, float]:
    """Every on-call counter sample of the current process, ``name{priority,within_sla}`` -> value."""
    out = {}
    for family in h.registry.collect():
        if family.name.startswith("monitor_oncall_"):
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[f"{s.name}{{{s.labels['priority']},{s.labels.get('within_sla', '')}}}"] = s.value
    return out


def nonzero(h: Harness) -> dict[str, float]:
    return {k: v for k, v in counters(h).items() if v}


async def test_counters_count_once_and_survive_restarts(servers, state_cfg):
    h = Harness(make_config(servers.slack.url, servers.pd.url, servers.smtp.smarthost, state_cfg), Clock(T0), servers)
    try:
        svc = await h.new_service()
        assert set(nonzero(h)) == set() and len(counters(h)) == 3 * 5  # P0, P1, P2 born at 0
        acked, ignored = firing_rule_alert(CRITICAL, T0 - 60), firing_rule_alert({**CRITICAL, "instance": "2"}, T0 - 60)
        warning = firing_rule_alert(WARNING, T0 - 60)
        await svc.ingest([acked, ignored, warning])
        await svc.acknowledge(acked.fingerprint, "alice", "api:test", now=T0 + 300)
        first = {"monitor_oncall_pages_total{P0,}": 2, "monitor_oncall_pages_total{P2,}": 1,
                 "monitor_oncall_acks_total{P0,true}": 1}
        assert nonzero(h) == first
        svc = await h.new_service()  # restart: the same values, neither reset nor counted twice
        assert nonzero(h) == first
        await h.at(T0 + 899)
        assert nonzero(h) == first
        await h.at(T0 + 900)  # the P0 ack deadline: the unacknowledged page is a miss now
        second = {**first, "monitor_oncall_acks_total{P0,false}": 1}
        assert nonzero(h) == second
        svc = await h.new_service()
        await h.at(T0 + 960)
        assert nonzero(h) == second
        await svc.ingest([resolved_rule_alert(acked, T0 + 3600)], now=T0 + 3600)
        await h.at(T0 + 4 * 3600)  # the P0 resolve deadline of the other one, the P2 ack deadline
        third = {**second, "monitor_oncall_resolutions_total{P0,true}": 1,
                 "monitor_oncall_resolutions_total{P0,false}": 1, "monitor_oncall_acks_total{P2,false}": 1}
        assert nonzero(h) == third
        svc = await h.new_service()
        assert nonzero(h) == third
        # the self-scrape puts them in the sample store, where the SLO rules read them
        samples = SampleStore()
        await SelfScrape(h.registry, samples, lambda: "127.0.0.1:9115", clock=lambda: T0 + 4 * 3600).run()
        key = Labels.of({"__name__": "monitor_oncall_acks_total", "priority": "P0", "within_sla": "false",
                         "job": SELF_JOB, "instance": "127.0.0.1:9115"})
        assert samples.last_timestamp(key) == int((T0 + 4 * 3600) * 1000)
    finally:
        await h.close()
