"""Configuration for a real Alertmanager and a real Prometheus, generated from ``monitor.yaml``.

For teams that already run Prometheus and Alertmanager beside this daemon; the
``codebook-monitor export alertmanager|prometheus`` commands (:mod:`monitor.cli_export`) write it.

- :mod:`monitor.export.alertmanager`: ``alertmanager.yml`` from the ``alerting:`` section and
  ``receivers:``.
- :mod:`monitor.export.prometheus`: ``prometheus.yml`` that scrapes this daemon and the backend,
  loads the rule files and sends alerts to this daemon.
- :mod:`monitor.export.document`: :class:`~monitor.export.document.Export` (data, secret files,
  warnings) and :func:`~monitor.export.document.render`, the YAML text with its explaining header.
"""
