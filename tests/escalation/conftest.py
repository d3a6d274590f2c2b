"""Fixtures for the escalation tests: the shipped alerting section (people, schedules, policy)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "alerting"))  # alerting_helpers

from alerting_helpers import shipped_config  # noqa: E402

from monitor.config.alerting import AlertingConfig  # noqa: E402


@pytest.fixture
def shipped() -> AlertingConfig:
    """The shipped ``alerting:`` section."""
    return shipped_config()
