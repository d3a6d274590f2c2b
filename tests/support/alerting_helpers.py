"""Helpers shared by the alerting and escalation tests."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import yaml

from monitor.config.alerting import AlertingConfig

SHIPPED = Path(__file__).resolve().parents[1] / "alerting" / "shipped_alerting.yaml"
RECEIVERS = {"pager", "slack-incidents", "slack-alerts", "email"}


def load_alerting(text: str) -> AlertingConfig:
    """Validate an ``alerting:`` YAML snippet (the section's content, without the key)."""
    return AlertingConfig.model_validate(yaml.safe_load(text) or {})


def shipped_config() -> AlertingConfig:
    """The shipped ``alerting:`` section."""
    return AlertingConfig.model_validate(yaml.safe_load(SHIPPED.read_text())["alerting"])


def utc(*args: int) -> datetime:
    """``utc(2026, 3, 7, 2, 0)`` -> an aware UTC datetime."""
    return datetime(*args, tzinfo=timezone.utc)


def unix(*args: int) -> float:
    """``unix(2026, 3, 7, 2, 0)`` -> that UTC instant in Unix seconds (the alert pipeline's time)."""
    return utc(*args).timestamp()
