"""Our rule-test runner agrees with promtool (issue 5, "agreement with the real tools").

`codebook-monitor test-rules FILE` and `promtool test rules FILE` must give the same verdict on
every shipped rule test (both pass), on a passing control and on the deliberately failing files
in tests/shipped/failing/ (both fail, and on the same test cases). promtool also checks the
shipped rule files themselves. Skipped with the reason when promtool is not installed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from monitor.cli import main
from tests.shipped.shipped_helpers import HERE, ROOT, require_tool

SHIPPED_TESTS = sorted((ROOT / "rules" / "tests").glob("*.yaml"))
FAILING = sorted((HERE / "failing").glob("*.yaml"))
CASES = [(p, 0) for p in SHIPPED_TESTS] + [(HERE / "passing_control_test.yaml", 0)] + [(p, 1) for p in FAILING]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _failure_keys(output: str) -> list[str]:
    """The lines naming what failed (``name: ...``, ``alertname: ..., time: ...``, ``expr: ...``)."""
    keys = []
    for line in output.splitlines():
        s = line.strip()
        if s.startswith(("name:", "alertname:", "expr:")):
            keys.append(s)
    return keys


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


#: The promtool installed here (Debian's) is 2.x: compare with our runner under 2.x semantics
#: (range windows closed on the left); promtool 3 agrees with the default.
PROMTOOL_COMPAT = ["--promql-compat", "2"]


def test_the_failing_set_covers_the_required_cases():
    names = {p.stem for p in FAILING}
    assert {"wrong_value_test", "missing_alert_test", "extra_label_test"} <= names
    assert SHIPPED_TESTS, "rules/tests/ has no test files"


@pytest.mark.parametrize("path,expected", CASES, ids=[_rel(p) for p, _ in CASES])
def test_same_verdict_as_promtool(path, expected, capsys):
    ours = main(["test-rules", *PROMTOOL_COMPAT, str(path)])
    our_output = capsys.readouterr().out
    theirs = _promtool("test", "rules", str(path))
    assert (ours != 0) == (theirs.returncode != 0), (
        f"verdicts differ on {_rel(path)}: ours {ours}, promtool {theirs.returncode}\n"
        f"--- ours\n{our_output}\n--- promtool\n{theirs.stdout}{theirs.stderr}")
    assert (ours != 0) == bool(expected), f"{_rel(path)}: expected {'failure' if expected else 'success'}"
    if expected:
        # both fail, and on the same test cases
        assert _failure_keys(our_output) == _failure_keys(theirs.stdout + theirs.stderr)
        assert _failure_keys(our_output), our_output


def test_promtool_tests_every_shipped_file_at_once():
    r = _promtool("test", "rules", *[_rel(p) for p in SHIPPED_TESTS])
    assert r.returncode == 0, r.stdout + r.stderr
    assert main(["test-rules", *PROMTOOL_COMPAT, *[str(p) for p in SHIPPED_TESTS]]) == 0


def test_promtool_checks_the_shipped_rules():
    files = sorted((ROOT / "rules").glob("*.yaml"))
    r = _promtool("check", "rules", *[_rel(p) for p in files])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(files)
