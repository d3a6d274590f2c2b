"""Scrape Prometheus ``/metrics`` endpoints into the sample store.

- :mod:`monitor.scrape.scraper`: :class:`~monitor.scrape.scraper.Scraper`, one per target (the
  request, target labels, report series, staleness), and :func:`~monitor.scrape.scraper.instance_of`;
- :mod:`monitor.scrape.exposition`: the strict text-format / OpenMetrics parser
  (:class:`~monitor.scrape.exposition.ExpositionParser`, :func:`~monitor.scrape.exposition.parse_exposition`,
  :class:`~monitor.scrape.exposition.ExpositionError`), each family's metadata, and the ingest
  normalisation of ``le`` / ``quantile`` values; :mod:`monitor.scrape.lines` reads one line;
- :mod:`monitor.scrape.limits`: :class:`~monitor.scrape.limits.ScrapeLimits`, Prometheus's
  ``scrape_config`` limits, and :class:`~monitor.scrape.limits.ScrapeLimitExceeded`.
"""
