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
