"""The Grafana dashboards: :mod:`dashboards.panels` (helpers) and :mod:`dashboards.generate` (the dashboards).

Not part of the installed distribution; run from the repository root: ``python -m dashboards.generate``.
"""
