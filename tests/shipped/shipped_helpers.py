"""Helpers for the shipped-artefact tests.

:func:`exported_metric_names` computes, from the code, every metric name a dashboard may use:
the daemon's registry, every ``*Metrics`` class of ``monitor`` (built on a fresh registry),
the probes' ``METRICS`` dicts, the example config's SQL gauges, the recording rules' ``record:``
names and the sample backend's registry. :func:`shipped_config` is examples/monitor.yaml with the
shipped routing and its receivers merged in.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import re
import shutil
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLE_CONFIG = ROOT / "examples" / "monitor.yaml"
SHIPPED_ROUTING = ROOT / "tests" / "alerting" / "shipped_alerting.yaml"
SHIPPED_RECEIVERS = HERE / "shipped_receivers.yaml"
#: Secrets the merged config names (values are fakes; they must never reach an export).
FAKE_ENV = {name: f"fake-{name.lower()}-0123456789" for name in (
    "PD_ROUTING_KEY", "SLACK_BOT_TOKEN", "SMTP_PASSWORD", "PD_KEY_ALICE", "PD_KEY_BOB", "PD_KEY_CAROL",
    "PD_KEY_ERIN", "PD_KEY_CTO")}

#: Sample-name suffixes of each metric family type (client_python exposition).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
}


def require_tool(name: str) -> str:
    """Return the path of ``name`` on PATH, or skip the test with the reason."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH (Debian: apt-get install prometheus prometheus-alertmanager)")
    return path


def family_sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name ``registry`` exposes or would expose once its labelled children exist."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return {n for n in names if not n.endswith("_created")}


def _metrics_classes() -> list[type]:
    """Every class named ``*Metrics`` in ``monitor`` whose constructor takes just a registry."""
    import monitor

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(monitor.__path__, "monitor."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - an optional dependency missing is not our concern here
            continue
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and name.endswith("Metrics") and obj.__module__ == module.__name__):
                continue
            params = list(inspect.signature(obj).parameters.values())
            if len(params) == 1 and params[0].name == "registry":
                found[f"{obj.__module__}.{name}"] = obj
    return list(found.values())


def load_example_config():
    """examples/monitor.yaml, loaded as the daemon loads it."""
    from monitor.config.loader import load_config

    return load_config(EXAMPLE_CONFIG, env={})


def shipped_config(**overrides):
    """examples/monitor.yaml with the shipped routing and the receivers it names merged in.

    :param overrides: top-level sections to replace (e.g. ``server={"host": ..., "port": ...}``).
    """
    from monitor.config.loader import load_config_text

    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data.update(yaml.safe_load(SHIPPED_ROUTING.read_text()))
    data.update(yaml.safe_load(SHIPPED_RECEIVERS.read_text()))
    data.update(overrides)
    return load_config_text(yaml.safe_dump(data, sort_keys=False), str(EXAMPLE_CONFIG),
                            base_dir=EXAMPLE_CONFIG.parent, env=FAKE_ENV)


def recording_rule_names() -> set[str]:
    """The ``record:`` names of every shipped rule file and of the shipped SLOs' generated rules."""
    names = set()
    for path in [*sorted((ROOT / "rules").glob("*.yaml")), ROOT / "examples" / "slos.rules.yaml"]:
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            names.update(r["record"] for r in group.get("rules", []) if "record" in r)
    return names


@lru_cache(maxsize=1)
def exported_metric_names() -> frozenset[str]:
    """Every metric name the project exports, computed from the code (see the module docstring)."""
    from examples.sample_backend import SampleBackend
    from monitor.daemon.probing import COMMON_HELP
    from monitor.daemon.wiring import Daemon
    from probes import PROBES

    config = load_example_config()
    names: set[str] = set()
    daemon = Daemon(config)
    try:
        names |= family_sample_names(daemon.registry)
    finally:
        asyncio.run(daemon.http.aclose())
    for cls in _metrics_classes():
        names |= family_sample_names(_build(cls))
    names |= set(COMMON_HELP)
    for cls in PROBES.values():
        names |= set(getattr(cls, "METRICS", {}))
    for probe in config.probes:
        names |= {q.name for q in getattr(probe, "queries", [])}
    names |= recording_rule_names()
    names |= family_sample_names(SampleBackend(seed=1, traffic_rps=0).registry)
    return frozenset(names)


def _build(cls: type) -> CollectorRegistry:
    registry = CollectorRegistry()
    cls(registry)
    return registry


#: Grafana's built-in variables, replaced by typical values before parsing.
GRAFANA_BUILTINS = {
    "__rate_interval": "5m", "__interval": "1m", "__range": "6h", "__range_s": "21600",
    "__range_ms": "21600000", "__interval_ms": "60000", "__rate_interval_ms": "300000",
}
_VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana variables: built-ins by :data:`GRAFANA_BUILTINS`, dashboard variables by
    ``.*`` (their "All" value; they only appear inside regex matchers)."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return GRAFANA_BUILTINS.get(name, ".*")
    return _VAR_RE.sub(repl, expr)
