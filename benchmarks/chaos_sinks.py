"""The sinks of the chaos run (``benchmarks/chaos.py``) and its accounting: what the daemon's
notifications did at each sink, counted as lost, duplicated and out of order.

The sinks (:class:`Sinks`, served by ``tests/support/notify_servers.py``'s ``FakeHTTP``): a webhook
receiver that records every POST with its arrival time and ``Idempotency-Key``, a Slack Web API
workspace (channel history with message metadata, ``chat.update``, ``conversations.history``) and a
PagerDuty Events v2 sink that models incidents by ``dedup_key`` (a trigger on an open incident
pages nobody). After each request a sink calls the driver back (its ``in_send`` kill).

The accounting (:func:`analyse`), per alert (fingerprint) and episode (``startsAt``), from the
webhook's deliveries:

- **lost**: a transition that happened but was never delivered: an episode delivered firing but
  never resolved (everything is resolved at the end); an episode delivered resolved but never
  firing; an intake raise answered 200 that stayed open at least ``MIN_UP_S`` seconds of daemon
  uptime but was never delivered firing; a target-down window of at least ``MIN_DOWN_S`` seconds
  inside one daemon run without a firing ``TargetDown`` covering it.
- **duplicated**: the same (fingerprint, status, startsAt) delivered under two different
  ``Idempotency-Key`` values, or twice without one (a receiver could not tell them apart). The
  same key delivered again is a **redelivery**, printed apart: at-least-once delivery that a
  receiver drops by the key (IETF httpapi Idempotency-Key draft).
- **out of order**: an episode whose resolved was delivered before its firing.

At the other sinks, by effect: Slack — a delivery id (message metadata) posted twice is a
duplicated message; a message still FIRING at the end (everything is resolved then) is a lost
update. PagerDuty — an episode (``dedup_key``, ``payload.timestamp``) that paged twice is
duplicated (a repeated trigger on an open incident is deduplicated by PagerDuty and is no
effect); a ``resolve`` for a key never triggered, or an incident still open at the end, is lost;
a resolve of an already resolved incident is a redelivery (no effect).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.support.notify_servers import PagerDutyEvents, Recorded, Reply, SlackWorkspace
from monitor.notify.webhook import IDEMPOTENCY_HEADER, idempotency_key

SLACK_TOKEN = "xoxb-0000000000-0000000000-ChaosSlackToken"
RULE = "TargetDown"
INTAKE = "ChaosIntake"
#: An intake alert open this long (daemon uptime, seconds) must have been delivered firing.
MIN_UP_S = 3.0
#: A target-down window this long inside one daemon run must have a firing TargetDown.
MIN_DOWN_S = 6.0


def iso(t: float) -> str:
    """Return Unix seconds ``t`` as RFC 3339 UTC with milliseconds (``2026-01-01T00:00:00.000Z``)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def norm_time(ts: str) -> float:
    """Return an RFC 3339 time as Unix seconds rounded to the millisecond (for comparing episodes)."""
    return round(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp(), 3)


def uptime(ups: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of daemon uptime between ``a`` and ``b`` (``ups``: ``(ready, killed)`` per daemon run)."""
    return sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in ups)


@dataclass
class Raise:
    """One intake raise answered 200 (and its resolve, once answered 200)."""

    slot: int
    starts_at: str
    acked: float
    resolved: float | None = None


@dataclass
class Result:
    """The counts and the figures of one chaos run."""

    lost: int
    duplicated: int
    out_of_order: int
    details: list[str] = field(default_factory=list)
    deliveries: int = 0
    episodes: int = 0
    raises: int = 0
    down_windows_checked: int = 0
    redeliveries: int = 0
    pd_events: int = 0
    pd_pages: int = 0
    pd_deduplicated: int = 0
    pd_duplicated: int = 0
    pd_resolve_repeated: int = 0
    pd_resolve_unknown: int = 0
    pd_left_open: int = 0
    slack_posts: int = 0
    slack_duplicated: int = 0
    slack_left_firing: int = 0
    webhook: tuple[int, int, int] = (0, 0, 0)  # lost, duplicated, out of order at the webhook
    kills: Counter = field(default_factory=Counter)
    seconds: float = 0.0


class Sinks:
    """The webhook, Slack and PagerDuty sinks: what each received.

    :param event: adds a line to the driver's log.
    :param on_send: called with ``"webhook"``, ``"slack"`` or ``"pagerduty"`` once a sink has
        handled a send (the driver's ``in_send`` kill).
    """

    def __init__(self, event: Callable[[str], None], on_send: Callable[[str], None]) -> None:
        self.hook_log: list[tuple[float, dict[str, Any], str]] = []  # (time, body, Idempotency-Key)
        self.pd = PagerDutyEvents()
        self.slack = SlackWorkspace(SLACK_TOKEN, channels=("chaos",))
        self._event = event
        self._on_send = on_send

    def hook(self, req: Recorded) -> Reply:
        """Answer the webhook: record the POST with its arrival time and ``Idempotency-Key``."""
        body = json.loads(req.body)
        self.hook_log.append((time.time(), body, idempotency_key(req.headers.get(IDEMPOTENCY_HEADER))))
        self._event("webhook: " + ", ".join(f"{a['labels'].get('alertname')} {a['labels'].get('slot', '')} "
                                            f"{a['status']} startsAt={a['startsAt']}" for a in body["alerts"]))
        self._on_send("webhook")
        return Reply(200, b"")

    def slack_api(self, req: Recorded) -> Reply:
        """Answer as the Slack Web API (a ``chat.postMessage`` is a send)."""
        reply = self.slack(req)
        if req.path == "/api/chat.postMessage":
            self._on_send("slack")
        return reply

    def pagerduty(self, req: Recorded) -> Reply:
        """Answer as the PagerDuty Events v2 API."""
        reply = self.pd(req)
        self._on_send("pagerduty")
        return reply


def analyse(sinks: Sinks, raises: list[Raise], toggles: list[tuple[float, bool]],
            ups: list[tuple[float, float]], kill_kinds: Counter) -> Result:
    """Count lost, duplicated and out-of-order transitions from the recorded deliveries."""
    details: list[str] = []
    # (fp, startsAt, status) -> Idempotency-Key of each delivery ("" without one)
    keys: dict[tuple[tuple[str, float], str], list[str]] = defaultdict(list)
    # (fp, startsAt) -> {"firing": [times], "resolved": [times], "name": alertname}
    eps: dict[tuple[str, float], dict[str, Any]] = defaultdict(lambda: {"firing": [], "resolved": []})
    deliveries = 0
    for t, body, key in sinks.hook_log:
        for a in body.get("alerts", []):
            deliveries += 1
            ep_key = (a["fingerprint"], norm_time(a["startsAt"]))
            keys[(ep_key, a["status"])].append(key)
            ep = eps[ep_key]
            ep[a["status"]].append(t)
            ep["name"] = a["labels"].get("alertname")
            ep["labels"] = a["labels"]
    duplicated = redeliveries = 0
    for (ep_key, status), ks in keys.items():
        effects = len({k for k in ks if k}) + ks.count("")  # what a receiver deduplicating by key sees
        redeliveries += len(ks) - effects
        if effects > 1:
            duplicated += effects - 1
            ep = eps[ep_key]
            details.append(f"duplicated: {ep['name']} {ep['labels'].get('slot', '')} startsAt={iso(ep_key[1])} "
                           f"{status} x{effects} (keys {sorted(set(ks))}) at {[iso(t) for t in ep[status]]}")
    lost = out_of_order = 0
    for key, ep in eps.items():
        what = f"{ep['name']} {ep['labels'].get('slot', '')} startsAt={iso(key[1])}"
        if ep["firing"] and not ep["resolved"]:
            lost += 1
            details.append(f"lost resolved: {what} firing delivered at {iso(ep['firing'][0])}, never resolved")
        elif ep["resolved"] and not ep["firing"]:
            lost += 1
            details.append(f"lost firing: {what} resolved delivered at {iso(ep['resolved'][0])}, never firing")
        elif ep["resolved"] and min(ep["resolved"]) < min(ep["firing"]):
            out_of_order += 1
            details.append(f"out of order: {what} resolved at {iso(min(ep['resolved']))} "
                           f"before firing at {iso(min(ep['firing']))}")
    # intake raises answered 200 that stayed open long enough
    intake_eps = {k[1]: ep for k, ep in eps.items() if ep["name"] == INTAKE}
    for r in raises:
        end = r.resolved if r.resolved is not None else time.time()
        ep = intake_eps.get(norm_time(r.starts_at))
        if (ep is None or not ep["firing"]) and uptime(ups, r.acked, end) >= MIN_UP_S:
            if ep is None:  # (a resolved-only episode is already counted above)
                lost += 1
                details.append(f"lost firing: {INTAKE} slot {r.slot} startsAt={r.starts_at} "
                               f"raised at {iso(r.acked)}, open {uptime(ups, r.acked, end):.1f}s of uptime, "
                               "never delivered")
    # target-down windows inside one daemon run
    rule_eps = [ep for ep in eps.values() if ep["name"] == RULE]
    windows = []
    for (t, h), nxt in zip(toggles, toggles[1:] + [(time.time(), True)]):
        if not h:
            windows.append((t, nxt[0]))
    checked = 0
    for a, b in windows:
        if b - a < MIN_DOWN_S or not any(lo <= a and b <= hi for lo, hi in ups):
            continue
        checked += 1
        ok = any(ep["firing"] and min(ep["firing"]) <= b + 2 and
                 (not ep["resolved"] or min(ep["resolved"]) >= a + 2) for ep in rule_eps)
        if not ok:
            lost += 1
            details.append(f"lost firing: {RULE} target down {iso(a)}..{iso(b)} inside one run, no firing")
    webhook = (lost, duplicated, out_of_order)
    # PagerDuty, by effect: pages per episode (dedup_key, payload.timestamp)
    pages = Counter((str(e.get("dedup_key")), str((e.get("payload") or {}).get("timestamp", "")))
                    for e in sinks.pd.paged)
    pd_dup = sum(n - 1 for n in pages.values() if n > 1)
    for (k, ts), n in pages.items():
        if n > 1:
            details.append(f"pagerduty duplicated: dedup_key {k} episode {ts} paged x{n}")
    if sinks.pd.resolve_unknown:
        details.append(f"pagerduty lost: {sinks.pd.resolve_unknown} resolve(s) for a dedup_key never triggered")
    if sinks.pd.open:
        details.append(f"pagerduty lost: incidents still open at the end: {sorted(sinks.pd.open)}")
    # Slack, by effect: one channel message per delivery id; every message resolved at the end
    slack_dup = sum(n - 1 for n in sinks.slack.duplicates().values())
    for k, n in sinks.slack.duplicates().items():
        details.append(f"slack duplicated: delivery {k} posted x{n}")
    left_firing = [m for msgs in sinks.slack.history.values() for m in msgs
                   if not str(m.get("text", "")).startswith("[RESOLVED]")]
    for m in left_firing:
        details.append(f"slack lost: message {m['ts']} still says {str(m.get('text', ''))[:60]!r}")
    return Result(lost + sinks.pd.resolve_unknown + len(sinks.pd.open) + len(left_firing),
                  duplicated + pd_dup + slack_dup, out_of_order, details, deliveries, len(eps),
                  len(raises), checked, redeliveries=redeliveries, pd_events=len(sinks.pd.events),
                  pd_pages=sinks.pd.pages, pd_deduplicated=sinks.pd.deduplicated, pd_duplicated=pd_dup,
                  pd_resolve_repeated=sinks.pd.resolve_repeated, pd_resolve_unknown=sinks.pd.resolve_unknown,
                  pd_left_open=len(sinks.pd.open), slack_posts=len(sinks.slack.posts),
                  slack_duplicated=slack_dup, slack_left_firing=len(left_firing), webhook=webhook,
                  kills=kill_kinds)
