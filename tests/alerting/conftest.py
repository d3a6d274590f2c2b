"""Fixtures for the alerting tests."""

from __future__ import annotations

import pytest
from alerting_helpers import shipped_config

from monitor.config.alerting import AlertingConfig


@pytest.fixture
def shipped() -> AlertingConfig:
    """The shipped ``alerting:`` section."""
    return shipped_config()
