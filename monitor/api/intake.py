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

The body is decoded, validated and turned into alerts (fingerprints included) on one worker
thread (:data:`PARSER`), off the event loop: for a 5,000-alert body that is ~0.2 s of pure CPU,
during which the loop would serve nothing; on the thread, the interpreter hands the loop the GIL
every switch interval (5 ms). Only the taking of the alerts (:meth:`AlertPipeline.ingest`, in
bounded slices) runs on the loop.

The labels named in ``api.intake_drop_labels`` are left out while parsing, so each alert and its
fingerprint are made without them (two Prometheus replicas' copies are one alert); an alert that
one of the daemon's own alerting rules also raises is warned about
(:class:`~monitor.api.duplicates.DuplicateRules`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.alert import Alert
from monitor.alerting.intake import (
    IntakeResult, IntakeTooLarge, WebhookMessage, parse_v2_alerts, parse_webhook,
)
from monitor.api.auth import credentials_of, identity_of
from monitor.api.bodies import client_host, error_response, parse_json
from monitor.api.deps import deps_of, running_ports
from monitor.api.duplicates import DuplicateRules

T = TypeVar("T")

#: The thread that decodes intake bodies: one, so a burst of POSTs queues instead of multiplying
#: threads that contend for the GIL with the event loop.
PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-parse")


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the pure function ``fn(*args, **kwargs)`` on :data:`PARSER` and return its result
    (its exceptions are raised here)."""
    return await asyncio.get_running_loop().run_in_executor(PARSER, functools.partial(fn, *args, **kwargs))


def _decode(raw: bytes) -> Any:
    """Decode a JSON body strictly (:func:`monitor.api.bodies.parse_json`); ``None`` when empty."""
    return parse_json(raw) if raw.strip() else None


def _fingerprinted(alerts: list[Any]) -> None:
    """Compute each alert's fingerprint, which :meth:`model.labels.Labels.fingerprint` keeps:
    the loop then finds it cached."""
    for a in alerts:
        a.fingerprint  # noqa: B018 - computed for its cache


def _v2(raw: bytes, now: float, resolve_timeout: float, drop: Sequence[str]) -> IntakeResult:
    result = parse_v2_alerts(_decode(raw), now, resolve_timeout=resolve_timeout, drop=drop)
    _fingerprinted(result.alerts)
    return result


def _webhook(raw: bytes, now: float, drop: Sequence[str]) -> WebhookMessage:
    msg = parse_webhook(_decode(raw), now, drop=drop)
    _fingerprinted(msg.result.alerts)
    return msg


def _source(request: Request, kind: str) -> str:
    identity = identity_of(request)
    who = f"{identity.name}@" if identity is not None else ""
    return f"{kind}:{who}{client_host(request)}"


def _drop(request: Request) -> Sequence[str]:
    """Return ``api.intake_drop_labels`` (read per request: a reload may change them)."""
    return tuple(credentials_of(request).settings().intake_drop_labels)


def _prepare(request: Request, alerts: list[Alert], source: str, now: float) -> list[Alert]:
    """Warn about alerts the daemon's own rules also raise (``api.intake_drop_labels`` are gone)."""
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
    raw = await request.body()
    t = ports.clock()
    try:
        result = await off_loop(_v2, raw, t, ports.intake.resolve_timeout, _drop(request))
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
    raw = await request.body()
    try:
        msg = await off_loop(_webhook, raw, ports.clock(), _drop(request))
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
