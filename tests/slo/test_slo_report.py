"""Calendar-month reports: the month's window and the rows built from query results."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from monitor.slo.report import format_report, month_window, report_queries, report_rows


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_a_past_month_is_complete_and_the_current_one_is_to_date():
    now = _ts("2026-12-05T10:00:00")
    assert month_window("2026-11", now) == ("2026-11", _ts("2026-11-01T00:00:00"), _ts("2026-12-01T00:00:00"), True)
    assert month_window(None, now) == ("2026-12", _ts("2026-12-01T00:00:00"), now, False)
    assert month_window("2026-02", now)[2] - month_window("2026-02", now)[1] == 28 * 86400


@pytest.mark.parametrize("month,message", [("2026-13", "expected a month such as 2026-11"),
                                           ("Nov", "expected a month such as 2026-11"),
                                           ("2027-01", "has not started yet")])
def test_bad_months(month, message):
    with pytest.raises(ValueError, match=message):
        month_window(month, _ts("2026-12-05T10:00:00"))


def test_queries_cover_the_month_in_seconds():
    q = report_queries(_ts("2026-11-01T00:00:00"), _ts("2026-12-01T00:00:00"))
    assert q["bad"] == "sum by (sloth_id) (sum_over_time(slo:sli_error_events:count5m[2592000s]))"
    assert q["all"] == "sum by (sloth_id) (sum_over_time(slo:sli_events:count5m[2592000s]))"


def test_rows_weigh_by_traffic_and_judge_the_objective():
    def res(sid, v):
        return {"metric": {"sloth_id": sid}, "value": [0, str(v)]}

    rows = report_rows({"bad": [res("api", 5), res("db", 30)], "all": [res("api", 10000), res("db", 10000)],
                        "objective": [res("api", 0.999), res("db", 0.999), res("new", 0.99)]}, "2026-11", True)
    assert [(r["slo"], round(r["sli"], 6) if r["sli"] else None, r["compliant"]) for r in rows] == [
        ("api", 0.9995, True), ("db", 0.997, False), ("new", None, None)]
    assert rows[0]["budget_used"] == pytest.approx(0.5) and rows[1]["budget_used"] == pytest.approx(3.0)
    table = format_report(rows).splitlines()
    assert table[1].split() == ["api", "2026-11", "99.900%", "99.950%", "50.0%", "yes"]
    assert table[2].split() == ["db", "2026-11", "99.900%", "99.700%", "300.0%", "NO"]


def test_oncall_slos_are_also_shown_per_priority():
    def res(sid, v, **labels):
        return {"metric": {"sloth_id": sid, **labels}, "value": [0, str(v)]}

    q = report_queries(_ts("2026-11-01T00:00:00"), _ts("2026-12-01T00:00:00"))
    assert q["oncall"] == ('max by (sloth_id, oncall_priority, oncall_measure) '
                           '(last_over_time(slo:info{slo_sli_kind="oncall"}[2592000s]))')
    results = {"bad": [res("oncall-ack-p0", 1), res("oncall-resolve-p0", 4), res("api", 1)],
               "all": [res("oncall-ack-p0", 40), res("oncall-resolve-p0", 40), res("api", 10000)],
               "objective": [res("oncall-ack-p0", 0.95), res("oncall-resolve-p0", 0.9), res("api", 0.999),
                             res("oncall-ack-p1", 0.95)],
               "oncall": [res("oncall-ack-p0", 1, oncall_priority="P0", oncall_measure="ack"),
                          res("oncall-resolve-p0", 1, oncall_priority="P0", oncall_measure="resolve"),
                          res("oncall-ack-p1", 1, oncall_priority="P1", oncall_measure="ack")]}
    rows = report_rows(results, "2026-11", True)
    by = {r["slo"]: r for r in rows}
    assert (by["oncall-ack-p0"]["priority"], by["oncall-ack-p0"]["measure"], by["oncall-ack-p0"]["events"]) == (
        "P0", "ack", 40)
    assert by["api"]["priority"] is None
    text = format_report(rows)
    assert "On-call response by priority:" in text
    table = text.split("On-call response by priority:\n", 1)[1].splitlines()
    assert table[0].split() == ["PRIORITY", "ACKNOWLEDGED", "WITHIN", "SLA", "RESOLVED", "WITHIN", "SLA"]
    assert table[1].split() == ["P0", "97.5%", "of", "40", "(objective", "95.0%)", "ok",
                                "90.0%", "of", "40", "(objective", "90.0%)", "ok"]
    assert table[2].split() == ["P1", "-", "(objective", "95.0%)", "-"]
    assert "On-call" not in format_report([by["api"]])
