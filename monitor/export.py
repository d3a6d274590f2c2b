"""Export ``monitor.yaml`` as configuration for a real Alertmanager and a real Prometheus.

For teams that already run Prometheus and Alertmanager beside this daemon
(``codebook-monitor export alertmanager|prometheus``):

- :func:`alertmanager_config` turns the ``alerting:`` section (route tree, inhibition rules,
  time intervals, maintenance windows) and ``receivers:`` into an ``alertmanager.yml``
  (Alertmanager ``config/config.go`` and ``config/notifiers.go`` shapes, accepted by
  ``amtool check-config`` of Alertmanager 0.25 and later).
- :func:`prometheus_config` writes a ``prometheus.yml`` that scrapes this daemon's
  ``/metrics`` and the backend's scrape targets, loads the rule files, and sends alerts to this
  daemon's Alertmanager-compatible intake (``POST /api/v2/alerts``), accepted by
  ``promtool check config``.

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

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from model.matchers import format_matchers
from monitor.config.routing import RouteConfig
from monitor.config.model import Config
from model.matchers import Matcher
from model.duration import format_duration

__all__ = ["Export", "alertmanager_config", "prometheus_config", "render", "add_parser", "DEFAULT_SECRETS_DIR",
           "DEFAULT_TEMPLATES", "WEBHOOK_PLACEHOLDER", "TEMPLATE_REFS"]

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
#: The daemon writes ``ALERTS``/``ALERTS_FOR_STATE`` for its own rule evaluation; a Prometheus
#: evaluating the same rule files writes its own, so the scraped copies are dropped.
DAEMON_DROP = "ALERTS|ALERTS_FOR_STATE"


@dataclass
class Export:
    """A generated configuration and what the reader must know about it.

    :ivar data: the configuration as plain data (dump with :func:`render`).
    :ivar secret_files: ``*_file`` paths the config refers to, each with what to put there.
    :ivar warnings: what could not be expressed exactly.
    """

    data: dict[str, Any]
    secret_files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _tmpl(name: str) -> str:
    return '{{ template "%s" . }}' % TEMPLATE_REFS[name]


def _matcher_strings(matchers: list[Matcher]) -> list[str]:
    return [format_matchers([m])[1:-1] for m in matchers]


def _dur(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


# --- Alertmanager ------------------------------------------------------------------------------


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


# --- Prometheus --------------------------------------------------------------------------------


def _host_port(url: str) -> tuple[str, str, str]:
    """Split an http(s) URL into ``(scheme, host:port, path)``; the port defaults per scheme."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return parts.scheme or "http", f"{host}:{port}", parts.path or ""


def prometheus_config(config: Config, *, relative_to: str | os.PathLike[str] | None = None,
                      job_name: str = "codebook-monitor") -> Export:
    """Build a Prometheus configuration that runs beside this daemon.

    Scrapes the daemon's ``/metrics`` (at ``server.external_url``) and every ``scrape:`` target
    with its own interval, timeout, labels and ``honor_labels``; loads ``rules.files``; sends
    alerts to the daemon's Alertmanager v2 intake. ``global.evaluation_interval`` is
    ``rules.evaluation_interval``; ``global.scrape_interval`` the shortest scrape interval
    (15 s without targets).

    :param config: a validated config.
    :param relative_to: write rule-file paths relative to this directory (where the Prometheus
        config will live); absolute paths when ``None``.
    :param job_name: the job name of the daemon's own scrape.
    :return: the config data (no secrets) and warnings.
    """
    warnings: list[str] = []
    scheme, address, prefix = _host_port(config.server.external_url)
    intervals = [t.interval for t in config.scrape]
    scrape_interval = min(intervals) if intervals else 15.0
    glob: dict[str, Any] = {
        "scrape_interval": format_duration(scrape_interval),
        # Prometheus rejects a timeout longer than the interval (its default timeout is 10 s).
        "scrape_timeout": format_duration(min(10.0, scrape_interval)),
        "evaluation_interval": format_duration(config.rules.evaluation_interval),
    }
    if config.rules.external_labels:
        glob["external_labels"] = dict(config.rules.external_labels)

    rule_files = []
    for p in config.resolved_rule_files():
        path = Path(p).absolute()
        rule_files.append(os.path.relpath(path, Path(relative_to).absolute()) if relative_to is not None
                          else str(path))

    daemon_job: dict[str, Any] = {
        "job_name": job_name,
        "scheme": scheme,
        "metrics_path": prefix.rstrip("/") + "/metrics",
        "static_configs": [{"targets": [address]}],
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": DAEMON_DROP, "action": "drop"},
        ],
    }
    jobs = [daemon_job]
    for t in config.scrape:
        t_scheme, t_address, t_path = _host_port(t.url)
        job: dict[str, Any] = {
            "job_name": t.name,
            "scheme": t_scheme,
            "metrics_path": t_path or "/metrics",
            "scrape_interval": format_duration(t.interval),
            "scrape_timeout": format_duration(t.timeout),
        }
        query = urlsplit(t.url).query
        if query:
            job["params"] = parse_qs(query)
        if t.honor_labels:
            job["honor_labels"] = True
        static: dict[str, Any] = {"targets": [t_address]}
        if t.labels:
            static["labels"] = dict(t.labels)
        job["static_configs"] = [static]
        jobs.append(job)

    data: dict[str, Any] = {
        "global": glob,
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{
            "api_version": "v2",
            "scheme": scheme,
            **({"path_prefix": prefix} if prefix.strip("/") else {}),
            "static_configs": [{"targets": [address]}],
        }]},
        "scrape_configs": jobs,
    }
    return Export(data, {}, warnings)


# --- output ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that keeps key order and indents list items under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: D102
        super().increase_indent(flow, False)


def render(export: Export, *, title: str, source: str | None = None) -> str:
    """Return ``export`` as a YAML document with a header comment.

    The header names the generator and the source, lists the secret files to create and every
    warning, so the file explains itself where it is deployed.

    :param title: first header line, e.g. ``"Alertmanager configuration"``.
    :param source: the monitor.yaml it was generated from.
    """
    lines = [f"# {title}, generated by `codebook-monitor export`"
             + (f" from {source}." if source else "."), "# Regenerate instead of editing by hand."]
    if export.secret_files:
        lines.append("# Secret files to create (one value each, no trailing newline needed):")
        lines += [f"#   {path}: {what}" for path, what in export.secret_files.items()]
    if export.warnings:
        lines.append("# Warnings:")
        lines += [f"#   - {w}" for w in export.warnings]
    body = yaml.dump(export.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=120)
    return "\n".join(lines) + "\n" + body


# --- command line ------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add ``export alertmanager`` and ``export prometheus`` to the ``codebook-monitor`` parser.

    :param sub: the top-level ``add_subparsers()`` object of ``monitor.cli``.
    """
    s = sub.add_parser("export", help="write configuration for a real Alertmanager or Prometheus")
    kinds = s.add_subparsers(dest="export_kind", required=True)
    a = kinds.add_parser("alertmanager", help="alertmanager.yml equivalent to the routing and receivers")
    a.add_argument("--config", "-c", default="monitor.yaml")
    a.add_argument("--output", "-o", help="write here instead of standard output")
    a.add_argument("--secrets-dir", default=DEFAULT_SECRETS_DIR,
                   help=f"directory of the *_file secret references (default {DEFAULT_SECRETS_DIR})")
    a.add_argument("--inline-secrets", action="store_true",
                   help="write secret values instead of *_file references (the file is made mode 0600)")
    a.add_argument("--templates", action="append", metavar="GLOB",
                   help=f"template glob(s) for `templates:` (default {DEFAULT_TEMPLATES})")
    a.set_defaults(func=_cmd_alertmanager)
    p = kinds.add_parser("prometheus", help="prometheus.yml that scrapes this daemon and the backend, loads the "
                                            "rules and sends alerts to this daemon")
    p.add_argument("--config", "-c", default="monitor.yaml")
    p.add_argument("--output", "-o", help="write here instead of standard output (rule-file paths become "
                                          "relative to its directory)")
    p.set_defaults(func=_cmd_prometheus)


def _load(path: str) -> Config | None:
    import sys

    from monitor.config.loader import load_config
    from monitor.errors import ConfigErrors

    try:
        return load_config(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return None


def _write(text: str, output: str | None, export: Export, *, private: bool = False) -> int:
    import sys

    for w in export.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if output is None:
        sys.stdout.write(text)
        return 0
    path = Path(output)
    try:
        if private:
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"codebook-monitor: error: {output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if export.secret_files:
        print(f"{output}: create the secret files listed at its top", file=sys.stderr)
    return 0


def _cmd_alertmanager(args: Any) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    export = alertmanager_config(config, inline_secrets=args.inline_secrets, secrets_dir=args.secrets_dir,
                                 templates=args.templates)
    text = render(export, title="Alertmanager configuration", source=args.config)
    return _write(text, args.output, export, private=args.inline_secrets)


def _cmd_prometheus(args: Any) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    relative_to = Path(args.output).absolute().parent if args.output else None
    export = prometheus_config(config, relative_to=relative_to)
    text = render(export, title="Prometheus configuration", source=args.config)
    return _write(text, args.output, export)
