"""Alert storm: 1,000 alerts fire at once — routing to the outbox, grouping, delivery, memory.

What is measured (and printed as one JSON document):

1. ``route_to_outbox``: wall time from "1,000 alerts fire" until every routed notification is
   a row in the outbox: the :class:`~monitor.alerting.dispatch.Dispatcher` with the shipped
   route (critical -> ``pager`` + ``slack-incidents``, warning -> ``slack-alerts`` + ``email``,
   ``group_by: [alertname, service]``), the shipped inhibition rules and maintenance window
   evaluated at every flush, then one :class:`~monitor.notify.base.Message` per notification
   written by :class:`~monitor.notify.outbox_stage.OutboxStage` into a SQLite store (WAL) in a
   temporary folder, :data:`~monitor.alerting.pipeline.DELIVER_BATCH` notifications per
   transaction, as the pipeline writes a flush. ``group_wait`` is not waited for: the alerts
   are put at ``t0`` and the groups flushed at ``t0 + group_wait`` on the dispatcher's
   injected clock, so the figure is pure processing time. Median of ``--repeat`` runs.
2. ``grouping``: how many notifications grouping leaves — the same storm with
   ``group_by: [alertname, service]`` and with ``group_by: ['...']`` (every alert alone).
3. ``outbox_throughput``: notifications per second that :class:`~monitor.notify.outbox.OutboxWorker`
   delivers through the real :class:`~monitor.notify.webhook.WebhookNotifier` (httpx,
   Alertmanager webhook JSON v4) to a local webhook server running in a **subprocess**
   (aiohttp; it counts what it receives, and the count is checked).
4. ``memory``: the tracemalloc peak of one route-to-outbox pass (Python allocations only) and
   the process's peak RSS.
5. ``service``: the same storm through the
   daemon's alert pipeline (``LeaderPipeline``) with the shipped people, schedules and escalation chain: ``ingest``
   (every alert persisted, the first escalation step of every alert: primary on-call paged and
   DMed for P0, DMed and emailed for P2), then ``tick`` at ``t + group_wait`` (groups flushed);
   then delivery of every row through the real Slack (slack-sdk), PagerDuty (httpx) and email
   (smtplib) notifiers to ``examples/notify_sinks.py`` and an aiosmtpd server, each in a
   subprocess; what they received is counted and checked.

The storm: ``--alertnames`` (20) × ``--services`` (10) × ``--instances`` (5) = 1,000 alerts;
the first half of the alert names are ``severity=critical``, the rest ``warning``; each alert
name has its own ``family`` (so the shipped inhibition rules are evaluated but match nothing).

Run::

    python benchmarks/alert_storm.py [--alertnames 20 --services 10 --instances 5]
                                     [--batch 50 --concurrency 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from model.alert import Alert
from monitor.alerting.dispatch import Dispatcher, Notification
from monitor.alerting.inhibit import Inhibitor
from monitor.alerting.maintenance import MaintenanceWindows, TimeIntervals
from monitor.alerting.mute import MuteStages
from monitor.alerting.pipeline import DELIVER_BATCH
from monitor.alerting.route import build_route
from monitor.config.alerting import AlertingConfig
from monitor.config.receivers import ReceiverConfig, StateConfig
from monitor.notify.base import Message
from monitor.notify.outbox import NotifyMetrics, OutboxWorker, RunStats
from monitor.notify.payload import alert_payload
from monitor.notify.outbox_stage import OutboxStage
from monitor.notify.registry import build_integrations
from monitor.store import open_store

#: The shipped ``alerting:`` route, inhibition and maintenance window (tests/alerting/shipped_alerting.yaml);
#: ``GROUP_BY`` is replaced per run.
ALERTING_YAML = """
route:
  receiver: slack-alerts
  group_by: GROUP_BY
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - {matchers: ['severity="critical"'], receiver: pager, group_wait: 10s, repeat_interval: 1h, continue: true}
    - {matchers: ['severity="critical"'], receiver: slack-incidents}
    - {matchers: ['severity="warning"'], receiver: slack-alerts, continue: true}
    - {matchers: ['severity="warning"'], receiver: email}
inhibit_rules:
  - {source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: [family, service]}
  - {source_matchers: ['alertname="DatabaseDown"'], target_matchers: ['depends_on="database"']}
time_intervals:
  - name: first-saturday-night
    time_intervals:
      - {weekdays: [saturday], days_of_month: ["1:7"], times: [{start_time: "02:00", end_time: "06:00"}], location: UTC}
maintenance_windows:
  - {name: monthly-maintenance, time_intervals: [first-saturday-night], matchers: []}
"""
RECEIVERS = ("pager", "slack-incidents", "slack-alerts", "email")
GROUPED = ["alertname", "service"]
UNGROUPED = ["..."]
#: A Monday, outside the maintenance window.
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc).timestamp()


def alerting_config(group_by: list[str]) -> AlertingConfig:
    """The shipped-like ``alerting:`` section with ``group_by`` on the root route."""
    data = yaml.safe_load(ALERTING_YAML)
    data["route"]["group_by"] = group_by
    return AlertingConfig.model_validate(data)


def storm(alertnames: int, services: int, instances: int, t0: float = T0) -> list[Alert]:
    """Return ``alertnames × services × instances`` firing alerts started at ``t0``."""
    alerts = []
    for a in range(alertnames):
        severity = "critical" if a < alertnames // 2 else "warning"
        for s in range(services):
            for i in range(instances):
                labels = {"alertname": f"StormAlert{a:02d}", "severity": severity, "family": f"family{a:02d}",
                          "service": f"svc{s:02d}", "instance": f"10.0.{s}.{i}:8000", "job": "backend"}
                annotations = {"summary": f"StormAlert{a:02d} on svc{s:02d} 10.0.{s}.{i}",
                               "description": "synthetic alert storm", "value": "1",
                               "runbook_url": f"https://runbooks.example.com/StormAlert{a:02d}"}
                alerts.append(Alert.firing(labels, starts_at=t0, annotations=annotations,
                                           generator_url="http://127.0.0.1:9115/graph"))
    return alerts


def dispatcher(cfg: AlertingConfig) -> Dispatcher:
    """A dispatcher with the config's route, inhibition and maintenance windows."""
    mutes = MuteStages(inhibitor=Inhibitor.from_config(cfg.inhibit_rules),
                       maintenance=MaintenanceWindows.from_config(cfg))
    return Dispatcher(build_route(cfg.route), mutes=mutes,
                      time_intervals=TimeIntervals.from_config(cfg.time_intervals))


def dispatch_ms(alerts: list[Alert], cfg: AlertingConfig, *, mutes: bool) -> float:
    """Milliseconds to put ``alerts`` and flush every group, with or without the mute stages."""
    d = dispatcher(cfg) if mutes else Dispatcher(build_route(cfg.route))
    started = time.perf_counter()
    d.put(alerts, T0)
    d.flush(T0 + max_group_wait(cfg))
    return round((time.perf_counter() - started) * 1000, 1)


def max_group_wait(cfg: AlertingConfig) -> float:
    """The longest ``group_wait`` in the route tree (first level is enough for the shipped route)."""
    return max(cfg.route.group_wait, *(r.group_wait for r in cfg.route.routes if r.group_wait is not None))


def message_of(n: Notification) -> Message:
    """The outbox message for one dispatcher notification (one alert group, one receiver),
    built as the receiver stages build it (``monitor.notify.receiver_stages.MessageStage``)."""
    alerts = [alert_payload(a, n.at) for a in n.alerts]
    return Message.build("firing" if n.firing else "resolved", n.receiver, alerts, group_key=n.group_key,
                         group_labels=n.group_labels.as_dict(), external_url="http://127.0.0.1:9115")


def receivers(webhook_url: str) -> list[ReceiverConfig]:
    """The four shipped receivers, each a webhook to ``webhook_url/<receiver>``."""
    return [ReceiverConfig(name=r, webhook_configs=[{"url": f"{webhook_url}/{r}", "timeout": 30}])
            for r in RECEIVERS]


async def route_to_outbox(alerts: list[Alert], cfg: AlertingConfig, state_path: Path,
                          integrations: dict) -> tuple[dict[str, Any], Any]:
    """Run one storm through dispatcher and outbox stage; return its figures and the open store."""
    store = await open_store(StateConfig(backend="sqlite", path=str(state_path)))
    stage = OutboxStage(store, integrations)
    d = dispatcher(cfg)
    started = time.perf_counter()
    d.put(alerts, T0)
    notifications = d.flush(T0 + max_group_wait(cfg))
    dispatched = time.perf_counter()
    now = time.time()
    rows = 0
    for i in range(0, len(notifications), DELIVER_BATCH):
        async with store.transaction():
            for n in notifications[i:i + DELIVER_BATCH]:
                rows += len(await stage.enqueue(message_of(n), now))
    done = time.perf_counter()
    depth = await store.depth()
    assert depth == rows, (depth, rows)
    return {"alerts": len(alerts), "notifications": len(notifications), "outbox_rows": rows,
            "dispatch_ms": round((dispatched - started) * 1000, 1),
            "enqueue_ms": round((done - dispatched) * 1000, 1),
            "total_ms": round((done - started) * 1000, 1)}, store


async def drain(store, integrations: dict, *, batch: int, concurrency: int,
                skew: float = 0.0) -> dict[str, Any]:
    """Deliver every pending row through the integrations; return the throughput figures.

    :param skew: seconds added to the worker's clock (rows written at a simulated later ``now``).
    """
    metrics = NotifyMetrics(CollectorRegistry())
    worker = OutboxWorker(store, integrations, batch=batch, concurrency=concurrency, metrics=metrics,
                          clock=lambda: time.time() + skew)
    total = RunStats()
    runs = 0
    started = time.perf_counter()
    while True:
        stats = await worker.run_once()
        runs += 1
        for name in ("claimed", "sent", "retried", "failed", "expired"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        if stats.claimed == 0:
            break
    elapsed = time.perf_counter() - started
    return {"sent": total.sent, "retried": total.retried, "failed": total.failed, "worker_runs": runs,
            "seconds": round(elapsed, 3), "notifications_per_second": round(total.sent / elapsed, 1),
            "batch": batch, "concurrency": concurrency, "mean_attempt_ms": mean_attempt_ms(metrics)}


def mean_attempt_ms(metrics: NotifyMetrics) -> dict[str, float]:
    """Mean duration of one delivery attempt per integration kind, from the worker's histogram."""
    sums: dict[str, list[float]] = {}
    for family in metrics.duration.collect():
        for sample in family.samples:
            kind = sample.labels.get("integration", "").split("[", 1)[0]
            if sample.name.endswith("_sum"):
                sums.setdefault(kind, [0.0, 0.0])[0] += sample.value
            elif sample.name.endswith("_count"):
                sums.setdefault(kind, [0.0, 0.0])[1] += sample.value
    return {k: round(s / n * 1000, 2) for k, (s, n) in sorted(sums.items()) if n}


# -- the webhook server (subprocess) -----------------------------------------------------------

def serve_webhook(port: int, smtp_port: int | None = None) -> None:
    """Run a webhook receiver on 127.0.0.1:``port``: 200 to every POST, ``GET /count`` the tally.

    With ``smtp_port``, also an SMTP server (aiosmtpd, its own thread) that accepts and counts mail.
    """
    from aiohttp import web

    received = {"requests": 0, "alerts": 0, "emails": 0}
    if smtp_port:
        from aiosmtpd.controller import Controller

        class Counter:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
                received["emails"] += 1
                return "250 OK"

        Controller(Counter(), hostname="127.0.0.1", port=smtp_port).start()

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        received["requests"] += 1
        received["alerts"] += len(body.get("alerts", []))
        return web.Response(status=200)

    async def count(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application()
    app.router.add_get("/count", count)
    app.router.add_post("/{receiver}", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_server(argv: list[str], ready_url: str, cwd: Path | None = None) -> subprocess.Popen:
    """Start a server subprocess (``sys.executable`` + ``argv``); return once ``ready_url`` answers."""
    import httpx

    proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, stderr=subprocess.DEVNULL)
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.get(ready_url)
                return proc
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{argv} did not start")


async def start_webhook_server(smtp_port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start :func:`serve_webhook` in a subprocess; return it and its URL once it answers."""
    port = free_port()
    argv = [__file__, "--webhook-server", str(port)] + (["--smtp-port", str(smtp_port)] if smtp_port else [])
    url = f"http://127.0.0.1:{port}"
    return await start_server(argv, url + "/count"), url


async def received(url: str) -> dict[str, int]:
    """The webhook server's tally."""
    import httpx

    async with httpx.AsyncClient() as http:
        return (await http.get(url + "/count")).json()


# -- the leader's pipeline -----------------------------------------------------------------------

#: The shipped people, schedules and escalation chain (tests/alerting/shipped_alerting.yaml).
ESCALATION_YAML = """
people:
  alice: {name: Alice Martin, slack_user_id: U01ALICE, email: alice@example.com, pagerduty_routing_key: R0ALICE000000000000000000000000a}
  bob: {name: Bob Schulz, slack_user_id: U01BOB, email: bob@example.com, pagerduty_routing_key: R0BOB00000000000000000000000000b}
  carol: {name: Carol Diaz, slack_user_id: U01CAROL, email: carol@example.com, pagerduty_routing_key: R0CAROL000000000000000000000000c}
  em: {name: Erin Manager, slack_user_id: U01ERIN, email: erin@example.com, pagerduty_routing_key: R0ERIN0000000000000000000000000e}
  cto: {name: Chris CTO, slack_user_id: U01CHRIS, email: cto@example.com, pagerduty_routing_key: R0CHRIS000000000000000000000000x}
schedules:
  primary: {time_zone: Europe/Berlin, rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"},
            start: 2026-01-05, members: [alice, bob, carol]}
  secondary: {time_zone: Europe/Berlin, rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"},
              start: 2026-01-05, members: [bob, carol, alice]}
escalation:
  priorities:
    P0: {ack: 15m, resolve: 4h}
    P1: {ack: 1h, resolve: 24h}
    P2: {ack: 4h, resolve: 3d, channels: [slack_dm, email]}
  severity_priority: {critical: P0, warning: P2, info: P2}
  default_priority: P2
  chain:
    - {target: "schedule:primary", channels: [page, slack_dm]}
    - {target: "schedule:secondary", channels: [page, slack_dm]}
    - {target: "person:em", channels: [page, slack_dm, email]}
    - {target: "person:cto", channels: [page, email]}
"""


def service_config(sinks_url: str, smarthost: str, state_path: Path) -> Any:
    """A whole ``Config``: the shipped alerting section with real Slack/PagerDuty/email receivers."""
    from monitor.config.loader import load_config_text

    alerting = yaml.safe_load(ALERTING_YAML)
    alerting["route"]["group_by"] = GROUPED
    alerting.update(yaml.safe_load(ESCALATION_YAML))
    slack = {"token": "xoxb-bench-0000", "api_url": f"{sinks_url}/api/", "timeout": 30}
    email = {"to": "oncall@example.com", "from": "monitor@example.com", "smarthost": smarthost,
             "require_tls": False, "timeout": 30}
    data = {
        "alerting": alerting,
        "receivers": [
            {"name": "pager", "pagerduty_configs": [{"routing_key": "R0TEAM" + "0" * 26, "url": sinks_url,
                                                     "timeout": 30}]},
            {"name": "slack-incidents", "slack_configs": [{**slack, "channel": "#incidents"}]},
            {"name": "slack-alerts", "slack_configs": [{**slack, "channel": "#alerts"}]},
            {"name": "email", "email_configs": [email]},
        ],
        "state": {"backend": "sqlite", "path": str(state_path)},
    }
    return load_config_text(yaml.safe_dump(data), "alert_storm.yaml", base_dir=state_path.parent)


async def through_service(alerts: list[Alert], tmp: Path, *, batch: int, concurrency: int) -> dict[str, Any]:
    """The storm through the leader's pipeline (``monitor.daemon.leader_pipeline.LeaderPipeline``).

    ``ingest`` at ``t`` (alerts persisted, escalations started: first step of every unmuted
    alert), then ``tick`` at ``t + group_wait`` (groups flushed). Delivery goes to the
    Slack/PagerDuty sinks of ``examples/notify_sinks.py`` and an aiosmtpd server, both in
    subprocesses.
    """
    import httpx

    from monitor.daemon.leader_pipeline import LeaderPipeline

    repo = Path(__file__).resolve().parents[1]
    sinks_url = f"http://127.0.0.1:{free_port()}"
    sinks = await start_server(["-m", "examples.notify_sinks", "--port", sinks_url.rsplit(":", 1)[1]],
                               sinks_url + "/messages", cwd=repo)
    smtp_port = free_port()
    smtp, counter_url = await start_webhook_server(smtp_port)
    try:
        cfg = service_config(sinks_url, f"127.0.0.1:{smtp_port}", tmp / "service.db")
        store = await open_store(cfg.state)
        integrations = build_integrations(cfg.receivers)
        svc = LeaderPipeline(cfg, store, integrations)
        await svc.start()
        now = time.time()
        fresh = [Alert.firing(a.labels, starts_at=now, annotations=a.annotations,
                              generator_url=a.generator_url) for a in alerts]
        rss_before = rss_mib()
        started = time.perf_counter()
        await svc.pipeline.ingest(fresh, now=now, source="rules")
        ingested = time.perf_counter()
        await svc.tick(now=now + max_group_wait(cfg.alerting))
        done = time.perf_counter()
        rows = await store.list_outbox("pending")
        by_integration: dict[str, int] = {}
        for r in rows:
            kind = "group" if not (r["payload"] or {}).get("recipient") else "escalation"
            key = f"{r['receiver']}/{r['integration']} ({kind})"
            by_integration[key] = by_integration.get(key, 0) + 1
        figures: dict[str, Any] = {
            "ingest_ms (persist + escalation first steps)": round((ingested - started) * 1000, 1),
            "tick_ms (group flush)": round((done - ingested) * 1000, 1),
            "total_ms": round((done - started) * 1000, 1),
            "outbox_rows": len(rows), "rows_by_receiver_integration": dict(sorted(by_integration.items())),
            "escalations_started": len(svc.escalation.escalations),
            "rss_growth_mib (ingest + tick)": round(rss_mib() - rss_before, 1)}
        figures["delivery"] = await drain(store, integrations, batch=batch, concurrency=concurrency,
                                          skew=max_group_wait(cfg.alerting))
        async with httpx.AsyncClient() as http:
            got = (await http.get(sinks_url + "/messages")).json()
        figures["delivery"]["sinks_received"] = {
            "slack": sum(1 for m in got if m["sink"] == "slack"),
            "pager": sum(1 for m in got if m["sink"] == "pager"),
            "smtp": (await received(counter_url))["emails"]}
        for items in integrations.values():
            for integ in items:
                await integ.notifier.aclose()
        await store.close()
        return figures
    finally:
        for proc in (sinks, smtp):
            proc.terminate()
            proc.wait(timeout=10)


# -- main ---------------------------------------------------------------------------------------

def rss_mib() -> float:
    """The current resident set size in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement; return the JSON document."""
    alerts = storm(args.alertnames, args.services, args.instances)
    baseline_rss = rss_mib()
    proc, webhook_url = await start_webhook_server()
    integrations = build_integrations(receivers(webhook_url))
    out: dict[str, Any] = {
        "storm": {"alerts": len(alerts), "alertnames": args.alertnames, "services": args.services,
                  "instances": args.instances, "critical_alertnames": args.alertnames // 2,
                  "route": "shipped (critical -> pager + slack-incidents, warning -> slack-alerts + email)",
                  "store": "sqlite (temp dir, WAL)"},
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            stores = {}
            for label, group_by in (("grouped", GROUPED), ("ungrouped", UNGROUPED)):
                runs = []
                for i in range(args.repeat):
                    figures, store = await route_to_outbox(alerts, alerting_config(group_by),
                                                           tmp_path / f"{label}-{i}.db", integrations)
                    runs.append(figures)
                    if i == args.repeat - 1:
                        stores[label] = store
                    else:
                        await store.close()
                median = statistics.median(r["total_ms"] for r in runs)
                out[f"route_to_outbox_{label}"] = {
                    "group_by": group_by, **runs[-1], "total_ms_median": median,
                    "total_ms_runs": [r["total_ms"] for r in runs]}
            grouped = alerting_config(GROUPED)
            with_mutes, without = dispatch_ms(alerts, grouped, mutes=True), dispatch_ms(alerts, grouped, mutes=False)
            out["dispatch_breakdown"] = {
                "note": "Dispatcher put+flush alone, grouped; the mute stages (inhibition, maintenance) "
                        "mark every alert of every flushed group against every held alert",
                "with_mute_stages_ms": with_mutes, "without_mute_stages_ms": without}
            out["grouping"] = {
                "alerts": len(alerts),
                "notifications_group_by_alertname_service": out["route_to_outbox_grouped"]["notifications"],
                "notifications_without_grouping": out["route_to_outbox_ungrouped"]["notifications"]}
            throughput = {}
            for label, store in stores.items():
                before = await received(webhook_url)
                figures = await drain(store, integrations, batch=args.batch, concurrency=args.concurrency)
                after = await received(webhook_url)
                figures["server_received"] = after["requests"] - before["requests"]
                figures["server_received_alerts"] = after["alerts"] - before["alerts"]
                throughput[label] = figures
                await store.close()
            out["outbox_throughput"] = throughput

            tracemalloc.start()
            _, store = await route_to_outbox(alerts, alerting_config(GROUPED), tmp_path / "traced.db", integrations)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            await store.close()
            out["service"] = await through_service(alerts, tmp_path, batch=args.batch,
                                                   concurrency=args.concurrency)
    finally:
        for items in integrations.values():
            for integ in items:
                await integ.notifier.aclose()
        proc.terminate()
        proc.wait(timeout=10)
    out["memory"] = {"tracemalloc_peak_mib_route_to_outbox": round(peak / 2**20, 2),
                     "rss_before_mib": round(baseline_rss, 1),
                     "peak_rss_mib (whole run, service included)":
                         round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    out["python"] = sys.version.split()[0]
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alertnames", type=int, default=20)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--instances", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50, help="OutboxWorker rows claimed per run (daemon default 50)")
    ap.add_argument("--concurrency", type=int, default=8, help="OutboxWorker parallel sends (daemon default 8)")
    ap.add_argument("--repeat", type=int, default=3, help="route-to-outbox runs (median reported)")
    ap.add_argument("--webhook-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--smtp-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.webhook_server:
        serve_webhook(args.webhook_server, args.smtp_port)
        return
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = asyncio.run(run(args))
    out["load_average"] = {"before": load, "after": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
