"""``rules.promql_compat`` and ``rules.enable_features`` reach every engine the daemon makes
(rule evaluation, ad-hoc queries) and the scrapes' label normalisation."""

from __future__ import annotations

from monitor.config.loader import load_config_text
from monitor.daemon.wiring import Daemon


async def _daemon(tmp_path, rules: str) -> Daemon:
    cfg = load_config_text(f"rules:\n{rules}", base_dir=tmp_path)
    return Daemon(cfg)


async def test_defaults_are_prometheus_3(tmp_path):
    d = await _daemon(tmp_path, "  evaluation_interval: 15s\n")
    try:
        assert d.engine.compat == "3" and d.engine.features == frozenset()
        assert d.queries._engine_args["compat"] == "3"
        assert d.scrape.normalize_float_labels is True
    finally:
        await d.http.aclose()


async def test_compat_2_and_features(tmp_path):
    d = await _daemon(tmp_path, '  promql_compat: "2"\n  enable_features: [promql-experimental-functions]\n')
    try:
        assert d.engine.compat == "2" and d.engine.features == frozenset({"promql-experimental-functions"})
        assert d.queries._engine_args["features"] == frozenset({"promql-experimental-functions"})
        assert d.scrape.normalize_float_labels is False
        assert d.engine.instant_query("holt_winters(vector(1)[5m:1m], 0.5, 0.5)", 600_000) is not None
    finally:
        await d.http.aclose()
