"""``GET /api/openapi.json``: an OpenAPI 3.0 description of every endpoint, written by hand.

Paths, methods, parameters and request bodies are declared here (:data:`OPERATIONS`); the
security requirement (bearer token and scope) and the body limit of each operation
(``x-body-limit``, bytes) come from :data:`monitor.api.access.ROUTE_ACCESS`, so the description
cannot disagree with what the daemon enforces. Only the routes the app mounts are listed (a
follower-only test app without process routes lists none of them). A test checks that every
mounted route is described and that schemathesis accepts the document; the fuzzer reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor import __version__
from monitor.api.access import ROUTE_ACCESS, Access
from monitor.api.openapi_oncall import ONCALL_OPERATIONS

Schema = dict[str, Any]

_STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_TIME: Schema = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "Error": {"type": "object", "required": ["status", "error"],
              "properties": {"status": {"type": "string", "enum": ["error"]}, "error": {"type": "string"}}},
    "PostableAlert": {
        "type": "object", "required": ["labels"],
        "properties": {"labels": {**_STR_MAP, "minProperties": 1}, "annotations": _STR_MAP,
                       "startsAt": _TIME, "endsAt": _TIME, "generatorURL": {"type": "string"}},
        "example": {"labels": {"alertname": "DatabaseDown", "severity": "critical", "service": "db"},
                    "annotations": {"summary": "database down"}, "startsAt": "2026-11-30T09:58:00Z"},
    },
    "PostableAlerts": {"type": "array", "items": {"$ref": "#/components/schemas/PostableAlert"}},
    "WebhookAlert": {
        "type": "object", "required": ["labels"],
        "properties": {"status": {"type": "string", "enum": ["firing", "resolved"]},
                       "labels": {**_STR_MAP, "minProperties": 1}, "annotations": _STR_MAP,
                       "startsAt": _TIME, "endsAt": _TIME, "generatorURL": {"type": "string"},
                       "fingerprint": {"type": "string"}},
    },
    "WebhookMessage": {
        "type": "object", "required": ["version", "alerts"],
        "properties": {"version": {"type": "string", "enum": ["4"]}, "groupKey": {"type": "string"},
                       "truncatedAlerts": {"type": "integer"},
                       "status": {"type": "string", "enum": ["firing", "resolved"]},
                       "receiver": {"type": "string"}, "groupLabels": _STR_MAP, "commonLabels": _STR_MAP,
                       "commonAnnotations": _STR_MAP, "externalURL": {"type": "string"},
                       "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookAlert"}}},
        "example": {"version": "4", "status": "firing", "receiver": "codebook", "groupKey": "{}:{}",
                    "groupLabels": {}, "commonLabels": {}, "externalURL": "http://alertmanager:9093",
                    "alerts": [{"status": "firing", "labels": {"alertname": "DatabaseDown", "severity": "critical"},
                                "annotations": {"summary": "database down"},
                                "startsAt": "2026-11-30T09:58:00Z"}]},
    },
    "Matcher": {
        "type": "object", "required": ["name", "value", "isRegex"],
        "properties": {"name": {"type": "string"}, "value": {"type": "string"}, "isRegex": {"type": "boolean"},
                       "isEqual": {"type": "boolean", "default": True}},
    },
    "PostableSilence": {
        "type": "object", "required": ["matchers", "endsAt"],
        "properties": {"id": {"type": "string"}, "matchers": {"type": "array", "minItems": 1,
                                                              "items": {"$ref": "#/components/schemas/Matcher"}},
                       "startsAt": _TIME, "endsAt": _TIME, "createdBy": {"type": "string"},
                       "comment": {"type": "string"}},
        "example": {"matchers": [{"name": "service", "value": "api", "isRegex": False, "isEqual": True}],
                    "startsAt": "2026-11-30T10:00:00Z", "endsAt": "2026-11-30T12:00:00Z",
                    "createdBy": "alice", "comment": "deploy"},
    },
    "Comment": {"type": "object", "properties": {"comment": {"type": "string"}}},
    "SlackAction": {
        "type": "object", "required": ["payload"],
        "description": "Slack's interactivity request: `payload` is the JSON of a `block_actions` event.",
        "properties": {"payload": {"type": "string"}},
    },
    "ConsoleForm": {"type": "object", "required": ["csrf"],
                    "description": "a console form: the session's CSRF token and the form's fields",
                    "properties": {"csrf": {"type": "string"}, "next": {"type": "string"},
                                   "comment": {"type": "string"}, "matchers": {"type": "string"},
                                   "duration": {"type": "string"}}},
    "ConsoleLogin": {"type": "object", "required": ["csrf"],
                     "properties": {"csrf": {"type": "string"}, "username": {"type": "string"},
                                    "password": {"type": "string"}, "token": {"type": "string"},
                                    "next": {"type": "string"}}},
    "QueryForm": {"type": "object", "required": ["query"],
                  "properties": {"query": {"type": "string"}, "time": {"type": "string"},
                                 "timeout": {"type": "string"}}},
    "SeriesForm": {"type": "object",
                   "properties": {"match[]": {"type": "array", "items": {"type": "string"}},
                                  "start": {"type": "string"}, "end": {"type": "string"},
                                  "limit": {"type": "string"}}},
    "RangeQueryForm": {"type": "object", "required": ["query", "start", "end", "step"],
                       "properties": {"query": {"type": "string"}, "start": {"type": "string"},
                                      "end": {"type": "string"}, "step": {"type": "string"}}},
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, description: str, required: bool = False, **schema: Any) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "string", **schema}}


def _header(name: str, description: str) -> Schema:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": "string"}}


def _json(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _form(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


_FP = _path("fingerprint", "the alert's fingerprint (16 hex digits)")
_SILENCE_ID = _path("id", "the silence's id")
_QUERY = [_query("query", "PromQL expression", required=True),
          _query("time", "evaluation time: RFC 3339 or Unix seconds (default now)"),
          _query("timeout", "evaluation timeout (capped by rules.query_timeout)")]
_RANGE = [_query("query", "PromQL expression", required=True),
          _query("start", "RFC 3339 or Unix seconds", required=True),
          _query("end", "RFC 3339 or Unix seconds", required=True),
          _query("step", "seconds or a duration (15s)", required=True)]
_SERIES = [{"name": "match[]", "in": "query", "required": False, "description": "series selector (repeatable)",
            "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True},
           _query("start", "RFC 3339 or Unix seconds"), _query("end", "RFC 3339 or Unix seconds"),
           _query("limit", "most entries returned (0: all)")]


def _bool(name: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": f"include {name} alerts (default true)",
            "schema": {"type": "boolean"}}


_AM_FILTERS = [{"name": "filter", "in": "query", "required": False, "style": "form", "explode": True,
                "description": 'matchers such as alertname="X" (repeatable)',
                "schema": {"type": "array", "items": {"type": "string"}}},
               _query("receiver", "receiver name regex"),
               _bool("active"), _bool("silenced"), _bool("inhibited")]

#: ``(method, path) -> operation`` without security and responses (added from the access table).
OPERATIONS: dict[tuple[str, str], Schema] = {
    ("GET", "/-/healthy"): {"summary": "Liveness: OK while the server answers", "tags": ["process"]},
    ("GET", "/-/ready"): {"summary": "Readiness: OK while the server answers", "tags": ["process"]},
    ("GET", "/health"): {"summary": "Health document; 200 healthy, 503 degraded", "tags": ["process"]},
    ("GET", "/metrics"): {"summary": "Every metric in the Prometheus text format", "tags": ["process"]},
    ("POST", "/-/reload"): {"summary": "Reload the configuration and rules, all-or-nothing", "tags": ["process"]},
    ("PUT", "/-/reload"): {"summary": "Reload the configuration and rules, all-or-nothing", "tags": ["process"]},
    ("GET", "/api/openapi.json"): {"summary": "This description", "tags": ["process"]},
    ("GET", "/api/v1/probes"): {"summary": "Every probe with its last result and history", "tags": ["probes"]},
    ("GET", "/api/v1/alerts"): {"summary": "Pending and firing rule alerts (Prometheus shape)", "tags": ["rules"]},
    ("GET", "/api/v1/rules"): {"summary": "Rule groups (Prometheus shape)", "tags": ["rules"],
                               "parameters": [_query("type", "alert or record", enum=["alert", "record"])]},
    ("GET", "/api/v1/query"): {"summary": "Instant PromQL query", "tags": ["query"], "parameters": _QUERY},
    ("GET", "/api/v1/slos"): {"summary": "Every SLO now: objective, SLI, budget left, burn rate, tiers firing",
                              "tags": ["query"]},
    ("GET", "/api/v1/slos/{name}/report"): {
        "summary": "One SLO's compliance over a calendar month", "tags": ["query"],
        "parameters": [_path("name", "the SLO id (service-name)"),
                       _query("month", "YYYY-MM, UTC (default: this month, to date)")]},
    ("POST", "/api/v1/query"): {"summary": "Instant PromQL query (form)", "tags": ["query"],
                                "requestBody": _form(_ref("QueryForm"))},
    ("GET", "/api/v1/query_range"): {"summary": "Range PromQL query", "tags": ["query"], "parameters": _RANGE},
    ("POST", "/api/v1/query_range"): {"summary": "Range PromQL query (form)", "tags": ["query"],
                                      "requestBody": _form(_ref("RangeQueryForm"))},
    ("GET", "/api/v1/labels"): {"summary": "Label names", "tags": ["query"], "parameters": _SERIES},
    ("POST", "/api/v1/labels"): {"summary": "Label names (form)", "tags": ["query"],
                                 "requestBody": _form(_ref("SeriesForm"), required=False)},
    ("GET", "/api/v1/label/{name}/values"): {
        "summary": "Values of one label", "tags": ["query"],
        "parameters": [_path("name", "the label name (U__ escaping for UTF-8)"), *_SERIES]},
    ("GET", "/api/v1/series"): {"summary": "Series matching match[]", "tags": ["query"],
                                "parameters": [{**_SERIES[0], "required": True}, *_SERIES[1:]]},
    ("POST", "/api/v1/series"): {"summary": "Series matching match[] (form)", "tags": ["query"],
                                 "requestBody": _form(_ref("SeriesForm"))},
    ("GET", "/api/v1/metadata"): {
        "summary": "Metric metadata (type, help, unit)", "tags": ["query"],
        "parameters": [_query("metric", "one metric family"), _query("limit", "families at most"),
                       _query("limit_per_metric", "entries per family at most")]},
    ("GET", "/api/v1/targets/metadata"): {
        "summary": "Metric metadata per scrape target", "tags": ["query"],
        "parameters": [_query("match_target", 'a label selector over the target labels, e.g. {job="api"}'),
                       _query("metric", "one metric family"), _query("limit", "entries at most")]},
    ("GET", "/api/v1/query_exemplars"): {"summary": "Exemplars (none are stored: always [])", "tags": ["query"],
                                         "parameters": _RANGE[:3]},
    ("POST", "/api/v1/query_exemplars"): {"summary": "Exemplars (form; always [])", "tags": ["query"],
                                          "requestBody": _form(_ref("QueryForm"))},
    ("GET", "/api/v1/format_query"): {"summary": "Pretty-print a PromQL expression", "tags": ["query"],
                                      "parameters": _QUERY[:1]},
    ("POST", "/api/v1/format_query"): {"summary": "Pretty-print a PromQL expression (form)", "tags": ["query"],
                                       "requestBody": _form(_ref("QueryForm"))},
    ("GET", "/api/v1/status/buildinfo"): {"summary": "Version (Prometheus buildinfo shape)", "tags": ["status"]},
    ("GET", "/api/v1/status/runtimeinfo"): {"summary": "Start time, reload status, retention", "tags": ["status"]},
    ("GET", "/api/v1/status/config"): {"summary": "The running configuration as YAML, secrets masked",
                                       "tags": ["status"]},
    ("GET", "/api/v1/status/flags"): {"summary": "The command line's flags", "tags": ["status"]},
    ("GET", "/api/v1/targets"): {
        "summary": "Scrape targets and their health", "tags": ["status"],
        "parameters": [_query("state", "active, dropped or any", enum=["active", "dropped", "any"]),
                       _query("scrapePool", "one scrape job")]},
    ("POST", "/api/v1/alerts/{fingerprint}/ack"): {
        "summary": "Acknowledge: stop the escalation", "tags": ["alerts"], "parameters": [_FP],
        "requestBody": _json(_ref("Comment"), required=False)},
    ("POST", "/api/v1/alerts/{fingerprint}/unack"): {
        "summary": "Unacknowledge: restart the escalation", "tags": ["alerts"], "parameters": [_FP]},
    ("POST", "/api/v1/alerts/{fingerprint}/resolve"): {
        "summary": "Resolve by hand", "tags": ["alerts"], "parameters": [_FP],
        "requestBody": _json(_ref("Comment"), required=False)},
    ("POST", "/api/v1/alerts/{fingerprint}/escalate"): {
        "summary": "Escalate now: notify the next level of the chain", "tags": ["alerts"], "parameters": [_FP],
        "requestBody": _json(_ref("Comment"), required=False)},
    ("POST", "/api/v1/alerts/{fingerprint}/note"): {
        "summary": "Add a note to the alert's timeline", "tags": ["alerts"], "parameters": [_FP],
        "requestBody": _json(_ref("Comment"))},
    ("GET", "/api/v1/alerts/{fingerprint}/timeline"): {
        "summary": "The alert's escalation timeline", "tags": ["alerts"], "parameters": [_FP]},
    ("GET", "/api/v2/alerts"): {"summary": "Alerts (Alertmanager gettableAlerts)", "tags": ["alerts"],
                                "parameters": [*_AM_FILTERS, _bool("unprocessed")]},
    ("GET", "/api/v2/alerts/groups"): {"summary": "Alerts grouped as the routing tree groups them (alertGroups)",
                                       "tags": ["alerts"], "parameters": _AM_FILTERS},
    ("GET", "/api/v2/receivers"): {"summary": "Configured receivers", "tags": ["alerts"]},
    ("GET", "/api/v2/status"): {"summary": "Alertmanager status: cluster, config (secrets masked), uptime, version",
                                "tags": ["alerts"]},
    ("POST", "/api/v2/alerts"): {"summary": "Alert intake (Alertmanager v2 postableAlerts)", "tags": ["intake"],
                                 "requestBody": _json(_ref("PostableAlerts"))},
    ("POST", "/api/v1/intake/alertmanager"): {"summary": "Alertmanager webhook (version 4)", "tags": ["intake"],
                                              "requestBody": _json(_ref("WebhookMessage"))},
    ("GET", "/api/v2/silences"): {"summary": "Every silence (gettableSilences)", "tags": ["silences"],
                                  "parameters": _AM_FILTERS[:1]},
    ("POST", "/api/v2/silences"): {"summary": "Create or replace a silence", "tags": ["silences"],
                                   "requestBody": _json(_ref("PostableSilence"))},
    ("GET", "/api/v2/silence/{id}"): {"summary": "One silence", "tags": ["silences"], "parameters": [_SILENCE_ID]},
    ("DELETE", "/api/v2/silence/{id}"): {"summary": "Expire a silence now", "tags": ["silences"],
                                         "parameters": [_SILENCE_ID]},
    ("POST", "/api/v1/slack/actions"): {
        "summary": "Slack interactivity (Acknowledge / Resolve buttons), signed by Slack", "tags": ["slack"],
        "parameters": [_header("X-Slack-Request-Timestamp", "whole Unix seconds"),
                       _header("X-Slack-Signature", "v0=<hex HMAC-SHA256>")],
        "requestBody": _form(_ref("SlackAction"))},
    ("GET", "/ack/{token}"): {"summary": "Signed link: confirmation page (never acts)", "tags": ["links"],
                              "parameters": [_path("token", "the signed token of the link")]},
    ("POST", "/ack/{token}"): {"summary": "Signed link: act", "tags": ["links"],
                               "parameters": [_path("token", "the signed token of the link")]},
    **ONCALL_OPERATIONS,
    # the web console (HTML pages and forms; monitor.api.console)
    ("GET", "/ui/"): {"summary": "Console: overview", "tags": ["console"]},
    ("GET", "/ui/login"): {"summary": "Console: login form", "tags": ["console"],
                           "parameters": [_query("next", "console page to go to after login")]},
    ("POST", "/ui/login"): {"summary": "Console: log in with a password or an API token", "tags": ["console"],
                            "requestBody": _form(_ref("ConsoleLogin"))},
    ("POST", "/ui/logout"): {"summary": "Console: log out", "tags": ["console"],
                             "requestBody": _form(_ref("ConsoleForm"))},
    ("GET", "/ui/alerts"): {"summary": "Console: alerts", "tags": ["console"]},
    ("GET", "/ui/alerts/{fingerprint}"): {"summary": "Console: one alert and its timeline", "tags": ["console"],
                                          "parameters": [_FP]},
    ("POST", "/ui/alerts/{fingerprint}/{action}"): {
        "summary": "Console: acknowledge, unacknowledge or resolve", "tags": ["console"],
        "parameters": [_FP, _path("action", "ack, unack or resolve")], "requestBody": _form(_ref("ConsoleForm"))},
    ("GET", "/ui/silences"): {"summary": "Console: silences", "tags": ["console"],
                              "parameters": [_query("matchers", "prefills the new silence's matchers")]},
    ("POST", "/ui/silences"): {"summary": "Console: create a silence", "tags": ["console"],
                               "requestBody": _form(_ref("ConsoleForm"))},
    ("POST", "/ui/silences/{id}/expire"): {"summary": "Console: expire a silence", "tags": ["console"],
                                           "parameters": [_SILENCE_ID], "requestBody": _form(_ref("ConsoleForm"))},
    ("GET", "/ui/rules"): {"summary": "Console: rule groups", "tags": ["console"]},
    ("GET", "/ui/probes"): {"summary": "Console: probes", "tags": ["console"]},
    ("GET", "/ui/query"): {"summary": "Console: PromQL graph", "tags": ["console"],
                           "parameters": [_query("expr", "PromQL expression"), _query("range", "5m to 7d")]},
    ("GET", "/ui/static/{name}"): {"summary": "Console: CSS, JavaScript, icon", "tags": ["console"],
                                   "parameters": [_path("name", "file name")]},
    ("GET", "/ui/oncall"): {"summary": "Console: on-call schedules, calendar, overrides, feeds", "tags": ["console"],
                            "parameters": [_query("tz", "IANA time zone of the times shown (kept in a cookie)")]},
    ("POST", "/ui/oncall/overrides"): {"summary": "Console: add an on-call override", "tags": ["console"],
                                       "requestBody": _form(_ref("ConsoleForm"))},
    ("POST", "/ui/oncall/overrides/{id}/remove"): {
        "summary": "Console: remove an on-call override", "tags": ["console"],
        "parameters": [_path("id", "override id")], "requestBody": _form(_ref("ConsoleForm"))},
    ("GET", "/ui/incidents"): {"summary": "Console: incidents, MTTA/MTTR against the SLA", "tags": ["console"],
                               "parameters": [_query("days", "window of the MTTA/MTTR figures (1..366)")]},
    ("GET", "/ui/incidents/{id}"): {"summary": "Console: one incident and its timeline", "tags": ["console"],
                                    "parameters": [_path("id", "incident id")]},
    ("POST", "/ui/incidents/{id}/notes"): {"summary": "Console: add a note to an incident", "tags": ["console"],
                                           "parameters": [_path("id", "incident id")],
                                           "requestBody": _form(_ref("ConsoleForm"))},
    ("POST", "/ui/incidents/{id}/updates"): {"summary": "Console: post a public update (shown on /status)",
                                             "tags": ["console"], "parameters": [_path("id", "incident id")],
                                             "requestBody": _form(_ref("ConsoleForm"))},
}


def _responses(access: Access, op: Schema) -> Schema:
    error = {"application/json": {"schema": _ref("Error")}}
    out: Schema = {"200": {"description": "success"}}
    if op.get("parameters") or op.get("requestBody"):
        out["400"] = {"description": "bad input, with the reason", "content": error}
    if access.scope is not None:
        out["401"] = {"description": "missing or invalid bearer token", "content": error}
        out["403"] = {"description": f"the token lacks the `{access.scope}` scope", "content": error}
    if access.limit:
        out["413"] = {"description": f"request body over {access.limit} bytes", "content": error}
    if access.leader_only:
        out["503"] = {"description": "alerting is not running (a follower)", "content": error}
    return out


def _operation(method: str, path: str) -> Schema:
    op = dict(OPERATIONS[(method, path)])
    access = ROUTE_ACCESS[(method, path)]
    op["operationId"] = f"{method.lower()}{path.replace('/', '_').replace('{', '').replace('}', '')}"
    op["responses"] = _responses(access, op)
    op["x-body-limit"] = access.limit
    # OpenAPI 3.0 lists no scopes for an http scheme: the scope a token needs is x-scope.
    if access.scope is None:
        op["security"] = []
    elif access.toggle == "read_requires_token":
        op["security"] = [{}, {"bearer": []}]  # open unless api.read_requires_token
    elif access.toggle == "intake_open":
        op["security"] = [{"bearer": []}, {}]  # open with api.intake_open
    else:
        op["security"] = [{"bearer": []}]
    if access.scope is not None:
        op["x-scope"] = access.scope
    op["description"] = f"Scope: {access.describe().replace('`', '')}. Body limit: {access.limit} bytes."
    return op


def document(mounted: Iterable[tuple[str, str]] | None = None) -> Schema:
    """Return the OpenAPI 3.0 document.

    :param mounted: the ``(method, path)`` pairs to describe (default: every endpoint).
    :raises KeyError: a mounted endpoint that :data:`OPERATIONS` does not describe.
    """
    pairs = sorted(OPERATIONS) if mounted is None else sorted(set(mounted))
    paths: dict[str, Schema] = {}
    for method, path in pairs:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path)
    return {
        "openapi": "3.0.3",
        "info": {"title": "codebook-monitor", "version": __version__,
                 "description": "The daemon's HTTP API. Scopes: read, ack, admin, intake (api.tokens[].scopes)."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token of api.tokens; scopes: read, ack, admin, "
                                                          "intake"}},
        },
    }


def mounted_endpoints(routes: Iterable[Any]) -> list[tuple[str, str]]:
    """Return the ``(method, path)`` pairs of ``routes`` (``HEAD`` left out)."""
    return [(m, r.path) for r in routes if isinstance(r, Route) for m in (r.methods or {"GET"}) if m != "HEAD"]


async def openapi_json(request: Request) -> JSONResponse:
    """``GET /api/openapi.json``."""
    return JSONResponse(document(mounted_endpoints(request.app.routes)))


ROUTES = [Route("/api/openapi.json", openapi_json, methods=["GET"])]
