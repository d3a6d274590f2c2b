"""Vendor outage: a Slack 429 storm, PagerDuty down and a webhook that never answers, for
``--outage-s`` seconds, while a healthy webhook receiver goes on; then the vendors recover.

    .venv/bin/python benchmarks/vendor_outage.py [--outage-s 300] [--baseline-s 20] [--every-s 2]

The real outbox (:class:`~monitor.notify.outbox_stage.OutboxStage` writing rows to a SQLite state
store, :class:`~monitor.notify.outbox.OutboxWorker` in its daemon mode, ``run(stop, interval=1)``)
and the real notifiers (slack-sdk, httpx) against local vendor servers
(``tests/support/notify_servers.py``). Receiver ``ops`` has three integrations: Slack (during the
outage every Web API call answers ``429 {"ok": false, "error": "ratelimited"}`` with
``Retry-After: --retry-after-s``, 10 s by default, longer than the 5 s group interval of the
alerts), PagerDuty Events v2 (``503`` during the outage) and a webhook that never answers during
the outage (the request hangs; the client gives up after the webhook's 10 s timeout). Receiver
``healthy`` has one webhook that always answers at once.

Alerts: every ``--every-s`` seconds (baseline and outage) a new alert fires (its own fingerprint:
one PagerDuty incident each) and resolves 5 s later (the group interval): a ``firing`` and a
``resolved`` message to both receivers, written to the outbox when they happen. After the outage
the run waits until every message is delivered (at most ``--drain-max-s``).

Printed, per integration: messages due, delivered, duplicated (a webhook transition under two
different ``Idempotency-Key`` values; a Slack delivery id posted twice; a PagerDuty incident paged
twice), redelivered (the same ``Idempotency-Key`` again: dropped by a receiver that keeps keys),
out of order (an alert's resolved before its firing), and the time from the vendors' recovery to
the last delivery (target <= 30 s). For the healthy receiver: the latency from the outbox write
to arrival, p50/p99/max during the baseline and during the outage, and the added p99 (target
< 1 s). With ``os.getloadavg()``: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config.receivers import ReceiverConfig  # noqa: E402
from monitor.notify import NotifyMetrics, OutboxStage, OutboxWorker, build_integrations  # noqa: E402
from monitor.notify.base import Message  # noqa: E402
from monitor.notify.webhook import IDEMPOTENCY_HEADER, idempotency_key  # noqa: E402
from monitor.store.sqlite import SQLiteStore  # noqa: E402
from tests.support.notify_servers import (FakeHTTP, PagerDutyEvents, Recorded, Reply,  # noqa: E402
                                          SlackWorkspace)

SLACK_TOKEN = "xoxb-0000000000-0000000000-OutageSlackToken"
PD_KEY = "R0OUTAGE0000000000000000000000demo"
GROUP_INTERVAL_S = 5.0
INTEGRATIONS = ("ops/slack[0]", "ops/pagerduty[0]", "ops/webhook[0]", "healthy/webhook[0]")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _summary(xs: list[float]) -> list[float]:
    """Return ``[p50, p99, max]`` of ``xs`` in seconds, rounded to the millisecond."""
    return [round(_pct(xs, 0.5), 3), round(_pct(xs, 0.99), 3), round(max(xs, default=0.0), 3)]


class Outage:
    """The sinks, the alert generator, and the tally."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.down = False
        self.recovered_at = 0.0
        self.slack = SlackWorkspace(SLACK_TOKEN, channels=("outage",))
        self.pd = PagerDutyEvents()
        # integration -> [(arrival time, fingerprint, kind, identity)]
        self.arrivals: dict[str, list[tuple[float, str, str, str]]] = defaultdict(list)
        self.written: dict[tuple[str, str], float] = {}  # (fingerprint, kind) -> outbox write time
        self.due: Counter = Counter()
        self.ts_fp: dict[str, str] = {}  # Slack ts -> fingerprint

    # -- sinks -------------------------------------------------------------------------------

    def _webhook(self, name: str, hangs: bool):
        def handle(req: Recorded) -> Reply:
            if hangs and self.down:
                return Reply(200, b"", delay=3600.0)  # never answers: the client times out
            body = json.loads(req.body)
            a = body["alerts"][0]
            self.arrivals[name].append((time.time(), a["fingerprint"], body["codebookKind"],
                                        idempotency_key(req.headers.get(IDEMPOTENCY_HEADER))))
            return Reply(200, b"")
        return handle

    def _slack(self, req: Recorded) -> Reply:
        if self.down:
            return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.a.retry_after_s)})
        reply = self.slack(req)
        body = reply.body if isinstance(reply.body, dict) else {}
        if req.path == "/api/chat.postMessage" and body.get("ok"):
            data = req.data
            fp = next((e["value"] for b in data.get("blocks", []) if b.get("type") == "actions"
                       for e in b["elements"]), "")
            self.ts_fp[body["ts"]] = fp
            did = str(((data.get("metadata") or {}).get("event_payload") or {}).get("delivery_id", ""))
            self.arrivals["ops/slack[0]"].append((time.time(), fp, "firing", did))
        elif req.path == "/api/chat.update" and body.get("ok"):
            fp = self.ts_fp.get(req.data["ts"], "")
            kind = "resolved" if str(req.data.get("text", "")).startswith("[RESOLVED]") else "update"
            self.arrivals["ops/slack[0]"].append((time.time(), fp, kind, req.data["ts"]))
        return reply

    def _pd(self, req: Recorded) -> Reply:
        if self.down:
            return Reply(503, {"status": "unavailable"})
        reply = self.pd(req)
        if reply.status == 202:
            ev = req.data
            kind = {"trigger": "firing", "resolve": "resolved"}.get(ev.get("event_action"), "other")
            self.arrivals["ops/pagerduty[0]"].append((time.time(), str(ev.get("dedup_key")), kind, ""))
        return reply

    # -- the alerts --------------------------------------------------------------------------

    async def _generate(self, stage: OutboxStage, until: float) -> None:
        n = 0
        pending: list[tuple[float, dict[str, Any]]] = []
        while True:
            now = time.time()
            for due, payload in [p for p in pending if p[0] <= now]:
                pending.remove((due, payload))
                resolved = dict(payload, status="resolved", ends_at=_iso(now))
                await self._enqueue(stage, "resolved", resolved, now)
            if now >= until:
                if not pending:
                    return
            elif now >= self._next_fire(n):
                fp = f"{n:016x}"
                payload = {"fingerprint": fp, "status": "firing", "starts_at": _iso(now),
                           "labels": {"alertname": "VendorOutage", "n": str(n), "severity": "critical"},
                           "annotations": {"summary": f"outage alert {n}"}}
                await self._enqueue(stage, "firing", payload, now)
                pending.append((now + GROUP_INTERVAL_S, payload))
                n += 1
            await asyncio.sleep(0.05)

    def _next_fire(self, n: int) -> float:
        return self.t0 + n * self.a.every_s

    async def _enqueue(self, stage: OutboxStage, kind: str, payload: dict[str, Any], now: float) -> None:
        fp = payload["fingerprint"]
        for receiver in ("ops", "healthy"):
            msg = Message.build(kind, receiver, [payload], group_key=f"{{}}:{{n=\"{payload['labels']['n']}\"}}")
            for name in await stage.enqueue(msg, now):
                self.due[f"{receiver}/{name}"] += 1
        self.written[(fp, kind)] = now

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Run the baseline, the outage and the drain; return :meth:`report`'s figures."""
        with tempfile.TemporaryDirectory(prefix="outage-") as tmp:
            store = SQLiteStore(Path(tmp) / "state.db")
            await store.open()
            async with FakeHTTP(self._slack) as slack, FakeHTTP(self._pd) as pd, \
                    FakeHTTP(self._webhook("ops/webhook[0]", True)) as hook, \
                    FakeHTTP(self._webhook("healthy/webhook[0]", False)) as healthy:
                receivers = [ReceiverConfig.model_validate(c) for c in (
                    {"name": "ops",
                     "slack_configs": [{"channel": "#outage", "token": SLACK_TOKEN, "api_url": slack.url + "/api/"}],
                     "pagerduty_configs": [{"routing_key": PD_KEY, "url": pd.url}],
                     "webhook_configs": [{"url": hook.url + "/hook"}]},
                    {"name": "healthy", "webhook_configs": [{"url": healthy.url + "/hook"}]})]
                integrations = build_integrations(receivers)
                from prometheus_client import CollectorRegistry
                worker = OutboxWorker(store, integrations, metrics=NotifyMetrics(CollectorRegistry()))
                stage = OutboxStage(store, integrations)
                stage.on_write = worker.wake
                stop = asyncio.Event()
                runner = asyncio.create_task(worker.run(stop, interval=1.0))
                self.t0 = time.time()
                outage_start = self.t0 + self.a.baseline_s
                outage_end = outage_start + self.a.outage_s
                gen = asyncio.create_task(self._generate(stage, outage_end))
                await asyncio.sleep(max(0.0, outage_start - time.time()))
                self.down = True
                print(f"  outage from {_iso(time.time())} for {self.a.outage_s:.0f} s", flush=True)
                await asyncio.sleep(max(0.0, outage_end - time.time()))
                self.down = False
                self.recovered_at = time.time()
                print(f"  vendors recovered at {_iso(self.recovered_at)}", flush=True)
                await gen
                deadline = time.time() + self.a.drain_max_s
                while time.time() < deadline and await store.depth() > 0:
                    await asyncio.sleep(0.5)
                depth = await store.depth()
                stop.set()
                worker.wake()
                await asyncio.wait_for(runner, 30)
                for items in integrations.values():
                    for i in items:
                        await i.notifier.aclose()
            await store.close()
        return self.report(outage_start, outage_end, depth)

    def report(self, outage_start: float, outage_end: float, depth: int) -> dict[str, Any]:
        """Tally the arrivals per integration (see the module docstring)."""
        out: dict[str, Any] = {"pending_at_end": depth, "integrations": {}}
        for name in INTEGRATIONS:
            arr = self.arrivals.get(name, [])
            by: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
            for t, fp, kind, ident in arr:
                by[(fp, kind)].append((t, ident))
            delivered = sum(1 for k in by if k[1] in ("firing", "resolved"))
            dup = redelivered = 0
            for (fp, kind), hits in by.items():
                idents = [i for _, i in hits]
                if name.endswith("webhook[0]"):
                    effects = len({i for i in idents if i}) + idents.count("")
                    dup += effects - 1
                    redelivered += len(idents) - effects
                elif name == "ops/slack[0]" and kind == "firing":
                    dup += len(idents) - 1  # two channel messages for one alert
                elif name == "ops/slack[0]" and kind == "resolved":
                    redelivered += len(idents) - 1  # chat.update again: one effect
            if name == "ops/pagerduty[0]":  # by effect: pages per incident (repeated triggers are deduplicated)
                dup = sum(n - 1 for n in Counter(str(e.get("dedup_key")) for e in self.pd.paged).values() if n > 1)
                redelivered = self.pd.deduplicated + self.pd.resolve_repeated
            fps = {fp for fp, _ in by}
            disorder = sum(1 for fp in fps if by.get((fp, "resolved")) and by.get((fp, "firing"))
                           and min(by[(fp, "resolved")])[0] < min(by[(fp, "firing")])[0])
            disorder += sum(1 for fp in fps if by.get((fp, "resolved")) and not by.get((fp, "firing")))
            last = max((t for t, *_ in arr), default=float("nan"))
            lat_base = [t - self.written[(fp, kind)] for t, fp, kind, _ in arr
                        if (fp, kind) in self.written and self.written[(fp, kind)] < outage_start]
            lat_out = [t - self.written[(fp, kind)] for t, fp, kind, _ in arr
                       if (fp, kind) in self.written and outage_start <= self.written[(fp, kind)] < outage_end]
            out["integrations"][name] = {
                "due": self.due.get(name, 0), "delivered": delivered, "duplicated": dup,
                "redelivered": redelivered, "out_of_order": disorder,
                "recovery_to_last_delivery_s": round(last - self.recovered_at, 2),
                "latency_baseline": _summary(lat_base),
                "latency_outage": _summary(lat_out),
            }
        return out


def main() -> int:
    """Run from the command line; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--outage-s", type=float, default=300.0)
    p.add_argument("--baseline-s", type=float, default=20.0)
    p.add_argument("--every-s", type=float, default=2.0, help="seconds between new alerts")
    p.add_argument("--retry-after-s", type=int, default=10, help="Slack's Retry-After during the storm")
    p.add_argument("--drain-max-s", type=float, default=120.0)
    a = p.parse_args()
    logging.getLogger("monitor").setLevel(logging.ERROR)  # the retries are expected: thousands of warnings
    t = time.monotonic()
    res = asyncio.run(Outage(a).run())
    print(f"outage_s={a.outage_s:.0f} baseline_s={a.baseline_s:.0f} every_s={a.every_s} "
          f"slack_retry_after_s={a.retry_after_s} seconds={time.monotonic() - t:.0f} "
          f"pending_at_end={res['pending_at_end']} loadavg={tuple(round(x, 2) for x in os.getloadavg())}")
    ok = res["pending_at_end"] == 0
    for name, r in res["integrations"].items():
        line = (f"{name:20s} due={r['due']} delivered={r['delivered']} duplicated={r['duplicated']} "
                f"redelivered={r['redelivered']} out_of_order={r['out_of_order']}")
        if name.startswith("healthy"):
            b, o = r["latency_baseline"], r["latency_outage"]
            line += (f" latency_s baseline p50/p99/max={b[0]}/{b[1]}/{b[2]} outage p50/p99/max={o[0]}/{o[1]}/{o[2]}"
                     f" added_p99_s={o[1] - b[1]:.3f}")
            ok = ok and o[1] - b[1] < 1.0
        else:
            line += f" recovery_to_last_delivery_s={r['recovery_to_last_delivery_s']}"
            ok = ok and r["recovery_to_last_delivery_s"] <= 30
        ok = ok and r["due"] == r["delivered"] and r["duplicated"] == 0 and r["out_of_order"] == 0
        print(line)
    print(f"command: .venv/bin/python benchmarks/vendor_outage.py --outage-s {a.outage_s:g} "
          f"--baseline-s {a.baseline_s:g} --every-s {a.every_s:g} --retry-after-s {a.retry_after_s}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
