"""Run Prometheus's PromQL test scripts (shared/conformance/promql, v2.53.5) through our engine.

The scripts live beside the repository (``<repo>/../shared/conformance``), never inside it
(see tests.support.conformance): without them these tests skip, or fail under ``CI=true``.
The engine runs with ``promql_compat: "2"`` (the 2.x semantics these scripts test). Each file
must pass at least 97% of the cases it runs; skipped cases (native histograms,
unsupported directives) are listed with their reason and never counted as passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.promql.promqltest import run_file
from tests.support.conformance import conformance_dir, missing_conformance

CONFORMANCE = conformance_dir("promql")
FILES = sorted(CONFORMANCE.glob("*.test")) if CONFORMANCE.is_dir() else []
MIN_PASS_RATIO = 0.97


def test_conformance_data_is_present() -> None:
    """Without the scripts every case below skips; under ``CI=true`` this fails the run instead."""
    if not FILES:
        missing_conformance(CONFORMANCE)


@pytest.mark.skipif(not FILES, reason=f"conformance data not found at {CONFORMANCE}")
@pytest.mark.parametrize("result_cache", [True, False], ids=["cache", "nocache"])
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_conformance_file(path: Path, result_cache: bool) -> None:
    report = run_file(path, result_cache=result_cache, compat="2")
    print(report.summary())
    assert report.passed + len(report.failed) > 0, f"{path.name}: no case ran"
    assert report.pass_ratio >= MIN_PASS_RATIO, report.summary()
