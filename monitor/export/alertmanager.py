"""Export ``monitor.yaml``'s routing and receivers as configuration for a real Alertmanager.

:func:`alertmanager_config` turns the ``alerting:`` section (route tree, inhibition rules, time
intervals, maintenance windows) and ``receivers:`` into an ``alertmanager.yml`` (Alertmanager
``config/config.go`` and ``config/notifiers.go`` shapes, accepted by ``amtool check-config`` of
Alertmanager 0.25 and later).

Secrets are never copied by default: every secret field becomes Alertmanager's ``*_file``
reference (``routing_key_file``, ``auth_password_file``, the Slack bot token as
``http_config.authorization.credentials_file``) under ``secrets_dir``, and the list of files to
create is returned. A webhook URL has no ``*_file`` form in Alertmanager 0.25, so it is
written as a placeholder to replace. ``inline_secrets=True`` writes the values instead (protect
the file then).

Differences that cannot be expressed in Alertmanager are returned as warnings (and written as
comments at the top of the file): HMAC signing of webhooks, and maintenance windows with
matchers that no route implies. Maintenance windows without matchers become
``mute_time_intervals`` on every route below the root (Alertmanager forbids them on the root,
and they are not inherited, ``dispatch/route.go``), plus a last catch-all route to the root's
receiver so alerts that match no child are muted too. The catch-all differs from Alertmanager's
fallback only for an alert whose last matching top-level route has ``continue: true``.
"""

from __future__ import annotations

import re
from typing import Any

from model.matchers import format_matchers
from monitor.config.routing import RouteConfig
from monitor.config.model import Config
from monitor.export.document import Export
from model.matchers import Matcher
from model.duration import format_duration

__all__ = ["alertmanager_config", "DEFAULT_SECRETS_DIR", "DEFAULT_TEMPLATES", "WEBHOOK_PLACEHOLDER", "TEMPLATE_REFS"]

#: Where the ``*_file`` secret references point by default.
DEFAULT_SECRETS_DIR = "/etc/alertmanager/secrets"
#: Template glob written to ``templates:`` (Alertmanager resolves it against the config's directory).
DEFAULT_TEMPLATES = "templates/*.tmpl"
#: Written in place of a webhook URL (a secret with no ``url_file`` in Alertmanager 0.25).
WEBHOOK_PLACEHOLDER = "https://replace-me.invalid/webhook/{receiver}"
#: Template names used by the generated receivers; ``alertmanager/templates/codebook.tmpl``
#: defines every one of them.
TEMPLATE_REFS = {
    "slack_title": 'codebook.slack.title',
    "slack_text": 'codebook.slack.text',
    "pagerduty_description": 'codebook.pagerduty.description',
    "email_subject": 'codebook.email.subject',
    "email_html": 'codebook.email.html',
}


def _tmpl(name: str) -> str:
    return '{{ template "%s" . }}' % TEMPLATE_REFS[name]


def _matcher_strings(matchers: list[Matcher]) -> list[str]:
    return [format_matchers([m])[1:-1] for m in matchers]


def _dur(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


class _Secrets:
    """Turns a secret field into a ``*_file`` reference (or its value when inlining)."""

    def __init__(self, inline: bool, secrets_dir: str) -> None:
        self.inline = inline
        self.dir = secrets_dir.rstrip("/")
        self.files: dict[str, str] = {}

    def put(self, out: dict[str, Any], key: str, secret: Any, *, where: str, what: str) -> None:
        """Set ``out[key]`` (inline) or ``out[key + "_file"]`` for ``secret`` (``None``: skip)."""
        if secret is None:
            return
        if self.inline:
            out[key] = secret.get_secret_value()
            return
        path = f"{self.dir}/{re.sub(r'[^A-Za-z0-9_.-]', '_', where)}"
        self.files[path] = what
        out[f"{key}_file"] = path


def _route(r: RouteConfig, mutes: list[str], *, root: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.receiver is not None:
        out["receiver"] = r.receiver
    if r.group_by is not None:
        out["group_by"] = list(r.group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = _dur(getattr(r, key))
        if value is not None:
            out[key] = value
    matchers = _matcher_strings(r.parsed_matchers())
    if matchers:
        out["matchers"] = matchers
    if r.continue_:
        out["continue"] = True
    own_mutes = list(r.mute_time_intervals) + ([] if root else [m for m in mutes if m not in r.mute_time_intervals])
    if own_mutes:
        out["mute_time_intervals"] = own_mutes
    if r.active_time_intervals:
        out["active_time_intervals"] = list(r.active_time_intervals)
    if r.routes:
        out["routes"] = [_route(c, mutes, root=False) for c in r.routes]
    return out


def _window_mutes(config: Config, warnings: list[str]) -> list[str]:
    """Time-interval names of the maintenance windows that mute every alert."""
    names: list[str] = []
    for w in config.alerting.maintenance_windows:
        if w.parsed_matchers():
            warnings.append(
                f'maintenance window "{w.name}" has matchers ({", ".join(w.matchers)}); Alertmanager mutes '
                f"by route only, so it is not exported: add its time intervals to the routes it should mute")
            continue
        names.extend(n for n in w.time_intervals if n not in names)
    return names


def _slack(c: Any, receiver: str, i: int, secrets: _Secrets) -> dict[str, Any]:
    out: dict[str, Any] = {
        "send_resolved": c.send_resolved,
        # A bot token posts through chat.postMessage with an Authorization header (Alertmanager
        # accepts the Web API URL as api_url since 0.22).
        "api_url": c.api_url + "chat.postMessage",
        "channel": c.channel,
        "title": _tmpl("slack_title"),
        "text": _tmpl("slack_text"),
    }
    if c.username:
        out["username"] = c.username
    if c.icon_emoji:
        out["icon_emoji"] = c.icon_emoji
    auth: dict[str, Any] = {"type": "Bearer"}
    secrets.put(auth, "credentials", c.token, where=f"{receiver}-slack-{i}-token",
                what=f"the Slack bot token (xoxb-...) of receiver {receiver}")
    out["http_config"] = {"authorization": auth}
    return out


def _pagerduty(c: Any, receiver: str, i: int, secrets: _Secrets) -> dict[str, Any]:
    out: dict[str, Any] = {"send_resolved": c.send_resolved}
    secrets.put(out, "routing_key", c.routing_key, where=f"{receiver}-pagerduty-{i}-routing-key",
                what=f"the PagerDuty Events API v2 routing key of receiver {receiver}")
    out["url"] = c.url.rstrip("/") + "/v2/enqueue"
    out["client"] = c.source
    out["description"] = _tmpl("pagerduty_description")
    # The alert's own severity label when set, else the configured one (as our notifier does).
    out["severity"] = ('{{ if .CommonLabels.severity }}{{ .CommonLabels.severity | toLower }}'
                       '{{ else }}%s{{ end }}' % c.severity)
    return out


def _webhook(c: Any, receiver: str, i: int, secrets: _Secrets, warnings: list[str]) -> dict[str, Any]:
    if secrets.inline:
        url = c.url.get_secret_value()
    else:
        url = WEBHOOK_PLACEHOLDER.format(receiver=receiver)
        warnings.append(f"receiver {receiver}: webhook_configs[{i}].url is a placeholder ({url}); "
                        f"replace it (Alertmanager 0.25 has no url_file)")
    if c.hmac_secret is not None:
        warnings.append(f"receiver {receiver}: webhook_configs[{i}] is HMAC-signed here; Alertmanager "
                        f"does not sign webhooks, so the exported one is unsigned")
    out: dict[str, Any] = {"send_resolved": c.send_resolved, "url": url}
    if c.max_alerts:
        out["max_alerts"] = c.max_alerts
    return out


def _email(c: Any, receiver: str, i: int, secrets: _Secrets) -> dict[str, Any]:
    out: dict[str, Any] = {
        "send_resolved": c.send_resolved,
        "to": c.to,
        "from": c.from_,
        "smarthost": c.smarthost,
        "hello": c.hello,
        "require_tls": c.require_tls,
    }
    if c.auth_username:
        out["auth_username"] = c.auth_username
    secrets.put(out, "auth_password", c.auth_password, where=f"{receiver}-email-{i}-password",
                what=f"the SMTP password of receiver {receiver}")
    out["headers"] = {"Subject": _tmpl("email_subject")}
    out["html"] = _tmpl("email_html")
    return out


def _time_interval(ti: Any) -> dict[str, Any]:
    periods = []
    for p in ti.time_intervals:
        d: dict[str, Any] = {}
        if p.times:
            d["times"] = [{"start_time": t.start_time, "end_time": t.end_time} for t in p.times]
        for key in ("weekdays", "days_of_month", "months", "years"):
            values = getattr(p, key)
            if values:
                d[key] = [str(v) for v in values]
        d["location"] = p.location
        periods.append(d)
    return {"name": ti.name, "time_intervals": periods}


def alertmanager_config(config: Config, *, inline_secrets: bool = False,
                        secrets_dir: str = DEFAULT_SECRETS_DIR,
                        templates: list[str] | None = None) -> Export:
    """Build an Alertmanager configuration equivalent to ``config``'s routing and receivers.

    :param config: a validated config.
    :param inline_secrets: write secret values instead of ``*_file`` references.
    :param secrets_dir: directory of the ``*_file`` references.
    :param templates: ``templates:`` globs (default :data:`DEFAULT_TEMPLATES`).
    :return: the config data, the secret files it names and the warnings.
    """
    warnings: list[str] = []
    secrets = _Secrets(inline_secrets, secrets_dir)
    alerting = config.alerting
    data: dict[str, Any] = {"global": {"resolve_timeout": format_duration(alerting.resolve_timeout)}}
    data["templates"] = list(templates if templates is not None else [DEFAULT_TEMPLATES])

    mutes = _window_mutes(config, warnings)
    if alerting.route is not None:
        route = _route(alerting.route, mutes, root=True)
        if mutes:
            # Alerts matching no child fall back to the root's receiver; route them through a
            # catch-all child so the maintenance window mutes them too.
            route.setdefault("routes", []).append({"receiver": alerting.route.receiver,
                                                   "mute_time_intervals": list(mutes)})
    elif config.receivers:
        route = {"receiver": config.receivers[0].name}
        warnings.append(f"no alerting.route: every alert goes to the first receiver, {config.receivers[0].name}")
    else:
        route = {"receiver": "null"}
    data["route"] = route

    if alerting.inhibit_rules:
        data["inhibit_rules"] = []
        for rule in alerting.inhibit_rules:
            d: dict[str, Any] = {}
            src, tgt = _matcher_strings(rule.parsed_source()), _matcher_strings(rule.parsed_target())
            if src:
                d["source_matchers"] = src
            if tgt:
                d["target_matchers"] = tgt
            if rule.equal:
                d["equal"] = list(rule.equal)
            data["inhibit_rules"].append(d)

    receivers = []
    for r in config.receivers:
        rd: dict[str, Any] = {"name": r.name}
        if r.slack_configs:
            rd["slack_configs"] = [_slack(c, r.name, i, secrets) for i, c in enumerate(r.slack_configs)]
        if r.pagerduty_configs:
            rd["pagerduty_configs"] = [_pagerduty(c, r.name, i, secrets) for i, c in enumerate(r.pagerduty_configs)]
        if r.webhook_configs:
            rd["webhook_configs"] = [_webhook(c, r.name, i, secrets, warnings)
                                     for i, c in enumerate(r.webhook_configs)]
        if r.email_configs:
            rd["email_configs"] = [_email(c, r.name, i, secrets) for i, c in enumerate(r.email_configs)]
        receivers.append(rd)
    if route["receiver"] == "null" and not any(r["name"] == "null" for r in receivers):
        receivers.append({"name": "null"})
    data["receivers"] = receivers

    if alerting.time_intervals:
        data["time_intervals"] = [_time_interval(ti) for ti in alerting.time_intervals]
    return Export(data, secrets.files, warnings)
