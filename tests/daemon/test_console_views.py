"""The console's next maintenance window (``monitor.daemon.console_views.next_maintenance``): a window in
effect shows its real start and end, not "now" and now plus its length."""

from __future__ import annotations

from types import SimpleNamespace

from monitor.daemon import console_views
from monitor.daemon.console_views import next_maintenance
from tests.notify.test_maintenance_notices import END, START, alerting, ts


def test_an_open_window_shows_its_real_start_and_end():
    config = SimpleNamespace(alerting=alerting())
    console_views._cache.clear()
    now = ts(2026, 12, 5, 3, 54, 22)  # inside 02:00-06:00, with seconds
    assert next_maintenance(config, now) == {"name": "monthly-maintenance", "start": START, "end": END}


def test_the_next_window_before_it_opens():
    config = SimpleNamespace(alerting=alerting())
    console_views._cache.clear()
    assert next_maintenance(config, ts(2026, 12, 4, 12, 0, 7)) == {
        "name": "monthly-maintenance", "start": START, "end": END}
