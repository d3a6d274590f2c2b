"""codebook-monitor: probes, a sample store, PromQL rules, alerting and escalation in one daemon."""

__version__ = "0.1.0"
