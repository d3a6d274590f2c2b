"""Run Prometheus v3.5.0's PromQL test scripts (shared/conformance/promql-v3) through our engine.

The scripts live beside the repository (``<repo>/../shared/conformance``), never inside it
(see tests.support.conformance): without them these tests skip, or fail under ``CI=true``.
The engine runs with its defaults (Prometheus 3 semantics) and every feature flag enabled, as
Prometheus's own test runner does. Cases that need native histograms are skipped by name and
never counted as passed; every case it runs must pass (delayed name removal on, as in Prometheus's runner).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.promql.promqltest import FileReport, run_file
from tests.support.conformance import conformance_dir, missing_conformance

CONFORMANCE = conformance_dir("promql-v3")
FILES = sorted(CONFORMANCE.glob("*.test")) if CONFORMANCE.is_dir() else []
MIN_PASS_RATIO = 1.0
_REPORTS: dict[str, FileReport] = {}


def _report(path: Path) -> FileReport:
    rep = _REPORTS.get(path.name)
    if rep is None:
        rep = _REPORTS[path.name] = run_file(path)
    return rep


def test_conformance_data_is_present() -> None:
    """Without the scripts every case below skips; under ``CI=true`` this fails the run instead."""
    if not FILES:
        missing_conformance(CONFORMANCE)


@pytest.mark.skipif(not FILES, reason=f"conformance data not found at {CONFORMANCE}")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_conformance_file(path: Path) -> None:
    """Each file runs; its report (passes, failures, skips by name) is printed."""
    report = _report(path)
    print(report.summary())
    assert all(why for _, why in report.skipped)


@pytest.mark.skipif(not FILES, reason=f"conformance data not found at {CONFORMANCE}")
def test_conformance_total() -> None:
    """The whole v3 set passes every case that needs no native histograms."""
    reports = [_report(p) for p in FILES]
    passed = sum(r.passed for r in reports)
    ran = passed + sum(len(r.failed) for r in reports)
    failures = [f"{name}: {why}" for r in reports for name, why in r.failed]
    assert ran > 0
    assert passed / ran >= MIN_PASS_RATIO, f"{passed} of {ran} passed:\n" + "\n".join(failures)
