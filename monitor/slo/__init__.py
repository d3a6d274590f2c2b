"""Service level objectives: the model, Sloth/OpenSLO converters and the rule generator.

:mod:`monitor.slo.model` (the :class:`~monitor.slo.model.SLO`), :mod:`monitor.slo.sloth` and
:mod:`monitor.slo.openslo` (foreign formats -> SLO), :mod:`monitor.slo.generate` (SLO -> Prometheus
rule groups). Pure data in, data out: the config layer validates ``slos:`` with it, the daemon loads
the generated groups into the rule manager, the CLI writes them for a real Prometheus.
"""
