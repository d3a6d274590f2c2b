"""Jinja2 templates for notification text, with user overrides from a folder.

Default templates ship in ``monitor/notify/templates/``:

=========================  ====================================================
``title.j2``               one line: ``[FIRING:2] P0 ApiDown: API is down``
``slack_header.j2``        Slack header block (cut at 150 characters)
``slack_text.j2``          Slack top-level ``text`` (notification fallback)
``slack_section.j2``       Slack main section, mrkdwn (cut at 3000 characters)
``pagerduty_summary.j2``   PagerDuty ``payload.summary`` (cut at 1024 characters)
``email_subject.j2``       email Subject
``email_text.txt.j2``      email text/plain part
``email_html.html.j2``     email text/html part (autoescaped)
=========================  ====================================================

A user points ``templates_dir`` at a folder; a file there with the same name wins
(``ChoiceLoader``: user folder first, then the defaults), so one can override just
``title.j2`` and every channel follows.

Template data (:func:`template_data`): ``kind``, ``status``, ``receiver``, ``alerts``
(payload dicts, see :func:`monitor.notify.payload.alert_payload`), ``firing``, ``resolved``,
``group_labels``, ``common_labels``, ``common_annotations``, ``external_url``, ``ack_url``,
``resolve_url``, ``severity``, ``priority``, ``summary``, ``value``, ``runbook_url``,
``recipient``, ``title``, ``extra``, and ``headline`` (``title.j2`` rendered; HTML templates
use it instead of including ``title.j2`` so it is escaped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from monitor.notify.base import Message

DEFAULT_DIR = Path(__file__).with_name("templates")


def template_data(message: Message) -> dict[str, Any]:
    """Return the variables every template sees for ``message``."""
    first: dict[str, Any] = message.alerts[0] if message.alerts else {"annotations": {}, "labels": {}, "value": ""}
    ca = message.common_annotations
    return {
        "kind": message.kind,
        "status": message.status,
        "receiver": message.receiver,
        "alerts": list(message.alerts),
        "firing": message.firing(),
        "resolved": message.resolved(),
        "group_key": message.group_key,
        "group_labels": message.group_labels,
        "common_labels": message.common_labels,
        "common_annotations": ca,
        "external_url": message.external_url,
        "ack_url": message.ack_url,
        "resolve_url": message.resolve_url,
        "severity": message.severity,
        "priority": message.priority,
        "summary": ca.get("summary") or first["annotations"].get("summary", ""),
        "value": first.get("value", ""),
        "runbook_url": ca.get("runbook_url") or first["annotations"].get("runbook_url", ""),
        "recipient": message.recipient,
        "title": message.title,
        "extra": message.extra,
        "fingerprints": message.fingerprints,
    }


class Templates:
    """A Jinja2 environment over the user folder (if any) and the shipped defaults.

    :param templates_dir: a folder whose files override the defaults by name, or ``None``.

    >>> t = Templates()
    >>> t.render("title.j2", Message.build("firing", "ops", [{"labels": {"alertname": "X"}}]))
    '[FIRING:1] X'
    """

    def __init__(self, templates_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir:
            loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
        loaders.append(jinja2.FileSystemLoader(str(DEFAULT_DIR)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"),
                                                default_for_string=False, default=False),
            undefined=jinja2.ChainableUndefined,  # a missing label renders empty, never raises
            keep_trailing_newline=False,
        )

    def render(self, name: str, message: Message, **more: Any) -> str:
        """Render template ``name`` with :func:`template_data` (plus ``more``), stripped.

        :raises jinja2.TemplateError: when a user template is broken (caught by the notifier
            and surfaced as a permanent :class:`~monitor.errors.NotifyError`).
        """
        data = template_data(message)
        data.update(more)
        if name != "title.j2":
            # The rendered title as a plain string, so HTML templates autoescape it (an
            # ``include`` of title.j2 would inherit no escaping: it is not an .html template).
            data.setdefault("headline", self.env.get_template("title.j2").render(data).strip())
        return self.env.get_template(name).render(data).strip()

    def check(self) -> list[str]:
        """Compile every template the channels use; return one error string per broken one.

        Meant for config load (an invalid template is a startup error).
        """
        errors = []
        for name in ("title.j2", "slack_header.j2", "slack_text.j2", "slack_section.j2",
                     "pagerduty_summary.j2", "email_subject.j2", "email_text.txt.j2",
                     "email_html.html.j2", "slack_maintenance.j2", "email_maintenance.txt.j2"):
            try:
                self.env.get_template(name)
            except jinja2.TemplateError as exc:
                errors.append(f"{name}: {exc}")
        return errors


def truncate(text: str, limit: int, marker: str = "\u2026") -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with ``marker`` when cut.

    Cuts at the last line break or space in the final fifth when there is one, so words and
    mrkdwn links are not split mid-way.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(marker))]
    for sep in ("\n", " "):
        i = cut.rfind(sep)
        if i >= len(cut) * 4 // 5:
            cut = cut[:i]
            break
    return cut.rstrip() + marker
