"""The daemon's HTTP API: an ASGI app (Starlette) built around a running ``Daemon``.

Routes: ``GET /health`` (guide shape, 200 healthy / 503 degraded), ``GET /metrics``
(Prometheus text format), ``GET /api/v1/probes``, and the resources of the modules in this
package. Every handler turns bad input into a JSON error, never a crash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api import alerting as alerting_api
from monitor.api import probes as probes_api
from monitor.api import rules as rules_api

if TYPE_CHECKING:
    from monitor.daemon.wiring import Daemon


def create_app(daemon: "Daemon") -> Starlette:
    """Build the ASGI app serving ``daemon``.

    :param daemon: the running daemon whose state the routes read.
    :return: a Starlette application.
    """

    async def health(request: Request) -> JSONResponse:
        body = daemon.health()
        return JSONResponse(body, status_code=200 if body["status"] == "healthy" else 503)

    async def metrics(request: Request) -> Response:
        daemon.update_store_metrics()
        return Response(generate_latest(daemon.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthy(request: Request) -> Response:
        return Response("OK\n", media_type="text/plain")

    routes = [
        Route("/health", health),
        Route("/metrics", metrics),
        Route("/-/healthy", healthy),
        Route("/-/ready", healthy),
        *probes_api.routes(daemon),
        *rules_api.routes(daemon),
        *alerting_api.routes(daemon),
    ]
    for extra in getattr(daemon, "api_routes", lambda: [])():
        routes.append(extra)
    app = Starlette(routes=routes)
    app.state.daemon = daemon
    return app
