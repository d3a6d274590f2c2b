"""A PagerDuty summary cut to the Events API's 1,024-character limit says so (issue 16).

PagerDuty truncates ``payload.summary`` silently; the event we send is cut first, ends with an
ellipsis, and keeps the whole text in ``custom_details.summary`` — sent to a real local Events
API server, as PagerDuty receives it.
"""

from __future__ import annotations

from monitor.config.receivers import PagerDutyConfig
from monitor.notify.base import Message
from monitor.notify.pagerduty import SUMMARY_LIMIT, PagerDutyNotifier
from tests.support.notify_servers import FakeHTTP, pagerduty_api

ROUTING_KEY = "R0UT1NGKEYs3cr3t0000000000000000"


def _message(summary: str) -> Message:
    return Message.build("firing", "ops", [{"labels": {"alertname": "Long", "severity": "critical"},
                                            "annotations": {"summary": summary}}])


async def test_a_cut_summary_ends_with_an_ellipsis_and_the_whole_text_is_in_custom_details():
    words = " ".join(f"word{i:04d}" for i in range(300))  # ~2,700 characters
    async with FakeHTTP(pagerduty_api) as srv:
        n = PagerDutyNotifier(PagerDutyConfig(routing_key=ROUTING_KEY, url=srv.url, timeout=5))
        try:
            await n.notify(_message(words))
        finally:
            await n.aclose()
        (request,) = srv.requests
    payload = request.data["payload"]
    assert len(payload["summary"]) <= SUMMARY_LIMIT
    assert payload["summary"].endswith("\u2026")
    full = payload["custom_details"]["summary"]
    assert words in full and len(full) > SUMMARY_LIMIT
    assert full.startswith(payload["summary"][:-1].rstrip()), "the cut text is the start of the whole"


async def test_a_short_summary_is_sent_whole_without_a_copy():
    async with FakeHTTP(pagerduty_api) as srv:
        n = PagerDutyNotifier(PagerDutyConfig(routing_key=ROUTING_KEY, url=srv.url, timeout=5))
        try:
            await n.notify(_message("disk almost full"))
        finally:
            await n.aclose()
        (request,) = srv.requests
    payload = request.data["payload"]
    assert "disk almost full" in payload["summary"] and not payload["summary"].endswith("\u2026")
    assert "summary" not in payload["custom_details"]
