"""The composition root: build every part of the daemon from a validated ``Config``, and the
narrow interfaces the HTTP API gets instead of the daemon (:func:`api_deps`).

Only this module creates the real shared resources (HTTP client, sample store, metrics
registry, scheduler); every part receives them as constructor arguments (STYLE guideline 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics

from monitor import __version__
from monitor.alerting.intake import from_rule_alert
from monitor.alerting.ports import AlertingPorts
from monitor.alerting.route import build_route
from monitor.api.oncall import OnCallDeps
from monitor.api.statuspage import StatusPageDeps
from monitor.daemon.uptime import FLUSH_INTERVAL as UPTIME_FLUSH_INTERVAL
from monitor.daemon.uptime import UptimeRecorder, probe_components
from monitor.api.deps import (
    AlertingDeps, ApiDeps, ConsoleDeps, MetricsExposition, ProcessDeps, QueryDeps, ReloadResult,
)
from monitor.config.cluster import shard_warnings
from monitor.config.model import Config
from monitor.daemon.console_views import next_maintenance, oncall_now, stored_users
from monitor.daemon.collectors import OnCallCollector, RuleCollector, StoreCounters, update_store_gauges
from monitor.daemon.health import OUTBOX_CHECK_INTERVAL, PagingPathChecks, config_problem, health_document
from monitor.daemon.heartbeat import Heartbeat, HeartbeatMetrics, LagWindow
from monitor.daemon.leadership import Leadership
from monitor.daemon.maintenance_watch import WATCH_INTERVAL, MaintenanceWatch
from monitor.daemon.remote_wiring import RemoteWrite, build_datasource
from monitor.daemon.probing import (ProbeClients, ProbeCollector, ProbeRunner, probe_concurrency, probe_job,
                                    raise_open_files_limit)
from monitor.daemon.scheduler import Scheduler, spread
from monitor.daemon.sharding import LeaderSavesRuleState, ProbeShards
from monitor.daemon.scraping import ScrapeTargets
from monitor.daemon.self_scrape import SELF_SCRAPE_INTERVAL, SelfScrape, merge_metadata, registry_metadata
from monitor.daemon.status_views import alertmanager_status, status_deps
from monitor.errors import ConfigError, ConfigErrors
from monitor.escalation.schedule import OnCallLookup
from monitor.metrics import Metrics
from monitor.promql.adhoc import AdHocQueries
from monitor.promql.engine import Engine
from monitor.scrape.scraper import instance_of
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import RuleText
from monitor.slo.generate import rule_file_text
from monitor.store import open_store
from monitor.store.restores import read_restores
from monitor.tsdb.retention import RetentionRule
from monitor.tsdb.store import SampleStore

log = logging.getLogger("monitor.daemon")

#: Seconds between sample-store retention sweeps.
GC_INTERVAL = 60.0
#: Seconds between looks at whether a sample-store checkpoint is due (``tsdb.checkpoint_interval``).
CHECKPOINT_CHECK_INTERVAL = 60.0


#: The name the generated SLO rules go by, in errors and as their groups' ``file``.
SLO_RULES_NAME = "<slos>"


def rule_sources(config: Config) -> list[Path | RuleText]:
    """Return what the rule manager loads: the rule files, then the rules generated from the
    config's SLOs (``slos:`` and ``slo_files:``) as one in-memory rule file, when there are any."""
    sources: list[Path | RuleText] = list(config.resolved_rule_files())
    slos = config.all_slos()
    if slos:
        sources.append(RuleText(SLO_RULES_NAME, rule_file_text(slos)))
    return sources


class Daemon:
    """One codebook-monitor process: probes and scrapes feed the sample store, the rule manager
    evaluates rules over it, and (on the leader) the alert pipeline routes, escalates and sends.

    Lifecycle: ``await start(stack)`` pushes the close of each part it starts onto ``stack``
    (state store, HTTP client, probes, leadership and alerting, rule evaluation, scheduler), so
    closing the stack shuts down in reverse order, and a start that fails half-way leaves on the
    stack exactly what it started. Without a stack, ``start()`` keeps its own and ``stop()``
    closes it. ``check_reload(config)`` then ``reload(config)`` swap probes, scrape targets,
    rules and receivers in place (samples and alert state are kept); the lifecycle
    (:mod:`monitor.daemon.lifecycle`) reads the file and decides.

    :param config: the validated configuration.
    :param registry: the Prometheus registry for ``/metrics`` (a fresh one by default).
    """

    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        # ``*_created`` series double every counter for no reader's benefit (process-wide switch).
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = SampleStore(
            retention_seconds=config.tsdb.retention, max_series=config.tsdb.max_series,
            retention_rules=[RetentionRule.parse(r.match, r.retention, r.resolution)
                             for r in config.tsdb.retention_rules])
        self.http = httpx.AsyncClient(follow_redirects=False)  # scrapes; probes get clients of their own
        self.lag = LagWindow()  # the heartbeat stops while jobs start badly late
        self.scheduler = Scheduler(self.metrics, on_lag=self.lag.observe)
        raise_open_files_limit()
        self.probe_clients = ProbeClients()
        self.probe_slots = asyncio.Semaphore(probe_concurrency())
        self.uptime = UptimeRecorder(lambda: probe_components(self.config))
        self.probes = self._probe_runner(config)
        self.registry.register(ProbeCollector(lambda: self.probes))
        self.registry.register(StoreCounters(self.store))
        self.scrape = ScrapeTargets(self.store, self.http, self.metrics,
                                    normalize_float_labels=config.rules.promql_compat != "2")
        self.scrape.configure(config.scrape)
        promql: dict[str, Any] = {"compat": config.rules.promql_compat,
                                  "features": frozenset(config.rules.enable_features)}
        self.engine = Engine(self.store, max_series=config.rules.query_max_series,
                             max_samples=config.rules.query_max_samples, timeout=config.rules.query_timeout,
                             **promql)
        # Ad-hoc queries (HTTP API) run in worker processes with engines of their own, never on
        # the loop that probes, evaluates rules and delivers (monitor/promql/adhoc.py).
        self.queries = AdHocQueries(self.store, max_series=config.rules.query_max_series,
                                    max_samples=config.rules.query_max_samples, timeout=config.rules.query_timeout,
                                    **promql)
        self.rules = RuleManager(
            self.store, self.engine, external_labels=config.rules.external_labels,
            resolved_retention=config.rules.resolved_retention,
            default_interval=config.rules.evaluation_interval, on_alerts=self._on_alerts,
            external_url=config.server.external_url, outage_tolerance=config.rules.outage_tolerance,
            for_grace_period=config.rules.for_grace_period, resend_delay=config.rules.resend_delay,
            datasource=build_datasource(config))
        self.remote_write = RemoteWrite(self.registry)
        errors = self.rules.load(rule_sources(config))
        if errors:
            raise ConfigErrors([ConfigError(e) for e in errors])
        self.registry.register(RuleCollector(self.rules))
        self.paging_checks = PagingPathChecks(self.rules, lambda: self.config.health)
        self.heartbeat = Heartbeat(lambda: self.config.heartbeat, self.http, self.paging_checks,
                                   HeartbeatMetrics(self.registry), lag=self.lag)
        self.registry.register(OnCallCollector(self._oncall_lookup))
        ProcessCollector(registry=self.registry)  # process_* metrics: memory, CPU, open fds
        self.self_scrape = SelfScrape(self.registry, self.store,
                                      lambda: instance_of(self.config.server.external_url),
                                      refresh=lambda: update_store_gauges(self.metrics, self.store))
        # logs when a maintenance window opens or closes (pages muted) and since when
        self.maintenance = MaintenanceWatch(lambda: self.config.alerting)
        self.started_at = time.time()
        self.state: Any = None  # the state store, opened by start()
        self._ports: AlertingPorts | None = None  # handed over by the leadership while leading
        self.leadership = Leadership(state=lambda: self.state, config=lambda: self.config, scheduler=self.scheduler,
                                     registry=self.registry, metrics=self.metrics,
                                     on_change=self._set_alerting_ports)
        self.metrics.leader.set(0)
        # cluster.shard_probes: this replica runs only the probes it owns (monitor/daemon/sharding.py)
        self.shards = (ProbeShards(config.cluster, state=lambda: self.state, settings=lambda: self.probes.settings,
                                   on_change=self._sync_probe_jobs, registry=self.registry)
                       if config.cluster.shard_probes else None)
        self._own_stack: contextlib.AsyncExitStack | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._config_problem: str | None = None  # why the last reload was rejected
        self._config_loaded_at = time.time()
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(self._config_loaded_at)

    # -- alerting -----------------------------------------------------------------------------

    def _oncall_lookup(self) -> OnCallLookup:
        """Return who is on call as the escalation sees it (with the overrides made through the
        API) while leading; from the config alone while following."""
        leader = self.leadership.leader
        return leader.escalation.lookup if leader is not None else OnCallLookup.from_config(self.config.alerting)

    def _set_alerting_ports(self, ports: AlertingPorts | None) -> None:
        """Take the alert pipeline's ports from the leadership (``None``: following)."""
        self._ports = ports

    def alerting_ports(self) -> AlertingPorts | None:
        """Return the leader's alert pipeline as the API sees it, or ``None`` on a follower."""
        return self._ports

    @property
    def outbox(self) -> Any:
        """The leader's outbox worker, or ``None`` while following."""
        return self.leadership.worker

    async def _on_alerts(self, alerts: list[Any]) -> None:
        """Receive the firing and newly resolved alerts of one group evaluation: hand them to
        the alert pipeline (routing, mutes, outbox, escalation); a follower drops them."""
        ports = self.alerting_ports()
        if ports is not None:
            # As Prometheus sends them: startsAt when fired, endsAt the validity of a firing
            # alert (refreshed each evaluation), the external labels added.
            url = f"{self.config.server.external_url}/api/v1/alerts"
            ext = self.config.rules.external_labels
            converted = [c for a in alerts if (c := from_rule_alert(a, url, ext)) is not None]
            await ports.intake.ingest(converted, source="rules")

    # -- jobs -------------------------------------------------------------------------------

    def _probe_runner(self, config: Config) -> ProbeRunner:
        runner = ProbeRunner(config.probes, self.store, self.metrics, clients=self.probe_clients,
                             slots=self.probe_slots, kind_resources={"backup": {"restore_log": self._restores}})
        runner.on_result.append(self.uptime.observe)  # the status page's daily uptime
        return runner

    async def _restores(self) -> dict[str, dict[str, float]]:
        """Return the recorded test restores, for the ``backup`` probe (none before the store is open)."""
        return await read_restores(self.state) if self.state is not None else {}

    def _schedule_probes(self, *, only_changes: bool = False) -> None:
        """Schedule every probe's job (sharded: the owned probes', removing the others); with
        ``only_changes``, leave the jobs already scheduled as they are."""
        shards = self.shards
        existing = self.scheduler.job_ids() if only_changes else set()
        for name, s in self.probes.settings.items():
            job_id = f"probe:{name}"
            if shards is not None and name not in shards.owned:
                self.scheduler.remove_job(job_id)
            elif job_id not in existing:
                admit = shards.may_run if shards is not None else None
                self.scheduler.add_interval_job(job_id, probe_job(lambda: self.probes, name, admit), s.interval,
                                                phase=spread(job_id, s.interval))

    def _sync_probe_jobs(self) -> None:
        """Add the jobs of probes this replica gained, remove those of probes it lost (sharding)."""
        if self.scheduler.running:
            self._schedule_probes(only_changes=True)

    def _schedule(self) -> None:
        self._schedule_probes()
        if self.shards is not None:
            interval = self.shards.interval
            self.scheduler.add_interval_job("cluster:heartbeat", self.shards.beat, interval,
                                            first_delay=interval)
        for t in self.config.scrape:
            job_id = f"scrape:{t.name}"
            self.scheduler.add_interval_job(job_id, self.scrape.job(t.name), t.interval,
                                            phase=spread(job_id, t.interval))
        # monitor_* / process_* into the store, so PromQL (Grafana on the daemon) sees them
        self.scheduler.add_interval_job("self:scrape", self.self_scrape.run, SELF_SCRAPE_INTERVAL,
                                        phase=spread("self:scrape", SELF_SCRAPE_INTERVAL))
        self.scheduler.add_interval_job("tsdb:gc", self._gc_job, GC_INTERVAL, first_delay=GC_INTERVAL)
        if self.store.durable:
            sync = self.config.tsdb.sync_interval
            self.scheduler.add_interval_job("tsdb:sync", self._sync_job, sync, first_delay=sync)
            self.scheduler.add_interval_job("tsdb:checkpoint", self._checkpoint_job, CHECKPOINT_CHECK_INTERVAL,
                                            first_delay=CHECKPOINT_CHECK_INTERVAL)
        if self.remote_write.writers:
            sync = self.config.tsdb.sync_interval
            self.scheduler.add_interval_job("remote:sync", self._remote_sync_job, sync, first_delay=sync)
        self.scheduler.add_interval_job("health:outbox", self._outbox_check_job, OUTBOX_CHECK_INTERVAL,
                                        first_delay=OUTBOX_CHECK_INTERVAL)
        self.scheduler.add_interval_job("status:uptime", self._uptime_job, UPTIME_FLUSH_INTERVAL,
                                        first_delay=UPTIME_FLUSH_INTERVAL)
        if self.config.heartbeat is not None:
            self.scheduler.add_interval_job("heartbeat", self._heartbeat_job, self.config.heartbeat.interval,
                                            first_delay=spread("heartbeat", self.config.heartbeat.interval))
        else:
            self.scheduler.remove_job("heartbeat")
        self.scheduler.add_interval_job("maintenance:watch", self.maintenance.job, WATCH_INTERVAL,
                                        first_delay=WATCH_INTERVAL)
        self.leadership.schedule()  # leader:check; alerting:tick and oncall:announce while leading

    async def _heartbeat_job(self) -> None:
        await self.heartbeat.beat()

    async def _uptime_job(self) -> None:
        await self.uptime.flush(self.state, time.time())

    async def _outbox_check_job(self) -> None:
        await self.paging_checks.read_outbox(self.state)

    async def _gc_job(self) -> None:
        self.store.gc(int(time.time() * 1000))
        update_store_gauges(self.metrics, self.store)

    async def _sync_job(self) -> None:
        """Write the samples appended since the last run to the WAL; fsync off the loop."""
        try:
            await asyncio.to_thread(self.store.flush())
        except asyncio.CancelledError:  # shutdown while fsyncing: the store's close syncs again
            pass

    async def _remote_sync_job(self) -> None:
        await self.remote_write.sync(self.store)

    async def _checkpoint_job(self) -> None:
        """Checkpoint the sample store when ``tsdb.checkpoint_interval`` has passed since the last one."""
        if not self.store.checkpoint_due(int(time.time() * 1000), self.config.tsdb.checkpoint_interval):
            return
        try:
            await self.store.checkpoint()
        except OSError as e:  # disk full: the WAL is kept and the next look tries again
            log.error("sample store checkpoint failed", extra={"error": str(e)})

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, stack: contextlib.AsyncExitStack | None = None) -> None:
        """Open the sample store (replaying its WAL, when ``tsdb.path`` is set) and the state
        store, try for the leadership (the leader starts alerting: see
        :mod:`monitor.daemon.leadership`), start rule evaluation, schedule every probe, scrape
        and housekeeping job, and start the scheduler; push each part's close onto ``stack``.

        :param stack: where the closes go (the lifecycle's); ``None``: a stack of the daemon's
            own, closed by :meth:`stop` (or at once, when the start fails).
        :raises StoreError: the state store or the sample store's directory (``tsdb.path``) cannot
            be opened.
        :raises ValueError: a job cannot be scheduled.
        """
        if stack is not None:
            await self._start(stack)
            return
        self._own_stack = contextlib.AsyncExitStack()
        try:
            await self._start(self._own_stack)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close what :meth:`start` started without a stack, in reverse order (no-op otherwise)."""
        stack, self._own_stack = self._own_stack, None
        if stack is not None:
            await stack.aclose()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        stack.callback(log.info, "daemon stopped")
        stack.callback(self.queries.close)
        if self.rules.datasource is not None:
            stack.push_async_callback(self.rules.datasource.client.aclose)
        # Before the store opens: its close flushes the last samples into the queues, then they close.
        await self.remote_write.start(self.config, self.store, stack)
        tsdb_path = self.config.resolved_tsdb_path()
        if tsdb_path is not None:
            # Replay before anything appends or evaluates; closed (flushed, fsynced) last but one.
            self.store.open(tsdb_path)
            stack.callback(self.store.close)
        self.state = await open_store(self.config.state)
        stack.push_async_callback(self._close_state)
        if self.shards is not None:  # leave the cluster once the probes are closed (the stack unwinds in reverse)
            stack.push_async_callback(self.shards.leave)
        self.rules.state_store = (self.state if self.shards is None else
                                  LeaderSavesRuleState(self.state, lambda: self.leadership.is_leader))
        await self.paging_checks.read_outbox(self.state)  # /health knows the backlog from the start
        stack.push_async_callback(self.http.aclose)
        stack.push_async_callback(self._close_probes)
        stack.push_async_callback(self._drain_background)  # closes a reload left running
        await self.leadership.check()
        stack.push_async_callback(self._stop_alerting)
        if self.shards is not None:
            for warning in shard_warnings(self.config):
                log.warning(warning)
            await self.shards.beat()  # the first view: which probes are ours
        rules_task = asyncio.create_task(self.rules.run(), name="rules")
        stack.push_async_callback(_cancel, rules_task)
        stack.callback(self.scheduler.shutdown)
        self._schedule()
        self.scheduler.start()
        log.info("daemon started", extra={"version": __version__, "probes": len(self.probes.settings),
                                          "scrape_targets": len(self.scrape)})
        self.maintenance.check()  # a window open now: say so at once (pages are muted)

    async def _close_state(self) -> None:
        """Save the rule alerts' state and the uptime counts not yet written, then close the store
        (last: every other part may use it)."""
        try:
            await self.rules.persist(force=True)
            await self.uptime.flush(self.state, time.time())
        finally:
            await self.state.close()

    async def _close_probes(self) -> None:
        """Close the running probes (the ones of the latest reload); runs in flight are cancelled."""
        await self.probes.close(grace=0)
        await self.probe_clients.aclose()

    async def _drain_background(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _stop_alerting(self) -> None:
        await self.leadership.stop()

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` without waiting for it (kept referenced until done; awaited at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- reload -------------------------------------------------------------------------------

    def check_reload(self, config: Config) -> list[str]:
        """Validate what ``config`` would load beyond the config file itself (its rule files).

        :return: every error, formatted; empty when ``reload(config)`` may proceed.
        """
        _, errors = self.rules.build(rule_sources(config))
        return errors

    def reload(self, config: Config) -> None:
        """Swap in a new, already validated config (see :meth:`check_reload`): probes and scrape
        targets are rebuilt, rules reloaded with alert state carried over for unchanged rules.

        Jobs of removed probes and targets are removed; samples already stored are kept.
        """
        self.rules.resend_delay = config.rules.resend_delay  # for the groups load builds
        errors = self.rules.load(rule_sources(config))
        if errors:  # check_reload passed, so only a file changed in between gets here
            raise ConfigErrors([ConfigError(e) for e in errors])
        self.rules.external_labels = dict(config.rules.external_labels)
        self.rules.outage_tolerance = config.rules.outage_tolerance
        self.rules.for_grace_period = config.rules.for_grace_period
        old = self.probes
        self.config = config
        self.probes = self._probe_runner(config)
        self.probes.last.update({n: r for n, r in old.last.items() if n in self.probes.settings})
        if self.shards is not None:
            self.shards.rebalance(self.shards.view)  # added probes, after a hand-over delay
        self.scrape.configure(config.scrape)
        for job_id in self.scheduler.job_ids():
            kind, _, name = job_id.partition(":")
            if (kind == "probe" and name not in self.probes.settings) or (
                    kind == "scrape" and name not in self.scrape):
                self.scheduler.remove_job(job_id)
        if self.scheduler.running:
            self._schedule()
        self._in_background(old.close())
        self.leadership.reconfigure(config)
        self._config_problem = None
        self._config_loaded_at = time.time()
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(self._config_loaded_at)

    def reload_rejected(self, errors: list[str] | None = None) -> None:
        """Record a rejected reload: ``monitor_config_last_reload_successful 0`` and ``/health``
        config ``degraded: config reload failed: <first error>, running the config loaded at <time>``
        until a reload succeeds (the running configuration is unchanged; see
        :func:`monitor.daemon.health.config_problem`)."""
        self._config_problem = config_problem(errors or [], self._config_loaded_at)
        self.metrics.config_reload_ok.set(0)

    # -- status ---------------------------------------------------------------------------------

    def config_status(self) -> tuple[bool, float]:
        """Return whether the last reload succeeded and when the running configuration was loaded."""
        return self._config_problem is None, self._config_loaded_at

    def health(self) -> dict[str, Any]:
        """Return the daemon's own health document (:func:`monitor.daemon.health.health_document`)."""
        return health_document(scheduler_running=self.scheduler.running, config_problem=self._config_problem,
                               store=self.store, rules=self.rules, is_leader=self.leadership.is_leader,
                               paging=self.paging_checks)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


_routes: dict[int, tuple[Any, Any]] = {}


def route_of(config: Config) -> Any:
    """Return the routing tree of ``config.alerting.route`` (``None`` without one), built once per config."""
    cached = _routes.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    route = build_route(config.alerting.route) if config.alerting.route is not None else None
    _routes.clear()
    _routes[id(config)] = (config, route)
    return route


def api_deps(daemon: Daemon, reload: Callable[[], ReloadResult]) -> ApiDeps:
    """Build what the HTTP API reads from ``daemon``.

    :param reload: reloads the configuration file (the lifecycle's, shared with SIGHUP).
    """
    return ApiDeps(
        settings=lambda: daemon.config.api,
        process=ProcessDeps(health=daemon.health,
                            metrics=MetricsExposition(daemon.registry,
                                                      lambda: update_store_gauges(daemon.metrics, daemon.store)),
                            reload=reload),
        queries=QueryDeps(probes=lambda: daemon.probes, rules=daemon.rules, engine=daemon.queries,
                          catalog=daemon.store, metadata=lambda: merge_metadata(daemon.scrape.metadata(),
                                                                          registry_metadata(daemon.registry)),
                          target_metadata=lambda: daemon.scrape.target_metadata(),
                          status=status_deps(daemon, daemon.started_at)),
        # Slack signatures are claimed in the state store (open once the daemon has started).
        alerting=AlertingDeps(ports=daemon.alerting_ports, claims=lambda: daemon.state,
                              route=lambda: route_of(daemon.config),
                              receivers=lambda: [r.name for r in daemon.config.receivers],
                              status=lambda: alertmanager_status(daemon)),
        oncall=OnCallDeps(alerting=lambda: daemon.config.alerting, store=lambda: daemon.state),
        status_page=StatusPageDeps(config=lambda: daemon.config, probes=lambda: daemon.probes,
                                   store=lambda: daemon.state, clock=time.time),
        console=ConsoleDeps(settings=lambda: daemon.config.console, users=lambda: stored_users(daemon.state),
                            oncall=lambda now: oncall_now(daemon.config, now),
                            maintenance=lambda now: next_maintenance(daemon.config, now)),
    )
