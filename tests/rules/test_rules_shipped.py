"""The shipped rules (rules/*.yaml) and their promtool-format unit tests (rules/tests/*.yaml)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.rules.rulefmt import load_rule_files
from monitor.rules.unittest import run_test_files

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))
TEST_FILES = sorted((ROOT / "rules" / "tests").glob("*.yaml"))
RUNBOOK = "https://github.com/codebook-ai/codebook-monitor/blob/main/README.md#runbook-"


def shipped_rules():
    specs, errors = load_rule_files(RULE_FILES)
    assert errors == []
    return [r for s in specs for g in s.groups for r in g.rules]


def test_shipped_rule_files_validate():
    assert RULE_FILES and len(shipped_rules()) >= 20


def test_every_alert_has_severity_summary_description_and_runbook():
    for r in shipped_rules():
        if r.kind != "alert":
            continue
        # "none" only for the dead-man's switch, which must never page a person.
        assert r.labels["severity"] in (("none",) if r.name == "Watchdog" else ("critical", "warning")), r.name
        assert set(r.annotations) == {"summary", "description", "runbook_url"}, r.name
        assert r.annotations["runbook_url"] == RUNBOOK + r.name.lower(), r.name


def test_the_operations_guide_alerts_are_all_there():
    sev = {r.name: r.labels.get("severity") for r in shipped_rules() if r.kind == "alert"}
    assert sev == {
        "HighErrorRate": "critical", "HighApiLatency": "critical", "DatabaseConnectionPoolExhausted": "critical",
        "DiskSpaceLow": "critical", "DatabaseDown": "critical", "PineconeDown": "critical",
        "LLMProviderDown": "critical", "BackendDown": "critical", "DatabaseBackupTooOld": "critical",
        "ElevatedErrorRate": "warning", "JobQueueBacklog": "warning", "LLMErrorRateHigh": "warning",
        "LLMTokenQuotaHigh": "warning", "TLSCertificateExpiringSoon": "warning",
        "BackendDegraded": "warning", "PineconeBackupTooOld": "warning", "BackupSourceUnreadable": "warning",
        "RestoreTestMissing": "warning", "RestoreSlowerThanRTO": "warning",
        # LLM spend and headroom (the spend alert is also a warning at 80 %, in its own group)
        "LLMMonthlySpendOverBudget": "critical", "LLMSpendForecastOverBudget": "warning",
        "LLMTokenQuotaExhaustionSoon": "warning", "LLMProviderTokenLimitExhaustionSoon": "warning",
        "Watchdog": "none",  # self-monitoring: the always-firing dead-man's switch
    }


def test_every_shipped_rule_has_a_unit_test():
    fired: set[str] = set()
    silent: set[str] = set()
    exprs: set[str] = set()
    for f in TEST_FILES:
        doc = yaml.safe_load(f.read_text())
        for tg in doc["tests"]:
            for a in tg.get("alert_rule_test") or []:
                (fired if a.get("exp_alerts") else silent).add(a["alertname"])
            exprs |= {e["expr"] for e in tg.get("promql_expr_test") or []}
    for r in shipped_rules():
        if r.kind == "alert":
            assert r.name in fired, f"{r.name}: no test that it fires"
            if r.name != "Watchdog":  # always firing by design: there is no silent case
                assert r.name in silent, f"{r.name}: no test that it stays silent"
        else:
            assert r.name in exprs, f"{r.name}: no promql_expr_test"


#: Test files known to disagree under Prometheus 3's left-open windows (README "Rules and alerts").
#: None: slo_test.yaml was one until its input samples moved off the evaluation grid.
COMPAT3_KNOWN: set[str] = set()


@pytest.mark.parametrize("compat", ["3", "2"])
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_shipped_unit_tests_pass_with_our_runner(test_file, compat):
    """Under Prometheus 3's semantics (the default) and 2's (promtool 2.x, as installed here)."""
    if compat == "3" and test_file.name in COMPAT3_KNOWN:
        pytest.xfail("values at a window boundary differ under left-open windows (COMPAT3_KNOWN)")
    out = io.StringIO()
    assert run_test_files([test_file], out, compat=compat) == 0, out.getvalue()
    assert out.getvalue().count("SUCCESS") == 1


def test_the_compat3_exceptions_still_fail_under_3():
    """An exception that starts passing must leave :data:`COMPAT3_KNOWN` (strict)."""
    for test_file in TEST_FILES:
        if test_file.name in COMPAT3_KNOWN:
            assert run_test_files([test_file], io.StringIO(), compat="3") != 0, test_file.name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_shipped_rules_pass_real_promtool():
    check = subprocess.run(["promtool", "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", *map(str, TEST_FILES)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr
