"""Restart-exact delivery (issue 9, item 4): what was due before a crash is sent after it, once;
intake alerts are not re-announced; repeat and group timers resume where they were."""

from __future__ import annotations

from model.alert import Alert
from tests.alerting_service.conftest import T0, Clock, Harness, make_config

WARN = {"alertname": "DiskFilling", "severity": "warning", "service": "db"}


def intake_alert(starts_at: float, ends_at: float | None = None, timeout: bool = False) -> Alert:
    return Alert(WARN, {"summary": "disk filling", "description": "disk at 91%"}, starts_at, ends_at,
                 timeout=timeout)


def statuses(h: Harness) -> list[str]:
    """The firing/resolved sequence the #alerts channel saw (posts and updates, in order)."""
    calls = [r for r in h.servers.slack.requests if r.path in ("/api/chat.postMessage", "/api/chat.update")]
    out = []
    for r in calls:
        if str(r.data.get("channel", "")).startswith("D"):  # escalation DMs, not the channel
            continue
        text = str(r.data)
        out.append("resolved" if "RESOLVED" in text.upper() else "firing")
    return out


async def test_resolved_before_crash_is_sent_after_restart_once(servers, state_cfg):
    h = Harness(make_config(servers.slack.url, servers.pd.url, servers.smtp.smarthost, state_cfg), Clock(T0), servers)
    try:
        svc = await h.new_service()
        await svc.ingest([intake_alert(T0 - 600, T0 + 300, timeout=True)], now=T0, source="api:prom")
        await h.at(T0)
        assert statuses(h) == ["firing"]
        # resolved at T0+60; its group flushes at T0+300: killed before that
        await svc.ingest([intake_alert(T0 - 600, T0 + 60)], now=T0 + 60, source="api:prom")
        svc = await h.new_service()
        for t in range(int(T0 + 61), int(T0 + 700), 10):
            await h.at(t)
        assert statuses(h) == ["firing", "resolved"]
        to_ops = [m[2].split(b"\r\n", 1)[0] for m in servers.smtp.handler.messages if m[1] == ["ops@example.com"]]
        assert [s.split(b"]")[0] for s in to_ops] == [b"Subject: [FIRING:1", b"Subject: [RESOLVED"]
    finally:
        await h.close()


async def test_intake_alert_not_reannounced_and_repeat_resumes(harness):
    h = harness
    svc = await h.new_service()
    await svc.ingest([intake_alert(T0 - 600, T0 + 300, timeout=True)], now=T0, source="api:prom")
    await h.at(T0)
    assert statuses(h) == ["firing"]
    # restarted at T0+100; Prometheus keeps re-posting the alert every 30 s
    svc = await h.new_service()
    t = T0 + 100
    while t < T0 + 4 * 3600 - 30:
        await svc.ingest([intake_alert(T0 - 600, t + 300, timeout=True)], now=t, source="api:prom")
        await h.at(t)
        t += 30
    assert statuses(h) == ["firing"]           # not announced again after the restart
    svc = await h.new_service()                # and again just before the repeat is due
    while t < T0 + 4 * 3600 + 300 + 60:
        await svc.ingest([intake_alert(T0 - 600, t + 300, timeout=True)], now=t, source="api:prom")
        await h.at(t)
        t += 30
    # the repeat (repeat_interval 4h, group_interval 5m) came on time: one, within a group interval
    assert statuses(h) == ["firing", "firing"]
