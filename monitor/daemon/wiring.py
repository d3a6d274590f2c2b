"""The composition root: build every part of the daemon from a validated ``Config``.

Only this module creates the real shared resources (HTTP client, sample store, metrics
registry, scheduler); every part receives them as constructor arguments (STYLE guideline 10).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics

from monitor import __version__
from monitor.config.model import Config
from monitor.daemon.probing import ProbeCollector, ProbeRunner
from monitor.daemon.scheduler import Scheduler
from monitor.alerting.ports import AlertingPorts
from monitor.daemon.collectors import OnCallCollector, RuleCollector
from monitor.daemon.leader_pipeline import AlertingFacade
from monitor.daemon.leadership import Leadership
from monitor.errors import ConfigError, ConfigErrors
from monitor.escalation.schedule import OnCallLookup
from monitor.metrics import Metrics
from monitor.promql.engine import Engine
from monitor.rules.manager import RuleManager
from monitor.scrape import Scraper
from monitor.store import open_store
from monitor.tsdb.store import SampleStore

log = logging.getLogger("monitor.daemon")

#: Seconds between sample-store retention sweeps.
GC_INTERVAL = 60.0


class Daemon:
    """One codebook-monitor process: probes and scrapes feed the sample store, the rule manager
    evaluates rules over it, and (on the leader) the alert service routes, escalates and sends.

    Lifecycle: ``await start()`` then ``await stop()``; ``check_reload(config)`` then
    ``reload(config)`` swap probes, scrape targets, rules and receivers in place (samples and
    alert state are kept).

    :param config: the validated configuration.
    :param registry: the Prometheus registry for ``/metrics`` (a fresh one by default).
    """

    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.started_at = time.time()
        # ``*_created`` series double every counter for no reader's benefit (process-wide switch).
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = SampleStore(retention_seconds=config.tsdb.retention, max_series=config.tsdb.max_series)
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.scheduler = Scheduler(self.metrics)
        self.probes = ProbeRunner(config.probes, self.store, self.metrics, http_client=self.http)
        self.registry.register(ProbeCollector(self.probes))
        self.scrapers: dict[str, Scraper] = {}
        self.last_scrape: dict[str, Any] = {}
        self._build_scrapers(config)
        self.engine = Engine(self.store, max_series=config.rules.query_max_series, max_samples=config.rules.query_max_samples, timeout=config.rules.query_timeout)
        self.rules = RuleManager(
            self.store, self.engine, external_labels=config.rules.external_labels,
            resolved_retention=config.rules.resolved_retention,
            default_interval=config.rules.evaluation_interval, on_alerts=self._on_alerts,
            external_url=config.server.external_url)
        errors = self.rules.load(config.resolved_rule_files())
        if errors:
            raise ConfigErrors([ConfigError(e) for e in errors])
        self.registry.register(RuleCollector(self.rules))
        self.registry.register(OnCallCollector(lambda: OnCallLookup.from_config(self.config.alerting)))
        ProcessCollector(registry=self.registry)  # process_* metrics: memory, CPU, open fds
        self.state = None
        self.alerting_ports: AlertingPorts | None = None  # handed over by the leadership while leading
        self.alerting: AlertingFacade | None = None  # transitional: the API's one-object view of the ports
        self.leadership = Leadership(state=lambda: self.state, config=lambda: self.config, scheduler=self.scheduler,
                                     registry=self.registry, metrics=self.metrics,
                                     on_change=self._set_alerting_ports)
        self.metrics.leader.set(0)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(time.time())

    def _set_alerting_ports(self, ports: AlertingPorts | None) -> None:
        """Take the alert pipeline's ports from the leadership (``None``: following)."""
        self.alerting_ports = ports
        self.alerting = AlertingFacade(ports) if ports is not None else None

    @property
    def outbox(self) -> Any:
        """The leader's outbox worker, or ``None`` while following."""
        return self.leadership.worker

    async def _on_alerts(self, alerts: list) -> None:
        """Receive the firing and newly resolved alerts of one group evaluation: hand them to
        the alert pipeline (routing, mutes, outbox, escalation)."""
        ports = self.alerting_ports
        if ports is not None:
            await ports.intake.ingest(alerts, source="rules")

    def _build_scrapers(self, config: Config) -> None:
        """(Re)build scrapers; an unchanged target keeps its scraper (and its staleness
        tracking), a removed or changed one marks its series stale."""
        old = self.scrapers
        self.scrapers = {}
        for t in config.scrape:
            key = (t.url, t.timeout, tuple(sorted(t.labels.items())), t.honor_labels)
            prev = old.pop(t.name, None)
            if prev is not None and getattr(prev, "config_key", None) == key:
                self.scrapers[t.name] = prev
                continue
            if prev is not None:
                prev.stop()
            scraper = Scraper(t.name, t.url, self.store, client=self.http, timeout=t.timeout,
                              labels=t.labels, honor_labels=t.honor_labels)
            scraper.config_key = key
            self.scrapers[t.name] = scraper
        for gone in old.values():
            gone.stop()

    # -- jobs -------------------------------------------------------------------------------

    def _schedule(self) -> None:
        for name, s in self.probes.settings.items():
            self.scheduler.add_interval_job(f"probe:{name}", self._probe_job(name), s.interval,
                                            first_delay=_spread(name, s.interval))
        for t in self.config.scrape:
            self.scheduler.add_interval_job(f"scrape:{t.name}", self._scrape_job(t.name), t.interval,
                                            first_delay=_spread(t.name, t.interval))
        self.scheduler.add_interval_job("tsdb:gc", self._gc_job, GC_INTERVAL, first_delay=GC_INTERVAL)
        self.leadership.schedule()  # leader:check; alerting:tick and oncall:announce while leading

    def _probe_job(self, name: str):
        async def job() -> None:
            try:
                await self.probes.run(name)
            except asyncio.CancelledError:  # shutdown while the probe ran: not an error
                log.debug("probe cancelled at shutdown", extra={"probe": name})
        return job

    def _scrape_job(self, job_name: str):
        async def job() -> None:
            scraper = self.scrapers.get(job_name)
            if scraper is None:
                return
            try:
                result = await scraper.scrape_once()
            except asyncio.CancelledError:  # shutdown while scraping: not an error
                return
            except Exception:  # noqa: BLE001 - a scrape bug must not stop the scheduler
                log.exception("scrape crashed", extra={"job": job_name})
                self.metrics.scrapes.labels(job_name, "failure").inc()
                return
            self.last_scrape[job_name] = result
            self.metrics.scrapes.labels(job_name, "success" if result.up else "failure").inc()
            if not result.up:
                self.metrics.scrape_errors.labels(job_name, "failed").inc()
                log.warning("scrape failed", extra={"job": job_name, "error": result.error})
            if result.malformed_lines:
                self.metrics.scrape_errors.labels(job_name, "malformed_line").inc(result.malformed_lines)
        return job

    async def _gc_job(self) -> None:
        self.store.gc(int(time.time() * 1000))
        self.update_store_metrics()

    def update_store_metrics(self) -> None:
        """Refresh the ``monitor_tsdb_*`` gauges from the store."""
        self.metrics.tsdb_series.set(self.store.series_count)
        self.metrics.tsdb_samples.set(self.store.sample_count)
        self.metrics.tsdb_rejected_series.set(self.store.rejected_series_total)
        self.metrics.tsdb_out_of_order.set(self.store.out_of_order_total)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the state store, try for the leadership (the leader starts alerting: see
        :mod:`monitor.daemon.leadership`), start rule evaluation, schedule every probe, scrape
        and housekeeping job, and start the scheduler.

        :raises StoreError: the state store cannot be opened.
        """
        self.state = await open_store(self.config.state)
        self.rules.state_store = self.state
        await self.leadership.check()
        self._tasks.append(asyncio.create_task(self.rules.run(), name="rules"))
        self._schedule()
        self.scheduler.start()
        log.info("daemon started", extra={"version": __version__, "probes": len(self.probes.settings),
                                          "scrape_targets": len(self.scrapers)})

    async def stop(self) -> None:
        """Stop scheduling and close shared resources."""
        self.scheduler.shutdown()
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.leadership.stop()
        if self.state is not None:
            try:
                await self.rules.persist()
            finally:
                await self.state.close()
        await self.probes.close()
        await self.http.aclose()
        log.info("daemon stopped")

    def check_reload(self, config: Config) -> list[str]:
        """Validate what ``config`` would load beyond the config file itself (its rule files).

        :return: every error, formatted; empty when ``reload(config)`` may proceed.
        """
        _, errors = self.rules.build(config.resolved_rule_files())
        return errors

    def reload(self, config: Config) -> None:
        """Swap in a new, already validated config (see :meth:`check_reload`): probes and scrape
        targets are rebuilt, rules reloaded with alert state carried over for unchanged rules.

        Jobs of removed probes and targets are removed; samples already stored are kept.
        """
        errors = self.rules.load(config.resolved_rule_files())
        if errors:  # check_reload passed, so only a file changed in between gets here
            raise ConfigErrors([ConfigError(e) for e in errors])
        self.rules.external_labels = dict(config.rules.external_labels)
        old = self.probes
        self.config = config
        self.probes = ProbeRunner(config.probes, self.store, self.metrics, http_client=self.http)
        self.probes.last.update({n: r for n, r in old.last.items() if n in self.probes.settings})
        self._build_scrapers(config)
        for job_id in self.scheduler.job_ids():
            kind, _, name = job_id.partition(":")
            if (kind == "probe" and name not in self.probes.settings) or (
                    kind == "scrape" and name not in self.scrapers):
                self.scheduler.remove_job(job_id)
        if self.scheduler.running:
            self._schedule()
        asyncio.get_running_loop().create_task(old.close())
        self.leadership.reconfigure(config)
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(time.time())

    # -- status ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Return the daemon's own health in the guide's shape (``status``, ``timestamp``,
        ``version``, ``checks``); ``status`` is ``healthy`` or ``degraded``."""
        from datetime import datetime, timezone

        checks = {
            "scheduler": "healthy" if self.scheduler.running else "unhealthy",
            "config": "healthy" if self.metrics.config_reload_ok._value.get() == 1 else "degraded",
            "tsdb": "healthy" if self.store.series_count < self.store.max_series else "degraded",
            "rules": "healthy" if all(st.health != "err" for g in self.rules.groups() for st in g.status)
            else "degraded",
        }
        status = "healthy" if all(v == "healthy" for v in checks.values()) else "degraded"
        checks["leader"] = self.leadership.is_leader  # informative: a follower is healthy too
        return {"status": status, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "version": __version__, "checks": checks}


def _spread(name: str, interval: float) -> float:
    """A stable offset in [0, min(interval, 5 s)) for a job, so equal intervals do not fire together."""
    import zlib

    return (zlib.crc32(name.encode()) % 1000) / 1000 * min(interval, 5.0)
