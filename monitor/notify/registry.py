"""The explicit ``kind -> notifier class`` registry (:data:`NOTIFIERS`) and the integration builder.

No discovery, no entry points: adding a channel means a module, a config model, one line here
and one line in ``ReceiverConfig`` — and ``tests/notify/test_notify_registry.py`` fails until
both sides agree (Gatus ``alerting/provider/provider.go`` completeness assertions). (A receiver's
notifier kinds are not the escalation's contact channels ``page``/``slack_dm``/``email``:
``monitor.escalation.notices`` maps those onto notifier kinds.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from monitor.config.receivers import CHANNEL_FIELDS, ReceiverConfig
from monitor.notify.base import Integration
from monitor.notify.email import EmailNotifier
from monitor.notify.pagerduty import PagerDutyNotifier
from monitor.notify.slack import SlackNotifier
from monitor.notify.templates import Templates
from monitor.notify.webhook import WebhookNotifier

#: Notifier kind (a receiver's ``<kind>_configs``) -> the class that sends through it.
NOTIFIERS: dict[str, type] = {
    "slack": SlackNotifier,
    "pagerduty": PagerDutyNotifier,
    "webhook": WebhookNotifier,
    "email": EmailNotifier,
}


def build_integrations(receivers: Iterable[ReceiverConfig], *, templates: Templates | None = None,
                       templates_dir: str | None = None,
                       clock: Callable[[], float] = time.time) -> dict[str, list[Integration]]:
    """Build one :class:`Integration` per channel entry, named ``kind[index]``, per receiver.

    :param receivers: the validated ``receivers:`` section.
    :param templates: a shared template set; built from ``templates_dir`` when ``None``.
    :param clock: unix-seconds clock handed to every notifier.
    :return: ``{receiver name: [Integration, ...]}`` in config order (a receiver with no
        channel entries maps to ``[]``, Alertmanager's "null receiver").
    """
    templates = templates or Templates(templates_dir)
    built: dict[str, list[Integration]] = {}
    for receiver in receivers:
        items: list[Integration] = []
        for kind, field in CHANNEL_FIELDS.items():
            for i, conf in enumerate(getattr(receiver, field)):
                notifier = NOTIFIERS[kind](conf, templates=templates, clock=clock)
                items.append(Integration(name=f"{kind}[{i}]", receiver=receiver.name, notifier=notifier))
        built[receiver.name] = items
    return built
