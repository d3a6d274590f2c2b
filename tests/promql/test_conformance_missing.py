"""A missing conformance folder skips the PromQL conformance tests locally and fails them under CI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.conformance import ENV, REPO_ROOT, conformance_dir, in_ci, missing_conformance


@pytest.mark.parametrize("value,expected", [("true", True), ("True", True), ("1", True), ("", False),
                                            ("false", False), ("0", False)])
def test_ci_flag(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_the_environment_variable_moves_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path))
    assert conformance_dir("promql") == tmp_path / "promql"
    monkeypatch.delenv(ENV)
    assert conformance_dir("promql") == REPO_ROOT.parent / "shared" / "conformance" / "promql"


def test_missing_data_skips_locally(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="conformance data not found at"):
        missing_conformance(tmp_path / "nowhere")


def test_missing_data_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"conformance data not found at .*nowhere.*{ENV}"):
        missing_conformance(tmp_path / "nowhere")


def _run_conformance_tests(tmp_path, ci: str) -> subprocess.CompletedProcess:
    """Run tests/promql/test_conformance.py in a fresh pytest pointed at a folder that does not exist."""
    env = {**os.environ, "CI": ci, ENV: str(tmp_path / "missing")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/promql/test_conformance.py"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_run_without_the_data_passes_locally(tmp_path):
    run = _run_conformance_tests(tmp_path, ci="false")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "conformance data not found at" in run.stdout and "skipped" in run.stdout


def test_a_run_without_the_data_fails_under_ci(tmp_path):
    run = _run_conformance_tests(tmp_path, ci="true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and f"{tmp_path / 'missing' / 'promql'}" in run.stdout
