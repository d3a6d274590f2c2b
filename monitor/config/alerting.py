"""Config sections for alerting and escalation (route tree, inhibition, maintenance windows,
people, schedules, escalation policies). Placeholder: filled in by the alerting work."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AlertingConfig(BaseModel):
    """The ``alerting:`` section of monitor.yaml."""

    model_config = ConfigDict(extra="forbid")
