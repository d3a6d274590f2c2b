"""Run Prometheus's PromQL test scripts (shared/conformance/promql, v2.53.5) through our engine.

The scripts live beside the repository (``<repo>/../shared/conformance``), never inside it.
Each file must pass at least 97% of the cases it runs; skipped cases (native histograms,
unsupported directives) are listed with their reason and never counted as passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.promql.promqltest import run_file

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO_ROOT / ".." / "shared" / "conformance" / "promql"
FILES = sorted(CONFORMANCE.glob("*.test")) if CONFORMANCE.is_dir() else []
MIN_PASS_RATIO = 0.97


@pytest.mark.skipif(not FILES, reason=f"conformance data not found at {CONFORMANCE}")
@pytest.mark.parametrize("result_cache", [True, False], ids=["cache", "nocache"])
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_conformance_file(path: Path, result_cache: bool) -> None:
    report = run_file(path, result_cache=result_cache)
    print(report.summary())
    assert report.passed + len(report.failed) > 0, f"{path.name}: no case ran"
    assert report.pass_ratio >= MIN_PASS_RATIO, report.summary()
