"""The Prometheus test-script runner itself: notation, comparison, skipping, reporting."""

from __future__ import annotations

import math
from pathlib import Path

from monitor.promql.promqltest import almost_equal, expand_values, main, run_file
from monitor.tsdb.series import STALE_NAN, is_stale


def test_expand_values():
    assert expand_values(["0+10x3"]) == [0, 10, 20, 30]
    assert expand_values(["1-1x3"]) == [1, 0, -1, -2]
    assert expand_values(["5x3"]) == [5, 5, 5, 5]
    assert expand_values(["_", "1", "_x2"]) == [None, 1, None, None]
    vals = expand_values(["stale", "NaN", "Inf", "-Inf", "1e3"])
    assert is_stale(vals[0]) and math.isnan(vals[1]) and not is_stale(vals[1])
    assert vals[2:] == [math.inf, -math.inf, 1000.0]


def test_almost_equal():
    assert almost_equal(1.0, 1.0 + 1e-9)
    assert not almost_equal(1.0, 1.001)
    assert almost_equal(math.nan, math.nan)
    assert not almost_equal(STALE_NAN, math.nan)
    assert almost_equal(STALE_NAN, STALE_NAN)
    assert almost_equal(0.0, 0.0) and not almost_equal(0.0, 1e-300)


SCRIPT = """\
load 1m
  x{job="a"} 0+1x10
  y 1 _ stale 4

eval instant at 5m x
  x{job="a"} 5

eval instant at 5m sum(x)
  {} 5

eval instant at 5m 1 + 1
  2

eval instant at 5m "hello"
  "hello"

eval instant at 5m x
  x{job="a"} 6

eval_fail instant at 5m nope_fn(x)

eval_fail instant at 5m x

eval_ordered instant at 5m sort_desc(x or vector(100))
  {} 100
  x{job="a"} 5

eval instant at 2m y

eval instant at 5m histogram_quantile(0.5, x)
  {{schema:0 count:1}} 1

frobnicate everything

eval range from 0 to 2m step 1m x
  x{job="a"} 0 1 2

clear

eval instant at 5m x

load 1m
  nh {{schema:0 sum:1 count:1}}x3
  plain 1

eval instant at 1m nh

eval instant at 1m plain
  plain 1
"""


def test_run_file_counts_and_names(tmp_path: Path, capsys):
    path = tmp_path / "sample.test"
    path.write_text(SCRIPT)
    rep = run_file(path)
    assert rep.passed == 10
    assert [name for name, _ in rep.failed] == ["sample.test:17 x", "sample.test:22 x"]
    assert "expected 6.0" in rep.failed[0][1]
    assert "expected an error" in rep.failed[1][1]
    reasons = dict(rep.skipped)
    assert reasons["sample.test:30 histogram_quantile(0.5, x)"] == "uses native histograms ({{...}})"
    assert "unsupported directive 'frobnicate'" in reasons["sample.test:33 frobnicate everything"]
    assert reasons["sample.test:46 nh"] == "reads native-histogram series"
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "passed 10, failed 2, skipped 3" in out and "SKIP sample.test:30" in out


SCRIPT_V3 = """\
load 1m
  x{job="a"} 0+1x10

clear
load 1m
  x{job="b"} 0+2x10

load_with_nhcb 1m
  h_bucket{le="1"} 0+1x10
  h_bucket{le="+Inf"} 0+2x10

eval instant at 5m x
expect no_warn
x{job="b"} 10

eval instant at 5m x
  expect ordered
  x{job="b"} 10

eval instant at 5m nope_fn(x)
  expect fail msg: unknown function with name "nope_fn"

eval instant at 5m x
  expect fail

eval_warn instant at 5m x
  x{job="b"} 10

eval instant at 5m x
  expect info regex: some.*info
  x{job="b"} 10

eval instant at 5m h_bucket{le="1"}
  h_bucket{le="1"} 5

eval instant at 5m histogram_count(h)
  {} 10

eval instant at 5m x
  expect sometimes
"""


def test_run_file_3x_language(tmp_path: Path):
    path = tmp_path / "v3.test"
    path.write_text(SCRIPT_V3)
    rep = run_file(path)
    # clear takes no body (its next line is a command); expected lines need no indent; a
    # load_with_nhcb loads the float series and names the native histogram it would make.
    assert rep.passed == 6, rep.summary()
    assert [name for name, _ in rep.failed] == ["v3.test:23 x", "v3.test:39 x"]
    assert "expected an error" in rep.failed[0][1] and "unknown expect line" in rep.failed[1][1]
    assert dict(rep.skipped) == {"v3.test:36 histogram_count(h)": "reads native-histogram series"}
    unchecked = dict(rep.unchecked)
    assert set(unchecked) == {"v3.test:20 nope_fn(x)", "v3.test:26 x", "v3.test:29 x"}
    assert "expects a warn annotation" in unchecked["v3.test:26 x"]
    assert "passed without checking an annotation or error message: 3" in rep.summary()


def test_main_prints_the_total_and_takes_compat(tmp_path: Path, capsys):
    path = tmp_path / "w.test"
    path.write_text("load 1m\n  x 1 2\n\neval instant at 1m count_over_time(x[1m])\n  {} 1\n")
    assert main(["--compat", "2", str(path)]) == 1  # [0s, 1m] has both samples
    assert main([str(path)]) == 0  # (0s, 1m]: one
    out = capsys.readouterr().out
    assert "TOTAL (compat 2): passed 0 of 1" in out and "TOTAL (compat 3): passed 1 of 1 (100.0 %)" in out
