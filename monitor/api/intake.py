"""Alerts from a real Prometheus or Alertmanager (parsing: :mod:`monitor.alerting.intake`).

* ``POST /api/v2/alerts`` — Alertmanager v2 intake (``postableAlerts``; a Prometheus can list
  this daemon under ``alerting.alertmanagers``): 200, or 400 naming the invalid items (the valid
  ones are still taken, as Alertmanager does).
* ``POST /api/v1/intake/alertmanager`` — Alertmanager webhook payload (version 4): 200
  ``{"status": "success", "data": {"alerts": <count>}}``, or 400 naming the invalid items and
  fields (the valid alerts are still taken).

Both need a token with the ``intake`` scope (a Prometheus sends it with ``authorization`` in its
``alertmanager_config``, an Alertmanager with ``http_config.authorization``), unless
``api.intake_open`` is true. The audit source is ``api:<token>@<client>`` /
``webhook:<token>@<client>`` (``api:<client>`` without a token). Bodies over 4 MiB and batches
over ``monitor.alerting.intake.MAX_ALERTS`` alerts are answered 413 and nothing is taken. Both
answer 503 on a follower.

Before fingerprinting, the labels named in ``api.intake_drop_labels`` are removed; an alert that
one of the daemon's own alerting rules also raises is warned about
(:class:`~monitor.api.duplicates.DuplicateRules`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.alert import Alert
from monitor.alerting.intake import IntakeTooLarge, drop_labels, parse_v2_alerts, parse_webhook
from monitor.api.auth import credentials_of, identity_of
from monitor.api.bodies import client_host, error_response, read_json
from monitor.api.deps import deps_of, running_ports
from monitor.api.duplicates import DuplicateRules


def _source(request: Request, kind: str) -> str:
    identity = identity_of(request)
    who = f"{identity.name}@" if identity is not None else ""
    return f"{kind}:{who}{client_host(request)}"


def _prepare(request: Request, alerts: list[Alert], source: str, now: float) -> list[Alert]:
    """Drop ``api.intake_drop_labels``, then warn about alerts the daemon's own rules also raise."""
    alerts = drop_labels(alerts, credentials_of(request).settings().intake_drop_labels)
    queries = deps_of(request).queries
    if queries is not None and queries.rules is not None:
        state = request.app.state
        if getattr(state, "duplicates", None) is None:
            state.duplicates = DuplicateRules(queries.rules.to_api)
        state.duplicates.check(alerts, source, now)
    return alerts


async def post_alerts(request: Request) -> Response:
    """``POST /api/v2/alerts``."""
    ports = running_ports(request)
    body = await read_json(request)
    t = ports.clock()
    try:
        result = parse_v2_alerts(body, t, resolve_timeout=ports.intake.resolve_timeout)
    except IntakeTooLarge as exc:
        return error_response(413, str(exc))
    if result.alerts:
        source = _source(request, "api")
        await ports.intake.ingest(_prepare(request, result.alerts, source, t), t, source=source)
    if not result.ok:
        return error_response(400, result.error_text())
    return Response(status_code=200)


async def post_webhook(request: Request) -> Response:
    """``POST /api/v1/intake/alertmanager``."""
    ports = running_ports(request)
    body = await read_json(request)
    try:
        msg = parse_webhook(body, ports.clock())
    except IntakeTooLarge as exc:
        return error_response(413, str(exc))
    except ValueError as exc:
        return error_response(400, str(exc))
    if msg.result.alerts:
        source, t = _source(request, "webhook"), ports.clock()
        await ports.intake.ingest(_prepare(request, msg.result.alerts, source, t), t, source=source)
    if not msg.result.ok:
        return error_response(400, msg.result.error_text())
    return JSONResponse({"status": "success", "data": {"alerts": len(msg.result.alerts)}})


ROUTES = [
    Route("/api/v2/alerts", post_alerts, methods=["POST"]),
    Route("/api/v1/intake/alertmanager", post_webhook, methods=["POST"]),
]
