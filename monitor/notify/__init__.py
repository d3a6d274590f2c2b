"""monitor.notify: notifiers (Slack, PagerDuty, webhook, email), templates, retries, outbox.

Public API::

    from monitor.notify import (Message, NotifyResult, Notifier, Integration, CHANNELS,
                                build_integrations, OutboxStage, OutboxWorker, NotifyMetrics)
"""

from monitor.notify.base import KINDS, Integration, Message, Notifier, NotifyResult
from monitor.notify.outbox import NotifyMetrics, OutboxWorker, RunStats
from monitor.notify.payload import alert_payload
from monitor.notify.pipeline import OutboxStage, transition_id
from monitor.notify.registry import CHANNELS, build_integrations
from monitor.notify.templates import Templates

__all__ = ["KINDS", "CHANNELS", "Integration", "Message", "Notifier", "NotifyResult", "NotifyMetrics",
           "OutboxStage", "OutboxWorker", "RunStats", "Templates", "alert_payload", "build_integrations",
           "transition_id"]
