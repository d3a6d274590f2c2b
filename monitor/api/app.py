"""The daemon's HTTP API: an ASGI app (Starlette) over the narrow interfaces of
:mod:`monitor.api.deps`, never over the daemon itself.

One module per resource, each with module-level handlers and a ``ROUTES`` list:

* :mod:`~monitor.api.management` — ``/health``, ``/metrics``, ``/-/healthy``, ``/-/ready``, ``/-/reload``
* :mod:`~monitor.api.probes` — ``/api/v1/probes``
* :mod:`~monitor.api.rules`, :mod:`~monitor.api.query` — Prometheus's rule and query API
* :mod:`~monitor.api.catalog`, :mod:`~monitor.api.status` — Prometheus's metadata and status API
  (labels, series, metadata, exemplars; buildinfo, runtimeinfo, config, flags, targets, format_query)
* :mod:`~monitor.api.slos` — ``/api/v1/slos``
* :mod:`~monitor.api.oncall`, :mod:`~monitor.api.oncall_feeds` — on-call schedules, overrides, iCal feeds
* :mod:`~monitor.api.incidents` — incidents, notes, public updates, MTTA/MTTR
* :mod:`~monitor.api.statuspage` — the public ``/status`` page and ``/status.json``
* :mod:`~monitor.api.alerts`, :mod:`~monitor.api.alertmanager`, :mod:`~monitor.api.intake`,
  :mod:`~monitor.api.silences`, :mod:`~monitor.api.slack`, :mod:`~monitor.api.links` — the alert pipeline's API
* :mod:`~monitor.api.console` — the web console under ``/ui/`` (with :class:`~monitor.api.deps.ConsoleDeps`)

Handlers read their dependencies from ``request.app.state`` (``deps``: the :class:`ApiDeps`;
``credentials``: the :class:`~monitor.api.auth.Credentials` built from its settings accessor).
Every route is wrapped by :mod:`monitor.api.access` (follower 503, token and scope, body limit,
catch-all); every handler turns bad input into a JSON 400, never a crash.
:mod:`~monitor.api.openapi` describes every endpoint at ``GET /api/openapi.json``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from monitor.api import (
    alertmanager, alerts, catalog, incidents, intake, links, management, oncall, oncall_feeds, openapi, probes, query,
    rules, silences, slack, slos, status, statuspage,
)
from monitor.api import console
from monitor.api.access import guard_routes
from monitor.api.auth import Credentials
from monitor.api.statuspage import subscribe
from monitor.api.bodies import ApiError, api_error_handler
from monitor.api.deps import ApiDeps


def create_app(deps: ApiDeps) -> Starlette:
    """Build the ASGI app serving ``deps``; routes of a group left ``None`` are not mounted.

    :param deps: what the routes read (built by the composition root, :mod:`monitor.daemon.wiring`).
    :return: a Starlette application; ``app.state.deps`` is ``deps``.
    :raises RuntimeError: a route has no entry in :data:`monitor.api.access.ROUTE_ACCESS`.
    """
    routes: list[BaseRoute] = [*management.PROBE_ROUTES, *openapi.ROUTES]
    if deps.process is not None:
        routes += management.ROUTES
    if deps.queries is not None:
        routes += [*probes.ROUTES, *rules.ROUTES, *query.ROUTES, *slos.ROUTES]
        if deps.queries.catalog is not None:
            routes += catalog.ROUTES
        if deps.queries.status is not None:
            routes += status.ROUTES
    if deps.alerting is not None:
        routes += [*alerts.ROUTES, *alertmanager.ROUTES, *intake.ROUTES, *silences.ROUTES, *slack.ROUTES, *links.ROUTES]
    if deps.oncall is not None:
        routes += [*oncall.ROUTES, *oncall_feeds.ROUTES, *incidents.ROUTES]
    if deps.status_page is not None:
        routes += [*statuspage.ROUTES, *subscribe.ROUTES]
    if deps.console is not None and deps.queries is not None:
        routes += console.ROUTES
    app = Starlette(routes=guard_routes(routes), exception_handlers={ApiError: api_error_handler})
    app.state.deps = deps
    if deps.console is not None:
        app.state.console = console.ConsoleApp.build(deps, deps.console)
    app.state.credentials = Credentials(deps.settings)
    return app
