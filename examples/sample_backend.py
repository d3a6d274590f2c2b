"""A small instrumented stand-in for the Codebook AI backend, for the demo and the tests to watch.

It serves what codebook-monitor probes and scrapes on the real backend:

- ``GET /health`` in the operations guide's shape, 200 when healthy, 503 otherwise::

      {"status": "healthy", "timestamp": "2026-11-29T14:50:00.123Z", "version": "1.4.2",
       "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}

- ``GET /metrics`` (Prometheus text format, its own registry):
  ``http_requests_total{method,endpoint,status,client_id}``,
  ``http_request_duration_seconds{method,endpoint,client_id}`` (histogram, buckets up to 10 s),
  ``llm_api_requests_total{model,status}`` and ``llm_tokens_total{client_id,model}``;
- a few API routes (``GET /api/v1/codebooks``, ``POST /api/v1/codebooks/{id}/items``,
  ``POST /api/v1/refactor``, ``GET /api/v1/recommendations``) that record into those metrics,
  the client taken from the ``X-Client-ID`` header;
- synthetic traffic generated in-process (default 20 requests/s over the API routes and the
  clients ``acme``, ``globex``, ``initech``), recorded without real HTTP and without sleeping;
- faults settable over HTTP (see :mod:`examples.faults`): ``POST /faults`` merges a change,
  ``GET /faults`` shows the current faults, ``DELETE /faults`` resets them. Faults apply to the
  synthetic traffic (500s with probability ``error_rate``, ``extra_latency_seconds`` added to
  each recorded latency) and to real requests (which sleep the extra latency, capped);
- stand-ins for the LLM provider and Pinecone (:mod:`examples.vendors`).

Run it alone::

    python -m examples.sample_backend --port 8000 [--tls-port 8443] [--seed 1]

or inside another event loop (the daemon's ``demo`` command)::

    backend = await serve("127.0.0.1", 8000)
    ...
    await backend.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.embedded import RunningServer, start_app
from examples.faults import Faults, FaultsError
from examples.vendors import vendor_routes

VERSION = "1.4.2"
"""The version the sample backend reports in ``/health``."""

CLIENTS = (("acme", 0.5), ("globex", 0.3), ("initech", 0.2))
"""Synthetic clients and their share of the traffic."""

DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency histogram buckets (seconds); they reach past the guide's 5 s p95 threshold."""

MAX_REAL_SLEEP_SECONDS = 10.0
"""The cap on the extra latency a real request sleeps."""

BASELINE_SERVER_ERROR_RATE = 0.0002
"""The 5xx share of healthy synthetic traffic: 0.02 %, a fifth of the error budget of the demo's 99.9 %
API availability SLO (examples/slos.yaml), so a healthy demo opens no SLO alert (its slowest tier
fires at 1x the budget, 0.1 %), and far below the guide's 2 % warning."""

BASELINE_CLIENT_ERROR_RATE = 0.01
"""The 4xx share of synthetic traffic (never counted as errors by the shipped rules)."""


@dataclass(frozen=True)
class Endpoint:
    """One API route of the synthetic traffic mix.

    :ivar method: HTTP method.
    :ivar path: route template, the ``endpoint`` label.
    :ivar weight: share of the synthetic traffic.
    :ivar median_seconds: median latency when healthy.
    :ivar ok_status: status of a successful call.
    :ivar llm_model: the model the route calls, or None.
    """

    method: str
    path: str
    weight: float
    median_seconds: float
    ok_status: int = 200
    llm_model: str | None = None


ENDPOINTS = (
    Endpoint("GET", "/api/v1/codebooks", 0.40, 0.04),
    Endpoint("POST", "/api/v1/codebooks/{id}/items", 0.25, 0.12, ok_status=201),
    Endpoint("POST", "/api/v1/refactor", 0.10, 0.9, ok_status=202, llm_model="gpt-4o"),
    Endpoint("GET", "/api/v1/recommendations", 0.25, 0.3, llm_model="gpt-4o-mini"),
)


class SampleBackend:
    """The sample backend's state: metrics, faults, RNG, and the synthetic traffic generator.

    :param seed: seed of the RNG (deterministic traffic and fault draws), or None.
    :param traffic_rps: synthetic requests per second (0 disables the generator).
    :param max_real_sleep: cap in seconds on the extra latency a real request sleeps.

    Example::

        backend = SampleBackend(seed=1)
        backend.set_faults({"error_rate": 1})
        backend.generate(100)     # 100 synthetic requests, all answered 500
    """

    def __init__(self, seed: int | None = None, traffic_rps: float = 20.0,
                 max_real_sleep: float = MAX_REAL_SLEEP_SECONDS):
        if traffic_rps < 0:
            raise ValueError(f"traffic_rps must be >= 0, got {traffic_rps}")
        self.rng = random.Random(seed)
        self.traffic_rps = traffic_rps
        self.max_real_sleep = max_real_sleep
        self.faults = Faults.healthy()
        self.started_at = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests_total = Counter(
            "http_requests_total", "HTTP requests served, by route, status and client.",
            ["method", "endpoint", "status", "client_id"], registry=self.registry)
        self.request_duration = Histogram(
            "http_request_duration_seconds", "HTTP request latency in seconds, by route and client.",
            ["method", "endpoint", "client_id"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.llm_requests_total = Counter(
            "llm_api_requests_total", "Calls to the LLM provider, by model and HTTP status.",
            ["model", "status"], registry=self.registry)
        self.llm_tokens_total = Counter(
            "llm_tokens_total", "LLM tokens consumed, by client and model.",
            ["client_id", "model"], registry=self.registry)
        self.faults_active = Gauge(
            "sample_backend_fault_active", "1 while the named fault is set on the sample backend.",
            ["fault"], registry=self.registry)
        self._weights = [e.weight for e in ENDPOINTS]
        self._client_ids = [c for c, _ in CLIENTS]
        self._client_weights = [w for _, w in CLIENTS]
        # Create the error series up front (client_python's advice for labelled counters): a
        # series born at the first error needs two scrapes before rate() sees it, which would
        # delay the error-rate alerts by a scrape interval.
        for e in ENDPOINTS:
            for client_id in self._client_ids:
                self.requests_total.labels(e.method, e.path, "500", client_id)
        self._update_fault_gauges()

    # -- faults -------------------------------------------------------------------------------

    def set_faults(self, body: object) -> Faults:
        """Merge a ``POST /faults`` body into the current faults and return them.

        :raises FaultsError: the body does not validate (nothing changes).
        """
        self.faults = self.faults.merged(body)
        self._update_fault_gauges()
        return self.faults

    def reset_faults(self) -> Faults:
        """Clear every fault and return the fault-free state."""
        self.faults = Faults.healthy()
        self._update_fault_gauges()
        return self.faults

    def _update_fault_gauges(self) -> None:
        f = self.faults
        self.faults_active.labels("error_rate").set(1 if f.effective_error_rate() > 0 else 0)
        self.faults_active.labels("extra_latency").set(1 if f.extra_latency_seconds > 0 else 0)
        self.faults_active.labels("health").set(0 if f.health_status() == "healthy" else 1)
        self.faults_active.labels("llm_error_rate").set(1 if f.effective_llm_error_rate() > 0 else 0)
        self.faults_active.labels("vendor_status").set(1 if f.vendor_status else 0)

    # -- health -------------------------------------------------------------------------------

    def health(self) -> tuple[dict, int]:
        """Return the ``/health`` body and its HTTP status (200 healthy, 503 otherwise)."""
        status = self.faults.health_status()
        body = {
            "status": status,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "version": VERSION,
            "checks": self.faults.check_states(),
        }
        return body, 200 if status == "healthy" else 503

    # -- recording ----------------------------------------------------------------------------

    def record(self, method: str, endpoint: str, status: int, client_id: str, seconds: float) -> None:
        """Record one served request into ``http_requests_total`` and the latency histogram."""
        self.requests_total.labels(method, endpoint, str(status), client_id).inc()
        self.request_duration.labels(method, endpoint, client_id).observe(seconds)

    def record_llm_call(self, model: str, client_id: str) -> bool:
        """Record one LLM provider call under the current faults; return whether it succeeded."""
        forced = self.faults.vendor_status.get("llm")
        if forced is not None and forced >= 300:
            status = forced
        elif self.rng.random() < self.faults.effective_llm_error_rate():
            status = 503
        else:
            status = 200
        self.llm_requests_total.labels(model, str(status)).inc()
        if status == 200:
            self.llm_tokens_total.labels(client_id, model).inc(self.rng.randint(300, 2500))
        return status == 200

    def draw_status(self, endpoint: Endpoint) -> int:
        """Draw the status of one API call under the current faults."""
        r = self.rng.random()
        error_rate = self.faults.effective_error_rate()
        if r < error_rate:
            return 500
        # The baseline shares apply to the traffic the fault left alone.
        r = (r - error_rate) / (1.0 - error_rate) if error_rate < 1.0 else 0.0
        if r < BASELINE_SERVER_ERROR_RATE:
            return 500
        if r < BASELINE_SERVER_ERROR_RATE + BASELINE_CLIENT_ERROR_RATE:
            return 404 if endpoint.method == "GET" else 400
        return endpoint.ok_status

    def synthetic_request(self) -> tuple[Endpoint, str, int, float]:
        """Generate and record one synthetic request; return (endpoint, client, status, seconds).

        The latency is drawn from a log-normal around the route's median, plus the injected
        ``extra_latency_seconds``; it is recorded, not slept.
        """
        endpoint = self.rng.choices(ENDPOINTS, self._weights)[0]
        client_id = self.rng.choices(self._client_ids, self._client_weights)[0]
        status = self.draw_status(endpoint)
        seconds = self.rng.lognormvariate(math.log(endpoint.median_seconds), 0.5)
        seconds += self.faults.extra_latency_seconds
        if endpoint.llm_model and status < 400:
            # A failed LLM call is retried from the job queue: it shows in llm_api_requests_total,
            # not in the HTTP status, so the LLM and API error-rate alerts stay distinct.
            self.record_llm_call(endpoint.llm_model, client_id)
        self.record(endpoint.method, endpoint.path, status, client_id, seconds)
        return endpoint, client_id, status, seconds

    def generate(self, count: int) -> None:
        """Generate and record ``count`` synthetic requests now."""
        for _ in range(count):
            self.synthetic_request()

    async def run_traffic(self, tick_seconds: float = 0.1) -> None:
        """Generate ``traffic_rps`` synthetic requests per second until cancelled.

        Requests are emitted every ``tick_seconds`` in proportion to the elapsed time, so a
        late tick catches up instead of losing traffic.
        """
        if self.traffic_rps <= 0:
            return
        owed = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick_seconds)
            now = time.monotonic()
            owed += (now - last) * self.traffic_rps
            last = now
            due = int(owed)
            owed -= due
            self.generate(min(due, int(self.traffic_rps * 5) + 1))

    # -- real requests ------------------------------------------------------------------------

    def instrumented(self, method: str, endpoint: str, ok_status: int,
                     handler: Callable[[Request], Awaitable[dict]],
                     llm_model: str | None = None) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an API handler: apply the faults, answer, and record the request.

        The handler returns the JSON body of a successful answer; faults may sleep the extra
        latency (capped at ``max_real_sleep``) and turn the answer into a 500.
        """

        async def endpoint_fn(request: Request) -> Response:
            start = time.perf_counter()
            client_id = request.headers.get("x-client-id", "anonymous")
            faults = self.faults
            if faults.extra_latency_seconds > 0:
                await asyncio.sleep(min(faults.extra_latency_seconds, self.max_real_sleep))
            if self.rng.random() < faults.effective_error_rate():
                response: Response = JSONResponse(
                    {"error": "internal_error", "detail": "injected fault (error_rate)"}, 500)
            else:
                try:
                    response = JSONResponse(await handler(request), ok_status)
                except _BadRequest as exc:
                    response = JSONResponse({"error": "bad_request", "detail": str(exc)}, 400)
                else:
                    if llm_model:
                        self.record_llm_call(llm_model, client_id)
            self.record(method, endpoint, response.status_code, client_id, time.perf_counter() - start)
            return response

        return endpoint_fn


class _BadRequest(Exception):
    """Raised by an API handler for a request it cannot serve (answered 400)."""


async def _json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise _BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("expected a JSON object")
    return body


def _api_routes(backend: SampleBackend) -> list[Route]:
    """Return the imitation Codebook API routes, instrumented by ``backend``."""

    async def list_codebooks(request: Request) -> dict:
        client = request.headers.get("x-client-id", "anonymous")
        return {"codebooks": [{"id": i, "client_id": client, "name": f"codebook-{i}"} for i in range(1, 4)]}

    async def add_items(request: Request) -> dict:
        body = await _json_body(request)
        items = body.get("items", [])
        if not isinstance(items, list):
            raise _BadRequest("items: expected a list")
        return {"codebook_id": request.path_params["id"], "added": len(items)}

    async def refactor(request: Request) -> dict:
        body = await _json_body(request)
        if "codebook_id" not in body:
            raise _BadRequest("codebook_id: field required")
        return {"operation_id": backend.rng.randint(1, 10**9), "codebook_id": body["codebook_id"],
                "status": "pending"}

    async def recommendations(request: Request) -> dict:
        return {"recommendations": [{"id": i, "theme": t, "confidence": c}
                                    for i, (t, c) in enumerate((("onboarding", 0.91), ("pricing", 0.78)), 1)]}

    routes = []
    for endpoint, handler in zip(ENDPOINTS, (list_codebooks, add_items, refactor, recommendations)):
        fn = backend.instrumented(endpoint.method, endpoint.path, endpoint.ok_status, handler, endpoint.llm_model)
        routes.append(Route(endpoint.path, fn, methods=[endpoint.method]))
    return routes


def create_app(seed: int | None = None, traffic_rps: float = 20.0,
               backend: SampleBackend | None = None) -> Starlette:
    """Build the sample backend's ASGI app.

    The synthetic traffic runs while the app's lifespan is up (uvicorn starts it).

    :param seed: RNG seed for deterministic traffic and fault draws.
    :param traffic_rps: synthetic requests per second (0 disables them).
    :param backend: an existing :class:`SampleBackend` to serve (its own seed and rate apply).
    :return: the app; ``app.state.backend`` is its :class:`SampleBackend`.
    """
    backend = backend or SampleBackend(seed=seed, traffic_rps=traffic_rps)

    async def health(request: Request) -> Response:
        faults = backend.faults
        if faults.extra_latency_seconds > 0:
            await asyncio.sleep(min(faults.extra_latency_seconds, backend.max_real_sleep))
        body, status = backend.health()
        return JSONResponse(body, status)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(backend.registry), media_type=CONTENT_TYPE_LATEST)

    async def get_faults(request: Request) -> Response:
        return JSONResponse(backend.faults.to_json())

    async def post_faults(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid_faults", "errors": ["the body is not valid JSON"]}, 400)
        try:
            faults = backend.set_faults(body)
        except FaultsError as exc:
            return JSONResponse({"error": "invalid_faults", "errors": exc.errors}, 400)
        logging.getLogger(__name__).info("faults set: %s", faults.to_json())
        return JSONResponse(faults.to_json())

    async def delete_faults(request: Request) -> Response:
        return JSONResponse(backend.reset_faults().to_json())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        task = asyncio.create_task(backend.run_traffic(), name="sample-backend-traffic")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/faults", get_faults, methods=["GET"]),
        Route("/faults", post_faults, methods=["POST"]),
        Route("/faults", delete_faults, methods=["DELETE"]),
        *_api_routes(backend),
        *vendor_routes(lambda: backend.faults),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.backend = backend
    return app


class RunningBackend(RunningServer):
    """A sample backend served by uvicorn inside the caller's event loop.

    :ivar server: the uvicorn server.
    :ivar task: the task running ``server.serve()``.
    :ivar app: the ASGI app (``app.state.backend`` is the :class:`SampleBackend`).
    :ivar host: the bound host.
    :ivar port: the bound port (the real one when 0 was asked).
    :ivar scheme: ``http`` or ``https``.
    """

    app: Starlette

    @property
    def backend(self) -> SampleBackend:
        """The served :class:`SampleBackend` (its metrics and faults)."""
        return self.app.state.backend


async def serve(host: str = "127.0.0.1", port: int = 8000, *, seed: int | None = None,
                traffic_rps: float = 20.0, app: Starlette | None = None,
                ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                log_level: str = "warning", startup_timeout: float = 10.0) -> RunningBackend:
    """Start the sample backend in the running event loop and return once it accepts connections.

    :param host: interface to bind.
    :param port: TCP port (0 = any free port; read the real one from the result).
    :param seed: RNG seed (ignored when ``app`` is given).
    :param traffic_rps: synthetic requests per second (ignored when ``app`` is given).
    :param app: an app from :func:`create_app` to serve, e.g. the same one on HTTP and HTTPS.
    :param ssl_certfile: PEM certificate (chain) to serve HTTPS with, see :mod:`examples.tls`.
    :param ssl_keyfile: PEM private key of ``ssl_certfile``.
    :param log_level: uvicorn's log level.
    :param startup_timeout: seconds to wait for the server to start.
    :return: the running server; call :meth:`RunningBackend.stop` to stop it.
    :raises RuntimeError: the server could not start (e.g. the port is taken).
    """
    app = app or create_app(seed=seed, traffic_rps=traffic_rps)
    return await start_app(app, host, port, name="the sample backend", handle=RunningBackend,
                           ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, log_level=log_level,
                           lifespan="on", startup_timeout=startup_timeout)


async def _main(args: argparse.Namespace) -> None:
    """Serve HTTP (and HTTPS when asked) until SIGINT or SIGTERM."""
    app = create_app(seed=args.seed, traffic_rps=args.rps)
    running = [await serve(args.host, args.port, app=app, log_level=args.log_level)]
    print(f"sample backend on {running[0].url}  (health: /health, metrics: /metrics, faults: /faults)")
    if args.tls_port is not None:
        from examples.tls import make_self_signed_cert

        cert, key = make_self_signed_cert(args.tls_dir, hostname="localhost", days_valid=args.tls_days)
        running.append(await serve(args.host, args.tls_port, app=app, ssl_certfile=str(cert),
                                   ssl_keyfile=str(key), log_level=args.log_level))
        print(f"sample backend on {running[1].url}  (self-signed certificate {cert}, {args.tls_days} days)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.ensure_future(stop.wait()), *(r.task for r in running)]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for r in running:
        await r.stop()
    waiters[0].cancel()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m examples.sample_backend --port 8000``."""
    parser = argparse.ArgumentParser(prog="python -m examples.sample_backend", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed for deterministic traffic")
    parser.add_argument("--rps", type=float, default=20.0, help="synthetic requests per second (default 20)")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve HTTPS on this port")
    parser.add_argument("--tls-dir", default=".sample-backend-tls", help="where to write the self-signed cert")
    parser.add_argument("--tls-days", type=int, default=90, help="validity of the self-signed cert in days")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    args = parser.parse_args(argv)
    if args.rps < 0:
        parser.error("--rps must be >= 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
