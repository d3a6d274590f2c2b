"""Config sections for receivers (Slack, PagerDuty, webhook, email) and the state store.
Placeholder: filled in by the notify/store work."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StateConfig(BaseModel):
    """The ``state:`` section of monitor.yaml (durable state store)."""

    model_config = ConfigDict(extra="forbid")


class ReceiverConfig(BaseModel):
    """One entry of ``receivers:``."""

    model_config = ConfigDict(extra="forbid")

    name: str
