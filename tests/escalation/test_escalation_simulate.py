"""`codebook-monitor simulate` and `codebook-monitor oncall` output."""

from __future__ import annotations

from monitor.escalation.simulate import format_timeline, oncall_report, simulate
from tests.support.alerting_helpers import load_alerting, utc

AT = utc(2026, 3, 30, 8, 0)


def test_simulate_critical_timeline(shipped):
    rows = simulate(shipped, "severity=critical,alertname=ApiDown,service=api", AT)
    assert [(r.at, r.level, r.person, r.channels) for r in rows] == [
        (utc(2026, 3, 30, 8, 0), 0, "alice", ("page", "slack_dm")),
        (utc(2026, 3, 30, 8, 15), 1, "bob", ("page", "slack_dm")),
        (utc(2026, 3, 30, 8, 30), 2, "em", ("page", "slack_dm", "email")),
        (utc(2026, 3, 30, 8, 45), 3, "cto", ("page", "email")),
        (utc(2026, 3, 30, 12, 0), 3, "cto", ("page", "email")),
    ]
    assert rows[-1].note == "SLA breached: P0 not resolved within 4h"
    text = format_timeline(rows, shipped, labels="severity=critical,alertname=ApiDown", at=AT)
    lines = text.splitlines()
    assert lines[0] == ('P0: acknowledge within 15m, resolve within 4h '
                        '(alert {alertname="ApiDown", severity="critical"})')
    assert lines[1].split() == ["2026-03-30", "08:00:00", "UTC", "L1", "alice", "(Alice", "Martin)", "page,",
                                "slack_dm", "triggered", "(schedule:primary)"]


def test_simulate_horizon_and_handoff_during_escalation(shipped):
    # Ten minutes before the Monday 09:00 Berlin handoff (07:00 UTC): alice (primary) is paged first;
    # by the 15-minute step the secondary schedule has passed from bob to carol, so carol is paged.
    rows = simulate(shipped, ["severity=critical"], utc(2026, 4, 6, 6, 50), horizon=20 * 60)
    assert [(r.at, r.person) for r in rows] == [(utc(2026, 4, 6, 6, 50), "alice"), (utc(2026, 4, 6, 7, 5), "carol")]


def test_simulate_without_chain_and_with_gaps():
    cfg = load_alerting("""
people: {em: {name: Erin}}
schedules: {primary: {start: 2030-01-07, members: [em]}}
escalation: {chain: [{target: "schedule:primary"}, {target: "person:em", channels: [email]}]}
""")
    rows = simulate(cfg, {"severity": "critical"}, AT, horizon=3600)
    # em has no email address: the daemon's step fails with no_contact, and so does the simulation
    assert [(r.level, r.person, r.channels, r.note) for r in rows] == [
        (0, None, (), "failed: no_one_on_call (schedule:primary)"), (1, "em", (), "triggered (person:em)"),
        (1, "em", ("email",), "failed: no_contact (email)")]
    assert format_timeline(simulate(load_alerting("{}"), {"severity": "critical"}, AT, 3600)).endswith(
        "nobody would be notified (empty escalation chain)")


def test_oncall_report(shipped):
    text = oncall_report(shipped, AT, 3)
    assert text.splitlines() == [
        "primary (Europe/Berlin, weekly, handoff monday 09:00): on call now: alice (Alice Martin)",
        "  2026-04-06 09:00 CEST (07:00 UTC) -> bob (Bob Schulz)",
        "  2026-04-13 09:00 CEST (07:00 UTC) -> carol (Carol Diaz)",
        "  2026-04-20 09:00 CEST (07:00 UTC) -> alice (Alice Martin)",
        "secondary (Europe/Berlin, weekly, handoff monday 09:00): on call now: bob (Bob Schulz)",
        "  2026-04-06 09:00 CEST (07:00 UTC) -> carol (Carol Diaz)",
        "  2026-04-13 09:00 CEST (07:00 UTC) -> alice (Alice Martin)",
        "  2026-04-20 09:00 CEST (07:00 UTC) -> bob (Bob Schulz)",
    ]
    assert oncall_report(load_alerting("{}"), AT) == "no schedules configured"
