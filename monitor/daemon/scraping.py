"""The daemon's scrape targets: one :class:`~monitor.scrape.scraper.Scraper` per ``scrape:`` entry, kept
across reloads while the target is unchanged, and the scheduler job that runs each.

Outcomes are counted in ``monitor_scrapes_total{job, result}`` and
``monitor_scrape_errors_total{job, reason}``: ``failed`` for every failed scrape, and ``parse`` besides
for one failed by an exposition that breaks the format (its ``line N: reason`` is logged by the
scraper). :meth:`ScrapeTargets.metadata` is the targets' families' metadata, for ``/api/v1/metadata``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

from monitor.config.model import ScrapeTarget
from monitor.metrics import Metrics
from monitor.scrape.limits import ScrapeLimits
from monitor.scrape.scraper import Scraper, ScrapeResult
from monitor.tsdb.store import SampleStore

log = logging.getLogger("monitor.daemon")


def _limits(t: ScrapeTarget) -> ScrapeLimits:
    return ScrapeLimits(body_size_limit=t.body_size_limit, sample_limit=t.sample_limit, label_limit=t.label_limit,
                        label_name_length_limit=t.label_name_length_limit,
                        label_value_length_limit=t.label_value_length_limit)


def _key(t: ScrapeTarget) -> tuple[Any, ...]:
    """Return what makes a target the same target: a change in any of it rebuilds the scraper."""
    return (t.url, t.timeout, tuple(sorted(t.labels.items())), t.honor_labels, _limits(t))


class ScrapeTargets:
    """The scrapers of the configured targets.

    :param store: where scraped samples go.
    :param client: the shared HTTP client (owned by the daemon).
    :param metrics: the daemon's metrics (scrape outcomes).

    Example (what the daemon does)::

        targets = ScrapeTargets(store, client, metrics)
        targets.configure(config.scrape)            # at start and on every reload
        scheduler.add_interval_job("scrape:api", targets.job("api"), 15.0)
    """

    def __init__(self, store: SampleStore, client: httpx.AsyncClient, metrics: Metrics, *,
                 normalize_float_labels: bool = True) -> None:
        self._store = store
        self.normalize_float_labels = normalize_float_labels  # le/quantile as Prometheus 3 stores them
        self._client = client
        self._metrics = metrics
        self.scrapers: dict[str, Scraper] = {}
        self._keys: dict[str, tuple[Any, ...]] = {}
        #: The last result of each target, by job name.
        self.last: dict[str, ScrapeResult] = {}

    def configure(self, targets: Iterable[ScrapeTarget]) -> None:
        """(Re)build the scrapers: an unchanged target keeps its scraper (and its staleness
        tracking); a removed or changed one marks its series stale."""
        old, old_keys = self.scrapers, self._keys
        self.scrapers, self._keys = {}, {}
        for t in targets:
            key = _key(t)
            prev = old.pop(t.name, None)
            if prev is not None and old_keys.get(t.name) == key:
                self.scrapers[t.name], self._keys[t.name] = prev, key
                continue
            if prev is not None:
                prev.stop()
            self.scrapers[t.name] = Scraper(t.name, t.url, self._store, client=self._client, timeout=t.timeout,
                                            labels=t.labels, honor_labels=t.honor_labels, limits=_limits(t),
                                            normalize_float_labels=self.normalize_float_labels)
            self._keys[t.name] = key
        for gone in old.values():
            gone.stop()

    def __len__(self) -> int:
        return len(self.scrapers)

    def __contains__(self, name: object) -> bool:
        return name in self.scrapers

    def job(self, name: str) -> Callable[[], Awaitable[None]]:
        """Return the scheduler job scraping target ``name`` once (nothing once it is removed).

        The job never raises: a failure is counted and logged.
        """
        async def scrape() -> None:
            scraper = self.scrapers.get(name)
            if scraper is None:
                return
            try:
                result = await scraper.scrape_once()
            except asyncio.CancelledError:  # shutdown while scraping: not an error
                return
            except Exception:  # noqa: BLE001 - a scrape bug must not stop the scheduler
                log.exception("scrape crashed", extra={"job": name})
                self._metrics.scrapes.labels(name, "failure").inc()
                return
            self._record(name, result)
        return scrape

    def _record(self, name: str, result: ScrapeResult) -> None:
        self.last[name] = result
        self._metrics.scrapes.labels(name, "success" if result.up else "failure").inc()
        if not result.up:
            # logged by the scraper itself: when it starts failing, every 5 minutes, once recovered
            self._metrics.scrape_errors.labels(name, "failed").inc()
        if result.reason == "parse":
            self._metrics.scrape_errors.labels(name, "parse").inc()

    def target_metadata(self) -> list[tuple[dict[str, str], dict[str, dict[str, str]]]]:
        """Return ``[(target labels, {family: {"type", "help", "unit"}})]``: each target's labels
        (``job``, ``instance`` and its configured ones) and its last good scrape's metadata."""
        return [(dict(s.target_labels), {name: meta.api() for name, meta in s.metadata.items()})
                for s in self.scrapers.values()]

    def metadata(self) -> dict[str, list[dict[str, str]]]:
        """Return ``{family: [{"type", "help", "unit"}]}`` of every target's last good scrape, each
        distinct entry once (as Prometheus's ``/api/v1/metadata`` merges targets)."""
        out: dict[str, list[dict[str, str]]] = {}
        for scraper in self.scrapers.values():
            for family, meta in scraper.metadata.items():
                entry = meta.api()
                entries = out.setdefault(family, [])
                if entry not in entries:
                    entries.append(entry)
        return out
