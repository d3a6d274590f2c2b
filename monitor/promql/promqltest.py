"""A runner for Prometheus's PromQL test scripts (``promql/promqltest/testdata/*.test``).

Format (Prometheus v2.53 ``promql/promqltest/test.go``)::

    load 5m
      http_requests{job="api", instance="0"} 0+10x10 _ stale 1-1x3 5x3
    eval instant at 50m sum(http_requests)
      {} 100
    eval_ordered instant at 50m sort(http_requests)
    eval_fail instant at 0m some_bad_query
    eval range from 0 to 10m step 1m some_query     (later versions; supported)
    clear

``load`` series expand ``a+bxn`` to ``a, a+b, ..., a+n*b`` (``a-bxn`` likewise, ``axn`` is
``a`` n+1 times, ``_xn`` n missing samples); sample i lies at ``i * step``. Expected values are
compared as Prometheus does (``almostEqual``: relative epsilon 1e-6, NaN equals NaN).
Cases using native histograms (``{{...}}``) or unknown directives are skipped with the reason,
never counted as passed.

Command line: ``python -m monitor.promql.promqltest DIR_OR_FILE...`` prints, per file, the
passed/failed/skipped counts and every failure and skip reason; exit status 1 if any failed.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import promql_parser as pp

from monitor.errors import QueryError
from monitor.promql.compat import KNOWN_FEATURES, V3_ONLY_FEATURES
from monitor.promql.engine import Engine
from monitor.promql.nodes import selected_metric_names
from monitor.promql.value import Matrix, Sample, Scalar, String, Vector
from model.labels import METRIC_NAME, Labels
from monitor.tsdb.series import STALE_NAN, is_stale

EPSILON = 1e-6
MIN_NORMAL = 2.2250738585072014e-308

_EVAL_RE = re.compile(r"^(eval(?:_fail|_ordered|_warn|_info)?)\s+instant\s+at\s+(\S+)\s+(.+)$")
_RANGE_RE = re.compile(
    r"^(eval(?:_fail|_ordered|_warn|_info)?)\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$")
_EXPECT_RE = re.compile(r"^expect\s+(fail|warn|info|no_warn|no_info|ordered)(?:\s+(msg|regex)\s*:\s*(.*))?$")
#: Every feature flag the scripts may use: Prometheus 3.5's test engine enables them all, delayed
#: name removal included (``promqltest.NewTestEngine``: ``EnableDelayedNameRemoval: true``).
#: Under ``compat="2"`` the 3.x-only ones are left out (2.53 had no delayed name removal).
ALL_FEATURES = KNOWN_FEATURES
_NUM = r"(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?[Ii]nf|[Nn]a[Nn])"
_SEQ_RE = re.compile(rf"^(?P<a>{_NUM})(?:(?P<op>[-+])(?P<b>{_NUM}))?x(?P<n>\d+)$")


@dataclass
class FileReport:
    """Outcome of one test file: counts and reasons, each case named ``file:line expr``."""

    path: str
    passed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: passed cases whose annotation or error-message expectation was not checked.
    unchecked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pass_ratio(self) -> float:
        """Passed / (passed + failed); 1.0 when nothing ran."""
        ran = self.passed + len(self.failed)
        return self.passed / ran if ran else 1.0

    def summary(self) -> str:
        """Return the per-file line and every failure and skip reason."""
        lines = [f"{self.path}: passed {self.passed}, failed {len(self.failed)}, skipped {len(self.skipped)}"
                 f" (passed without checking an annotation or error message: {len(self.unchecked)})"]
        lines += [f"  FAIL {name}: {why}" for name, why in self.failed]
        lines += [f"  SKIP {name}: {why}" for name, why in self.skipped]
        lines += [f"  UNCHECKED {name}: {why}" for name, why in self.unchecked]
        return "\n".join(lines)


def almost_equal(a: float, b: float, epsilon: float = EPSILON) -> bool:
    """Prometheus ``almostEqual``: NaN equals NaN, else relative difference below ``epsilon``
    (absolute near zero); a staleness marker only equals a staleness marker."""
    if is_stale(a) or is_stale(b):
        return is_stale(a) and is_stale(b)
    if a != a and b != b:
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < MIN_NORMAL:
        return diff < epsilon * MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < epsilon


def parse_duration_ms(s: str) -> int:
    """Parse a Prometheus duration (``5m``, ``1h30m``) or plain seconds into ms."""
    try:
        return round(float(s) * 1000)
    except ValueError:
        pass
    if not re.fullmatch(r"(?:\d+(?:ms|y|w|d|h|m|s))+", s):
        raise ValueError(f"bad duration {s!r}")
    return sum(int(num) * _UNITS[unit] for num, unit in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", s))


_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
          "y": 31_536_000_000}


def parse_number(tok: str) -> float:
    """Parse a value token (numbers, ``Inf``, ``NaN``, ``stale``)."""
    if tok == "stale":
        return STALE_NAN
    try:
        return float(tok)
    except ValueError:
        return float(int(tok, 0))


def expand_values(tokens: list[str]) -> list[float | None]:
    """Expand a load line's value tokens; ``None`` is a missing sample (``_``)."""
    out: list[float | None] = []
    for tok in tokens:
        if tok == "_":
            out.append(None)
            continue
        m = re.fullmatch(r"(_|stale)x(\d+)", tok)
        if m:
            out.extend([None if m.group(1) == "_" else STALE_NAN] * int(m.group(2)))
            continue
        m = _SEQ_RE.match(tok)
        if m:
            a = parse_number(m.group("a"))
            b = parse_number(m.group("b")) if m.group("b") else 0.0
            if m.group("op") == "-":
                b = -b
            cur = a
            out.append(cur)
            for _ in range(int(m.group("n"))):
                cur += b
                out.append(cur)
            continue
        out.append(parse_number(tok))
    return out


def split_series_line(line: str) -> tuple[str, str]:
    """Split ``metric{labels} rest`` into the descriptor and the rest (quotes respected)."""
    line = line.strip()
    brace = line.find("{")
    space = re.search(r"\s", line)
    if brace == -1 or (space is not None and space.start() < brace):
        if space is None:
            return line, ""
        return line[: space.start()], line[space.start():].strip()
    i, quote = brace + 1, None
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c == "}":
            return line[: i + 1], line[i + 1:].strip()
        i += 1
    raise ValueError(f"unterminated label set in {line!r}")


def parse_labels(desc: str) -> Labels:
    """Parse a series descriptor (``name{a="b"}``, ``{__name__="x"}``, ``{}``) into labels."""
    desc = desc.strip()
    if desc == "{}":
        return Labels()
    try:
        sel = pp.parse(desc)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise ValueError(f"bad series descriptor {desc!r}: {e}") from None
    if not isinstance(sel, pp.VectorSelector):
        raise ValueError(f"bad series descriptor {desc!r}")
    d = {m.name: m.value for m in sel.matchers.matchers}
    if sel.name:
        d[METRIC_NAME] = sel.name
    return Labels.of(d)


@dataclass
class _Case:
    name: str
    expr: str
    start: int
    end: int
    step: int
    expected: list[tuple[Labels | None, list[float | None]]]
    fail: bool = False
    ordered: bool = False
    #: ``warn``/``info`` expectations and expected error messages: our engine reports no
    #: annotations and words its errors its own way, so these are listed, never checked.
    unchecked: list[str] = field(default_factory=list)
    fmt_error: str = ""
    expected_string: str | None = None


def _default_store_factory() -> Any:
    from monitor.tsdb.store import SampleStore

    return SampleStore(retention_seconds=None)


def script_blocks(text: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """Split a script into commands as ``promqltest`` ``getLines``/``parse`` does: a command
    line and the non-empty lines after it, up to an empty line or a comment (``clear`` takes
    none: the next line is a command).

    :return: ``[(line_number, command, [(line_number, body_line)])]``, lines stripped.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    lines = ["" if ln.startswith("#") else ln for ln in lines]
    out: list[tuple[int, str, list[tuple[int, str]]]] = []
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i] and lines[start] != "clear":
            body.append((i + 1, lines[i]))
            i += 1
        out.append((start + 1, lines[start], body))
    return out


def run_file(path: str | Path, store_factory: Callable[[], Any] = _default_store_factory, *,
             result_cache: bool = True, compat: str = "3",
             features: frozenset[str] = ALL_FEATURES) -> FileReport:
    """Run one test script against a fresh store and :class:`Engine`.

    :param path: the ``.test`` file (v2.53 or v3.x language).
    :param store_factory: builds an empty sample store (default ``SampleStore``).
    :param result_cache: whether the engine shares results between queries (its default).
    :param compat: the engine's PromQL semantics, ``"3"`` or ``"2"`` (``rules.promql_compat``).
    :param features: the engine's enabled feature flags (default: all, as ``promqltest`` does;
        the 3.x-only ones dropped under ``compat="2"``).
    :return: the :class:`FileReport`.
    """
    path = Path(path)
    if compat == "2":
        features = features - V3_ONLY_FEATURES
    report = FileReport(str(path))
    cache = 200_000 if result_cache else 0
    native: set[str] = set()  # metric names loaded as native histograms (not stored)

    def new_engine() -> tuple[Any, Engine]:
        store = store_factory()
        return store, Engine(store, result_cache_samples=cache, compat=compat, features=features)

    store, engine = new_engine()
    for lineno, line, block in script_blocks(path.read_text()):
        word = line.split()[0]
        if word == "clear":
            store, engine = new_engine()
            native.clear()
            continue
        if word in ("load", "load_with_nhcb"):
            native |= _load(store, line, block, nhcb=word == "load_with_nhcb")
            continue
        if word.startswith("eval"):
            case = _parse_eval(path.name, lineno, line, block)
            if case is None:
                report.skipped.append((f"{path.name}:{lineno} {line}", f"unsupported directive {word!r}"))
                continue
            if "{{" in line or any("{{" in b for _, b in block):
                report.skipped.append((case.name, "uses native histograms ({{...}})"))
                continue
            if native:
                try:
                    names = selected_metric_names(case.expr)
                except QueryError:
                    names = set()
                if names is None or names & native:
                    report.skipped.append((case.name, "reads native-histogram series"))
                    continue
            err = case.fmt_error or _run_case(engine, case)
            if err:
                report.failed.append((case.name, err))
            else:
                report.passed += 1
                if case.unchecked:
                    report.unchecked.append((case.name, "; ".join(case.unchecked)))
            continue
        report.skipped.append((f"{path.name}:{lineno} {line}", f"unsupported directive {word!r}"))
    return report


def _load(store: Any, line: str, block: list[tuple[int, str]], *, nhcb: bool = False) -> set[str]:
    """Append a ``load`` block; a series listed twice keeps the later value per timestamp
    (as Prometheus's test storage does).

    :param nhcb: ``load_with_nhcb``: the float series are loaded, and Prometheus also loads
        each classic histogram as a native one named without ``_bucket``/``_count``/``_sum``,
        which we do not (its name is returned).
    :return: the metric names of native-histogram series, which are not loaded.
    """
    parts = line.split()
    step = parse_duration_ms(parts[1])
    series: dict[Labels, dict[int, float]] = {}
    native: set[str] = set()
    for _, text in block:
        desc, rest = split_series_line(text)
        if "{{" in rest:
            native.add(parse_labels(desc).name)
            continue
        labels = parse_labels(desc)
        if nhcb:
            native.add(re.sub(r"_(bucket|count|sum)$", "", labels.name))
        points = series.setdefault(labels, {})
        for k, v in enumerate(expand_values(rest.split())):
            if v is not None:
                points[k * step] = v
    for labels, points in series.items():
        for t in sorted(points):
            store.append(labels, t, points[t])
    return native


def _parse_eval(fname: str, lineno: int, line: str, block: list[tuple[int, str]]) -> _Case | None:
    m = _EVAL_RE.match(line)
    if m:
        kind, at, expr = m.groups()
        start = end = parse_duration_ms(at)
        step = 0
    else:
        m = _RANGE_RE.match(line)
        if not m:
            return None
        kind, s, e, st, expr = m.groups()
        start, end, step = parse_duration_ms(s), parse_duration_ms(e), parse_duration_ms(st)
    case = _Case(f"{fname}:{lineno} {expr}", expr, start, end, step, [],
                 fail=kind == "eval_fail", ordered=kind == "eval_ordered")
    if kind in ("eval_warn", "eval_info"):
        case.unchecked.append(f"expects a {kind[5:]} annotation")
    for _, t in block:
        if t.startswith("expected_fail_message") or t.startswith("expected_fail_regexp"):
            case.unchecked.append(f"expects the error {t.split(None, 1)[-1]!r}")
            continue
        ex = _EXPECT_RE.match(t)
        if ex:
            what, how, text = ex.groups()
            if what == "fail":
                case.fail = True
                if how:
                    case.unchecked.append(f"expects the error ({how}) {text!r}")
            elif what == "ordered":
                case.ordered = True
            elif what in ("warn", "info"):
                case.unchecked.append(f"expects a {what} annotation" + (f" ({how}) {text!r}" if how else ""))
            continue  # no_warn / no_info: the engine reports no annotations at all
        if t.startswith("expect"):
            case.fmt_error = f"unknown expect line {t!r}"
            continue
        try:
            if t[:1] in "\"'`" and len(t) > 1 and t[-1] == t[0]:
                case.expected_string = t[1:-1]
            elif re.fullmatch(_NUM, t) or t == "stale":
                case.expected.append((None, [parse_number(t)]))
            else:
                desc, rest = split_series_line(t)
                case.expected.append((parse_labels(desc), expand_values(rest.split())))
        except (ValueError, KeyError) as e:
            case.fmt_error = f"cannot parse expected line {t!r}: {e}"
    return case


def _fmt(v: float) -> str:
    return "stale" if is_stale(v) else repr(v)


def _run_case(engine: Engine, case: _Case) -> str:
    """Run one case; return ``""`` when it passes, else the reason."""
    try:
        if case.step:
            result: Any = engine.range_query(case.expr, case.start, case.end, case.step)
        else:
            result = engine.instant_query(case.expr, case.start)
    except QueryError as e:
        if case.fail:
            return ""
        return f"unexpected error: {e}"
    except Exception as e:  # noqa: BLE001 - a crash is a failure of this case, not of the run
        return f"engine crashed: {type(e).__name__}: {e}"
    if case.fail:
        return "expected an error, got a result"
    if case.step:
        return _compare_matrix(case, result)
    err = _compare_instant(case, result)
    if err or case.ordered or isinstance(result, (String, Matrix)):
        return err
    # As Prometheus's test.go: the same query in range mode (t-1m .. t+1m, step 1m) must give
    # the same result at its middle step.
    try:
        mat = engine.range_query(case.expr, case.start - 60_000, case.start + 60_000, 60_000)
    except QueryError as e:
        return f"range mode: unexpected error: {e}"
    except Exception as e:  # noqa: BLE001
        return f"range mode: engine crashed: {type(e).__name__}: {e}"
    vec = Vector()
    for series in mat:
        for t, v in series.points:
            if t == case.start:
                vec.append(Sample(series.labels, t, v))
                break
    if isinstance(result, Scalar):
        err = _compare_instant(case, Scalar(case.start, vec[0].v if vec else math.nan))
    else:
        err = _compare_instant(case, vec)
    return f"range mode: {err}" if err else ""


def _compare_instant(case: _Case, result: Any) -> str:
    if isinstance(result, Scalar):
        if len(case.expected) != 1 or case.expected[0][0] not in (None, Labels()):
            return f"expected {len(case.expected)} series, got scalar {result.v!r}"
        exp = case.expected[0][1][0]
        if exp is None or not almost_equal(exp, result.v):
            return f"expected scalar {exp!r}, got {result.v!r}"
        return ""
    if isinstance(result, String):
        if case.expected_string is None:
            return f"unexpected string result {result.v!r}"
        return "" if result.v == case.expected_string else f"expected {case.expected_string!r}, got {result.v!r}"
    if case.expected_string is not None:
        return f"expected string {case.expected_string!r}, got {type(result).__name__}"
    if isinstance(result, Matrix):
        return "received range result on instant evaluation"
    assert isinstance(result, Vector)
    if any(lb is None for lb, _ in case.expected):
        return f"expected a scalar, got a vector of {len(result)}"
    by_labels = {lb: (pos, vals[0]) for pos, (lb, vals) in enumerate(case.expected)}
    if len(by_labels) != len(result):
        got = ", ".join(f"{s.labels} {_fmt(s.v)}" for s in result[:10])
        return f"expected {len(by_labels)} samples, got {len(result)}: [{got}]"
    for pos, s in enumerate(result):
        e = by_labels.get(s.labels)
        if e is None:
            return f"unexpected sample {s.labels} {_fmt(s.v)}"
        if case.ordered and e[0] != pos:
            return f"expected {s.labels} at position {e[0]}, got position {pos}"
        if e[1] is None or not almost_equal(e[1], s.v):
            return f"expected {e[1]!r} for {s.labels}, got {_fmt(s.v)}"
    return ""


def _compare_matrix(case: _Case, result: Matrix) -> str:
    exp = {}
    for lb, vals in case.expected:
        pts = [(case.start + k * case.step, v) for k, v in enumerate(vals) if v is not None]
        exp[lb if lb is not None else Labels()] = pts
    if len(exp) != len(result):
        return f"expected {len(exp)} series, got {len(result)}"
    for series in result:
        e = exp.get(series.labels)
        if e is None:
            return f"unexpected series {series.labels}"
        if len(e) != len(series.points) or any(
            te != tg or not almost_equal(ve, vg) for (te, ve), (tg, vg) in zip(e, series.points)
        ):
            return f"expected {e} for {series.labels}, got {series.points}"
    return ""


def main(argv: list[str] | None = None) -> int:
    """Run every ``.test`` file given (or found in given directories); print the reports and
    the total (``--compat 2`` for the 2.x semantics). Exit status 1 if any case failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    compat = "3"
    if len(args) >= 2 and args[0] == "--compat":
        compat, args = args[1], args[2:]
    if not args or compat not in ("2", "3"):
        print("usage: python -m monitor.promql.promqltest [--compat 2|3] DIR_OR_FILE...", file=sys.stderr)
        return 2
    files: list[Path] = []
    for a in args:
        p = Path(a)
        if not p.exists():
            print(f"{a}: no such file or directory", file=sys.stderr)
            return 2
        files.extend(sorted(p.glob("*.test")) if p.is_dir() else [p])
    passed = failed = skipped = unchecked = 0
    for f in files:
        rep = run_file(f, compat=compat)
        print(rep.summary())
        passed += rep.passed
        failed += len(rep.failed)
        skipped += len(rep.skipped)
        unchecked += len(rep.unchecked)
    ran = passed + failed
    print(f"TOTAL (compat {compat}): passed {passed} of {ran} ({100 * passed / ran if ran else 100:.1f} %), "
          f"failed {failed}, skipped {skipped}; passed without checking an annotation or error message: "
          f"{unchecked}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
