"""The real daemon sends a due maintenance reminder once through Slack and email, and a restart
around it sends nothing again (the sent mark and the outbox rows are in the state store)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config
from tests.support.notify_servers import FakeHTTP, FakeSMTP, slack_api

TOKEN = "xoxb-7777777777-8888888888-ReStArTtOkEn"


def _window_soon() -> tuple[str, str]:
    """A daily window starting 20 minutes from now (UTC, whole minutes), an hour long at most."""
    start = (datetime.now(timezone.utc) + timedelta(minutes=20)).replace(second=0, microsecond=0)
    end = min(start + timedelta(hours=1), start.replace(hour=0, minute=0) + timedelta(days=1))
    end_text = "24:00" if end.date() != start.date() else f"{end:%H:%M}"
    return f"{start:%H:%M}", end_text


async def test_a_due_reminder_is_sent_once_across_a_restart(tmp_path):
    start, end = _window_soon()
    async with FakeHTTP(slack_api(TOKEN)) as slack:
        with FakeSMTP() as smtp:
            cfg = write_config(tmp_path, f"""
                receivers:
                  - name: clients
                    slack_configs: [{{channel: "#ops", token: {TOKEN}, api_url: "{slack.url}/api/"}}]
                    email_configs: [{{to: ops@codebook.example, from: status@codebook.example,
                                      smarthost: "{smtp.smarthost}", require_tls: false}}]
                alerting:
                  route: {{receiver: clients}}
                  time_intervals:
                    - name: soon
                      time_intervals: [{{times: [{{start_time: "{start}", end_time: "{end}"}}]}}]
                  maintenance_windows:
                    - name: db-upgrade
                      time_intervals: [soon]
                      notices:
                        receiver: clients
                        before: [1h]      # a daily window: a 7-day notice would go for each of 7 days
                        audience:
                          contacts: [{{name: Acme, email: ops@acme.example, slack_channel: C0ACME}}]
                """)
            async with run_daemon(cfg):
                await eventually(lambda: asyncio.sleep(0, len(slack.on("/api/chat.postMessage")) == 1
                                                       and len(smtp.handler.messages) == 1),
                                 timeout=30, what="the reminder by Slack and email")
            [post] = slack.on("/api/chat.postMessage")
            assert post.data["channel"] == "C0ACME"
            assert post.data["text"].startswith("*Reminder: maintenance starts in 1h*")
            assert smtp.handler.messages[0][1] == ["ops@acme.example"]

            async with run_daemon(cfg) as d:  # the restart: leader again, its announce job runs at once
                await eventually(lambda: _leader(d), timeout=30, what="leadership")
                await asyncio.sleep(2)
            assert len(slack.on("/api/chat.postMessage")) == 1
            assert len(smtp.handler.messages) == 1


async def _leader(d) -> bool:
    return metric_values(await d.metrics(), "monitor_leader") == [1.0]
