"""Fixtures of the console tests: a local PagerDuty Events API (incidents by dedup key) and a webhook sink."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.support.notify_servers import FakeHTTP, PagerDutyEvents, webhook_sink


@pytest.fixture
async def sinks():
    """``sinks.pd`` (a :class:`FakeHTTP` serving :class:`PagerDutyEvents`, ``sinks.events``) and ``sinks.chat``."""
    events = PagerDutyEvents()
    async with FakeHTTP(events) as pd, FakeHTTP(webhook_sink) as chat:
        yield SimpleNamespace(pd=pd, events=events, chat=chat)
