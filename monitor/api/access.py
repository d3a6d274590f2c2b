"""Which scope and which body limit each endpoint has, in one table, and the guard applying them.

:data:`ROUTE_ACCESS` names every ``(method, path)`` the API serves; :func:`guard_routes` (called by
:func:`~monitor.api.app.create_app`) wraps each route's handler so that, in this order:

1. an alerting route on a follower answers 503 (before any token check: a load balancer sees a
   replica that cannot serve, not a credentials problem);
2. a route needing a token checks it (401 missing/invalid, 403 lacking the scope) — before the
   body is read, so an anonymous client cannot make the daemon read anything;
3. a declared ``Content-Length`` over the route's limit is answered 413 without reading, and the
   handler gets a stream that stops at the limit (413 for a chunked body that passes it);
4. an exception the handler did not expect is logged with its traceback and answered 500 (the
   process keeps serving); a state-store failure is 503.

Scopes (``api.tokens[].scopes``): ``read`` — views that need a token (the timeline always; every
view when ``api.read_requires_token`` is true); ``ack`` — acknowledge, unacknowledge, resolve,
escalate now, add notes, create and expire silences, create and remove on-call overrides;
``admin`` — reload; ``intake`` — alerts from Prometheus or Alertmanager (unless
``api.intake_open``). The README's "HTTP API" table is this table; a test keeps the two equal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.api.auth import authorize, credentials_of, identity_of
from monitor.api.bodies import (
    MAX_BODY_BYTES, ApiError, BodyTooLarge, bounded_receive, check_declared_length, client_host, error_response,
)
from monitor.api.deps import ApiSettings, deps_of
from monitor.errors import StoreError

log = logging.getLogger("monitor.api")

KiB = 1024
MiB = 1024 * KiB

#: Body limits (bytes) by kind of endpoint.
INTAKE_LIMIT = MAX_BODY_BYTES  # 4 MiB: Prometheus sends 64 alerts a batch by default
SLACK_LIMIT = 64 * KiB  # a Block Kit action payload is a few KiB
SILENCE_LIMIT = 64 * KiB
COMMENT_LIMIT = 16 * KiB  # {"comment": "..."} on ack / resolve
QUERY_FORM_LIMIT = 256 * KiB  # Grafana posts PromQL as a form
SUBSCRIBE_LIMIT = 4 * KiB  # email=...: the public form
OVERRIDE_LIMIT = 16 * KiB  # {"schedule", "person", "start", "end", "comment"}
CONSOLE_FORM_LIMIT = 16 * KiB  # the console's forms: a comment, matchers, a CSRF token

Toggle = Literal["", "read_requires_token", "intake_open"]


@dataclass(frozen=True)
class Access:
    """What one endpoint requires.

    :ivar scope: the scope a token needs; ``None``: no token (open, or verified otherwise:
        Slack signature, signed link).
    :ivar limit: the largest request body in bytes; 0: the endpoint takes no body.
    :ivar toggle: ``read_requires_token``: the scope applies only when that setting is true;
        ``intake_open``: no token when that setting is true.
    :ivar leader_only: answered 503 on a follower, before the token check.
    :ivar note: how the endpoint is verified when it needs no token (README).
    """

    scope: str | None = None
    limit: int = 0
    toggle: Toggle = ""
    leader_only: bool = False
    note: str = ""

    def needs_token(self, settings: ApiSettings) -> bool:
        """Whether a request needs a token with :attr:`scope` under ``settings``."""
        if self.scope is None:
            return False
        if self.toggle == "read_requires_token":
            return bool(settings.read_requires_token)
        if self.toggle == "intake_open":
            return not settings.intake_open
        return True

    def describe(self) -> str:
        """Return the README's "scope" cell."""
        if self.scope is None:
            return self.note or "none"
        if self.toggle == "read_requires_token":
            return "none (`read` with `api.read_requires_token`)"
        if self.toggle == "intake_open":
            return "`intake` (none with `api.intake_open`)"
        return f"`{self.scope}`"


OPEN = Access()
VIEW = Access("read", toggle="read_requires_token")
VIEW_FORM = Access("read", QUERY_FORM_LIMIT, toggle="read_requires_token")
ALERTING_VIEW = Access("read", toggle="read_requires_token", leader_only=True)
ACK = Access("ack", COMMENT_LIMIT, leader_only=True)
INTAKE = Access("intake", INTAKE_LIMIT, toggle="intake_open", leader_only=True)
LINK = Access(leader_only=True, note="signed link (the token in the path)")
FEED = Access(note="secret URL (`token`: HMAC under `api.link_key`)")
SUBSCRIBER_LINK = Access(note="signed link (HMAC under `api.link_key` in the path)")
CONSOLE_PAGE = Access(note="console session (login page otherwise)")
CONSOLE_FORM = Access(limit=CONSOLE_FORM_LIMIT, note="console session and CSRF token")
CONSOLE_ACT = Access(limit=CONSOLE_FORM_LIMIT, note="console session (role responder or admin) and CSRF token")

#: Every endpoint: ``(method, path template) -> Access``. ``HEAD`` follows ``GET``.
ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    # the process (monitor.api.management)
    ("GET", "/-/healthy"): OPEN,
    ("GET", "/-/ready"): OPEN,
    ("GET", "/health"): OPEN,
    ("GET", "/metrics"): VIEW,
    ("POST", "/-/reload"): Access("admin"),
    ("PUT", "/-/reload"): Access("admin"),
    ("GET", "/api/openapi.json"): OPEN,
    # probes, rules, queries (monitor.api.probes, .rules, .query)
    ("GET", "/api/v1/probes"): VIEW,
    ("GET", "/api/v1/alerts"): VIEW,
    ("GET", "/api/v1/rules"): VIEW,
    ("GET", "/api/v1/query"): VIEW,
    ("POST", "/api/v1/query"): Access("read", QUERY_FORM_LIMIT, toggle="read_requires_token"),
    ("GET", "/api/v1/query_range"): VIEW,
    ("GET", "/api/v1/slos"): VIEW,
    ("GET", "/api/v1/slos/{name}/report"): VIEW,
    ("POST", "/api/v1/query_range"): Access("read", QUERY_FORM_LIMIT, toggle="read_requires_token"),
    # Prometheus's metadata and status API (monitor.api.catalog, .status)
    ("GET", "/api/v1/labels"): VIEW,
    ("POST", "/api/v1/labels"): VIEW_FORM,
    ("GET", "/api/v1/label/{name}/values"): VIEW,
    ("GET", "/api/v1/series"): VIEW,
    ("POST", "/api/v1/series"): VIEW_FORM,
    ("GET", "/api/v1/metadata"): VIEW,
    ("GET", "/api/v1/targets/metadata"): VIEW,
    ("GET", "/api/v1/query_exemplars"): VIEW,
    ("POST", "/api/v1/query_exemplars"): VIEW_FORM,
    ("GET", "/api/v1/format_query"): VIEW,
    ("POST", "/api/v1/format_query"): VIEW_FORM,
    ("GET", "/api/v1/status/buildinfo"): VIEW,
    ("GET", "/api/v1/status/runtimeinfo"): VIEW,
    # the running configuration (secrets masked) and command line: behind a token, like the timeline
    ("GET", "/api/v1/status/config"): Access("read"),
    ("GET", "/api/v1/status/flags"): VIEW,
    ("GET", "/api/v1/targets"): VIEW,
    # the alert pipeline (monitor.api.alerts, .intake, .silences, .slack, .links)
    ("POST", "/api/v1/alerts/{fingerprint}/ack"): ACK,
    ("POST", "/api/v1/alerts/{fingerprint}/unack"): ACK,
    ("POST", "/api/v1/alerts/{fingerprint}/resolve"): ACK,
    ("POST", "/api/v1/alerts/{fingerprint}/escalate"): ACK,
    ("POST", "/api/v1/alerts/{fingerprint}/note"): ACK,
    # who acknowledged, with their comments, and who was paged: always behind a token
    ("GET", "/api/v1/alerts/{fingerprint}/timeline"): Access("read", leader_only=True),
    ("GET", "/api/v2/alerts"): ALERTING_VIEW,
    ("GET", "/api/v2/alerts/groups"): ALERTING_VIEW,
    ("GET", "/api/v2/receivers"): ALERTING_VIEW,
    # the alerting configuration, secrets masked (amtool config show): behind a token
    ("GET", "/api/v2/status"): Access("read", leader_only=True),
    ("POST", "/api/v2/alerts"): INTAKE,
    ("POST", "/api/v1/intake/alertmanager"): INTAKE,
    ("GET", "/api/v2/silences"): ALERTING_VIEW,
    ("POST", "/api/v2/silences"): Access("ack", SILENCE_LIMIT, leader_only=True),
    ("GET", "/api/v2/silence/{id}"): ALERTING_VIEW,
    ("DELETE", "/api/v2/silence/{id}"): Access("ack", leader_only=True),
    ("POST", "/api/v1/slack/actions"): Access(limit=SLACK_LIMIT, leader_only=True,
                                              note="Slack request signature (`api.slack_signing_secret`)"),
    ("GET", "/ack/{token}"): LINK,
    ("POST", "/ack/{token}"): LINK,
    # on-call schedules, overrides and calendar feeds (monitor.api.oncall, .oncall_feeds)
    ("GET", "/api/v1/oncall/schedules"): VIEW,
    ("GET", "/api/v1/oncall/schedules/{name}/shifts"): VIEW,
    ("GET", "/api/v1/oncall/overrides"): VIEW,
    ("POST", "/api/v1/oncall/overrides"): Access("ack", OVERRIDE_LIMIT),
    ("DELETE", "/api/v1/oncall/overrides/{id}"): Access("ack"),
    # the feeds' secret URLs: always behind a token
    ("GET", "/api/v1/oncall/feeds"): Access("read"),
    ("GET", "/api/v1/oncall/schedules/{name}.ics"): FEED,
    ("GET", "/api/v1/oncall/people/{person}.ics"): FEED,
    # incidents (monitor.api.incidents); one incident's timeline holds internal notes: behind a token
    ("GET", "/api/v1/incidents"): VIEW,
    ("GET", "/api/v1/incidents/stats"): VIEW,
    ("GET", "/api/v1/incidents/{id}"): Access("read"),
    ("POST", "/api/v1/incidents/{id}/notes"): Access("ack", COMMENT_LIMIT),
    ("POST", "/api/v1/incidents/{id}/updates"): Access("ack", COMMENT_LIMIT),
    # the public status page (monitor.api.statuspage): read-only, no login
    ("GET", "/status"): Access(note="none (public)"),
    ("GET", "/status.json"): Access(note="none (public)"),
    ("POST", "/status/subscribe"): Access(limit=SUBSCRIBE_LIMIT, note="none (public; rate-limited per client)"),
    ("GET", "/status/confirm/{id}/{token}"): SUBSCRIBER_LINK,
    ("POST", "/status/confirm/{id}/{token}"): SUBSCRIBER_LINK,
    ("GET", "/status/unsubscribe/{id}/{token}"): SUBSCRIBER_LINK,
    ("POST", "/status/unsubscribe/{id}/{token}"): SUBSCRIBER_LINK,
    # the web console (monitor.api.console): its own sessions and CSRF tokens, roles mapped onto the scopes
    ("GET", "/ui/"): CONSOLE_PAGE,
    ("GET", "/ui/login"): Access(note="none (the login form)"),
    ("POST", "/ui/login"): Access(limit=CONSOLE_FORM_LIMIT, note="CSRF token; then password or API token"),
    ("POST", "/ui/logout"): CONSOLE_FORM,
    ("GET", "/ui/alerts"): CONSOLE_PAGE,
    ("GET", "/ui/alerts/{fingerprint}"): CONSOLE_PAGE,
    ("POST", "/ui/alerts/{fingerprint}/{action}"): CONSOLE_ACT,
    ("GET", "/ui/silences"): CONSOLE_PAGE,
    ("POST", "/ui/silences"): CONSOLE_ACT,
    ("POST", "/ui/silences/{id}/expire"): CONSOLE_ACT,
    ("GET", "/ui/rules"): CONSOLE_PAGE,
    ("GET", "/ui/probes"): CONSOLE_PAGE,
    ("GET", "/ui/query"): CONSOLE_PAGE,
    ("GET", "/ui/static/{name}"): Access(note="none (CSS, JavaScript, icon)"),
    ("GET", "/ui/oncall"): CONSOLE_PAGE,
    ("POST", "/ui/oncall/overrides"): CONSOLE_ACT,
    ("POST", "/ui/oncall/overrides/{id}/remove"): CONSOLE_ACT,
    ("GET", "/ui/incidents"): CONSOLE_PAGE,
    ("GET", "/ui/incidents/{id}"): CONSOLE_PAGE,
    ("POST", "/ui/incidents/{id}/notes"): CONSOLE_ACT,
    ("POST", "/ui/incidents/{id}/updates"): CONSOLE_ACT,
}

Endpoint = Callable[[Request], Awaitable[Response]]


def _guard(endpoint: Endpoint, by_method: dict[str, Access]) -> Endpoint:
    async def guarded(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        access = by_method[method]
        deps = deps_of(request)
        if access.leader_only and deps.alerting is not None and deps.alerting.ports() is None:
            raise ApiError(503, "alerting is not running")
        if access.needs_token(credentials_of(request).settings()):
            assert access.scope is not None
            authorize(request, access.scope)
        check_declared_length(request, access.limit)
        bounded = Request(request.scope, bounded_receive(request.receive, access.limit))
        try:
            response = await endpoint(bounded)
        except (ApiError, HTTPException):
            raise
        except StoreError as exc:
            log.error("API request failed: state store error", extra=_context(request, error=str(exc)))
            return error_response(503, "the state store is unavailable; try again")
        except Exception:  # noqa: BLE001 - the catch-all: log, answer 500, keep serving
            log.exception("API handler failed", extra=_context(request))
            return error_response(500, "internal error (logged)")
        _log_request(bounded, response.status_code)
        return response

    guarded.__name__ = getattr(endpoint, "__name__", "guarded")
    guarded.__doc__ = endpoint.__doc__
    return guarded


def _context(request: Request, **extra: str) -> dict[str, str]:
    identity = identity_of(request)
    return {"method": request.method, "path": request.url.path, "client": client_host(request),
            **({"token": identity.name} if identity else {}), **extra}


def _log_request(request: Request, status: int) -> None:
    """Log who sent a request: INFO for one that may change state, DEBUG for a read."""
    level = logging.DEBUG if request.method in ("GET", "HEAD") else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "API request", extra={**_context(request), "status": status})


def _size(limit: int) -> str:
    if limit == 0:
        return "none"
    if limit % MiB == 0:
        return f"{limit // MiB} MiB"
    return f"{limit // KiB} KiB" if limit % KiB == 0 else f"{limit} bytes"


def readme_table() -> str:
    """Return the README's endpoint table (method and path, scope, body limit), in path order."""
    rows = ["| endpoint | scope | body limit |", "|---|---|---|"]
    for (method, path), access in sorted(ROUTE_ACCESS.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append(f"| `{method} {path}` | {access.describe()} | {_size(access.limit)} |")
    return "\n".join(rows)


def route_methods(route: Route) -> list[str]:
    """Return the methods a route answers, without the ``HEAD`` Starlette adds to ``GET``."""
    return sorted(m for m in (route.methods or {"GET"}) if m != "HEAD")


def guard_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Wrap every route's handler with its :data:`ROUTE_ACCESS` entry.

    :raises RuntimeError: a route has no entry (every endpoint must say what it requires).
    """
    out: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route):
            raise RuntimeError(f"unexpected route type {type(route).__name__}")
        by_method = {}
        for method in route_methods(route):
            access = ROUTE_ACCESS.get((method, route.path))
            if access is None:
                raise RuntimeError(f"no access rule for {method} {route.path}: add it to "
                                   "monitor.api.access.ROUTE_ACCESS (scope and body limit)")
            by_method[method] = access
        out.append(Route(route.path, _guard(route.endpoint, by_method), methods=route.methods, name=route.name,
                         include_in_schema=route.include_in_schema))
    return out


__all__ = ["Access", "BodyTooLarge", "COMMENT_LIMIT", "CONSOLE_FORM_LIMIT", "INTAKE_LIMIT", "QUERY_FORM_LIMIT",
           "ROUTE_ACCESS", "SILENCE_LIMIT", "SLACK_LIMIT", "guard_routes", "readme_table", "route_methods"]
