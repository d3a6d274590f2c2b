"""monitor.notify: the back of the alert pipeline — messages, the outbox, and the channels that send.

- ``payload``: the alert payload every channel reads (the pipeline's edge out);
- ``base``: the :class:`Notifier` protocol, :class:`Message`, :class:`Integration`;
- ``receiver_stages``: the durable receiver pipeline (message -> transition number -> outbox);
- ``notices``: escalation notices and acknowledge/resolve updates for one alert;
- ``handoff``: on-call handoff announcements;
- ``outbox_stage``: one deduplicated outbox row per integration; ``outbox``: the worker that
  sends with retry (``retry``: status classes, backoff);
- ``links``: signed acknowledge/resolve links; ``templates``: the message texts;
- ``slack``, ``pagerduty``, ``webhook``, ``email``: one module per channel; ``registry``: the
  explicit ``kind -> notifier class`` map and the integration builder.

Public API::

    from monitor.notify import (Message, NotifyResult, Notifier, Integration, NOTIFIERS,
                                build_integrations, OutboxStage, OutboxWorker, NotifyMetrics)
"""

from monitor.notify.base import KINDS, Integration, Message, Notifier, NotifyResult
from monitor.notify.outbox import NotifyMetrics, OutboxWorker, RunStats
from monitor.notify.outbox_stage import OutboxStage, transition_id
from monitor.notify.payload import alert_payload
from monitor.notify.registry import NOTIFIERS, build_integrations
from monitor.notify.templates import Templates

__all__ = ["KINDS", "NOTIFIERS", "Integration", "Message", "Notifier", "NotifyResult", "NotifyMetrics",
           "OutboxStage", "OutboxWorker", "RunStats", "Templates", "alert_payload", "build_integrations",
           "transition_id"]
