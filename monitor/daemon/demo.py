"""``codebook-monitor demo``: the real daemon (same code path as ``run``) on
``examples/monitor.yaml``, beside the example sample backend, in one process.

It seeds the example tables into the local PostgreSQL (``DATABASE_URL``, default the local
``test`` database, schema ``codebook_demo``) when it is reachable, starts a local TLS endpoint
with a freshly made certificate, starts the sample backend and the local Slack / PagerDuty /
webhook stand-ins (:mod:`examples.notify_sinks`, on the backend port + 1, which print one line
per message received), then runs the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEMO_SCHEMA = "codebook_demo"
#: The API token of examples/monitor.yaml when ``MONITOR_API_TOKEN`` is not set (printed in the banner).
DEMO_API_TOKEN = "demo-api-token-0123456789"

log = logging.getLogger("monitor.demo")


def cli_name(argv0: str | None = None) -> str:
    """Return how the banner's hints name ``codebook-monitor``: the path it was started by.

    ``.venv/bin/codebook-monitor`` (as the README runs it) when started as ``python -m monitor``
    or under another name; otherwise ``argv0`` as given (``.venv/bin/codebook-monitor``,
    ``/opt/x/bin/codebook-monitor``), so a hint copied from the banner runs as is.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    return argv0 if Path(argv0).name == "codebook-monitor" else ".venv/bin/codebook-monitor"


def run_demo(*, port: int = 9115, backend_port: int = 8000, config: str | None = None,
             maintenance: bool = True) -> int:
    """Run the demo until Ctrl-C.

    :param port: the daemon's HTTP port.
    :param backend_port: the sample backend's HTTP port.
    :param config: a config file to use instead of ``examples/monitor.yaml``.
    :param maintenance: ``False`` (``demo --no-maintenance``) drops the config's maintenance
        windows, so pages are sent on the first Saturday of the month 02:00-06:00 UTC too
        (until a reload reads the file again).
    :return: the exit code.
    """
    if not (EXAMPLES / "sample_backend.py").exists():
        print("the demo needs the examples/ folder of a source checkout (pip install -e .)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    os.environ.setdefault("DEMO_SCHEMA", DEMO_SCHEMA)
    os.environ.setdefault("BACKEND_URL", f"http://127.0.0.1:{backend_port}")
    os.environ.setdefault("DEMO_TLS_PORT", str(backend_port + 443))
    os.environ.setdefault("MONITOR_STATE_DIR", str(Path.cwd()))
    os.environ.setdefault("DEMO_API_KEY", "demo-key-0123456789abcdef")
    os.environ.setdefault("DEMO_SINKS_PORT", str(backend_port + 1))
    os.environ.setdefault("DEMO_SINKS_URL", f"http://127.0.0.1:{os.environ['DEMO_SINKS_PORT']}")
    os.environ.setdefault("MONITOR_API_TOKEN", DEMO_API_TOKEN)
    return asyncio.run(_demo(port, backend_port, config or str(EXAMPLES / "monitor.yaml"), maintenance))


async def _demo(port: int, backend_port: int, config_path: str, maintenance: bool) -> int:
    from examples import notify_sinks, sample_backend, seed, tls_endpoint
    from examples.backups import make_demo_backups
    from monitor.config.loader import load_config
    from monitor.config.secrets import secret_values
    from monitor.daemon.lifecycle import serve
    from monitor.daemon.wiring import Daemon
    from monitor.errors import ConfigErrors
    from monitor.logging import setup_logging

    try:
        config = load_config(config_path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 1
    setup_logging(config.log.level, secrets=secret_values(config))
    config.server.listen_on(port)  # links in messages follow --port unless server.external_url is set
    if not maintenance:
        config.alerting.maintenance_windows = []
    try:
        await seed.seed(os.environ["DATABASE_URL"], schema=os.environ["DEMO_SCHEMA"])
        log.info("seeded the example tables", extra={"schema": os.environ["DEMO_SCHEMA"]})
    except Exception as exc:  # noqa: BLE001 - the demo runs without a database too
        log.warning("could not seed PostgreSQL; database probes will fail", extra={"error": str(exc)})
    make_demo_backups(Path(os.environ["MONITOR_STATE_DIR"]) / ".demo-backups")  # the backup probe's folder
    tls = await tls_endpoint.start("127.0.0.1", int(os.environ["DEMO_TLS_PORT"]))
    backend = await sample_backend.serve("127.0.0.1", backend_port)
    try:
        sinks = await notify_sinks.start("127.0.0.1", int(os.environ["DEMO_SINKS_PORT"]))
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        await backend.stop()
        tls.close()
        return 1

    async def banner(daemon: Daemon) -> None:
        url = f"http://127.0.0.1:{port}"
        token = os.environ["MONITOR_API_TOKEN"]
        token = token if token == DEMO_API_TOKEN else "$MONITOR_API_TOKEN"  # never print a real one
        windows = "".join(f"  MAINTENANCE    : {line}\n"
                          f"                   (run `demo --no-maintenance` to page anyway)\n"
                          for line in daemon.maintenance.open_messages())
        print(f"\ncodebook-monitor demo is running\n"
              f"  web console    : {url}/ui/  (user demo, password demo-console-password)\n"
              f"  status page    : {url}/status  (public: uptime, incidents, maintenance)\n"
              f"  daemon metrics : curl {url}/metrics\n"
              f"  probe results  : curl {url}/api/v1/probes\n"
              f"  alerts         : curl {url}/api/v1/alerts\n"
              f"  sample backend : {os.environ['BACKEND_URL']}  (faults: curl -X POST "
              f"{os.environ['BACKEND_URL']}/faults -d '{{\"error_rate\": 1}}')\n"
              f"  notifications  : curl {sinks.url}/messages  (Slack, PagerDuty and webhook stand-ins;\n"
              f"                   each message is also printed here as a [slack] / [pager] / [webhook] line)\n"
              f"  acknowledge    : MONITOR_API_TOKEN={token} "
              f"{cli_name()} ack FINGERPRINT --url {url}\n"
              f"                   (FINGERPRINT: the dedup= of a [pager] line, or see {url}/api/v2/alerts)\n"
              f"{windows}"
              f"  stop           : Ctrl-C\n", file=sys.stderr, flush=True)

    try:
        return await serve(Daemon(config), config_path, port=port, on_started=banner)
    finally:
        await backend.stop() if hasattr(backend, "stop") else None
        await sinks.stop()
        tls.close()
