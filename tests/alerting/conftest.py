"""Fixtures for the alerting tests."""

from __future__ import annotations

import pytest

from monitor.config.alerting import AlertingConfig
from tests.support.alerting_helpers import shipped_config


@pytest.fixture
def shipped() -> AlertingConfig:
    """The shipped ``alerting:`` section."""
    return shipped_config()
