"""Unit tests of rules in promtool's ``test rules`` format, run on our own store and engine.

File format and semantics follow Prometheus ``cmd/promtool/unittest.go`` and the "Unit Testing for
Rules" documentation::

    rule_files: [../api.yaml]          # relative to the test file; globs allowed
    evaluation_interval: 1m
    group_eval_order: [g1, g2]         # optional partial order
    tests:
      - name: error rate fires         # optional
        interval: 1m                   # spacing of input samples (default: evaluation_interval)
        external_labels: {env: prod}
        input_series:
          - series: 'http_requests_total{status="500"}'
            values: '0+10x20 _ stale 1-1x3 5x2 _x3'
        alert_rule_test:
          - eval_time: 10m
            alertname: HighErrorRate
            exp_alerts: [{exp_labels: {severity: critical}, exp_annotations: {summary: ...}}]
        promql_expr_test:
          - expr: sum(up)
            eval_time: 1m
            exp_samples: [{labels: '{job="a"}', value: 1}]

Every group is evaluated at 0, evaluation_interval, ... up to the largest ``eval_time``; an alert
test at ``eval_time`` is checked after the evaluation at the last step at or before it, and only
**firing** alerts count (pending ones are not in ``exp_alerts``). Rules load with
``require_severity=False`` so promtool-style files without our severity policy work.
"""

from __future__ import annotations

import glob
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import yaml

from monitor.promql.engine import Engine
from monitor.promql.value import Scalar, Vector
from monitor.rules.alerting import AlertState
from monitor.rules.manager import RuleManager
from monitor.rules.rulefmt import parse_duration
from model.duration import format_duration
from monitor.tsdb.series import STALE_NAN, is_stale
from model.labels import Labels
from monitor.tsdb.store import SampleStore

__all__ = ["run_test_files", "run_test_file", "expand_values", "parse_series"]

_NUM = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii]nf|NaN|nan)"
_VALUE_RE = re.compile(rf"^(?P<a>{_NUM})"
                       r"(?:(?P<op>[+-])(?P<b>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)x(?P<n>\d+)|x(?P<m>\d+))?$")
_BLANK_RE = re.compile(r"^_(?:x(?P<n>\d+))?$")
_SERIES_RE = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(?P<labels>.*)\})?\s*$", re.S)
_LABEL_RE = re.compile(r"""\s*(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"""
                       r"""(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)""")


#: The most points one series' ``values`` may expand to (``1+1x99999999999`` would exhaust memory).
MAX_SERIES_POINTS = 1_000_000


def _num(s: str) -> float:
    return float(s.replace("Inf", "inf").replace("NaN", "nan"))


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's series notation into values; ``None`` is a missing sample (``_``).

    ``'1+2x3'`` -> 1 3 5 7; ``'5-1x2'`` -> 5 4 3; ``'7x2'`` -> 7 7 7; ``'_x2'`` -> _ _;
    ``'stale'`` -> the staleness marker. Increments are added repeatedly, as Prometheus's lexer does.

    :raises ValueError: on a token that is not in the notation, or when the values expand to
        more than :data:`MAX_SERIES_POINTS` points.
    """
    out: list[float | None] = []

    def room(tok: str, n: int) -> None:
        if len(out) + n > MAX_SERIES_POINTS:
            raise ValueError(f"series values expand to more than {MAX_SERIES_POINTS} points (at {tok!r})")

    for tok in str(text).split():
        if tok == "stale":
            room(tok, 1)
            out.append(STALE_NAN)
            continue
        m = _BLANK_RE.match(tok)
        if m:
            n = int(m.group("n")) if m.group("n") else 1
            room(tok, n)
            out.extend([None] * n)
            continue
        m = _VALUE_RE.match(tok)
        if not m:
            raise ValueError(f"invalid value {tok!r} in series values")
        room(tok, 1 + int(m.group("n") or m.group("m") or 0))
        a = _num(m.group("a"))
        out.append(a)
        if m.group("n") is not None:
            b = float(m.group("b")) * (-1 if m.group("op") == "-" else 1)
            k = a
            for _ in range(int(m.group("n"))):
                k += b
                out.append(k)
        elif m.group("m") is not None:
            out.extend([a] * int(m.group("m")))
    return out


def parse_series(text: str) -> Labels:
    """Parse ``metric{a="b", c='d'}`` (promql ``ParseMetric``) into a label set.

    :raises ValueError: when it is not a series description.
    """
    m = _SERIES_RE.match(text)
    if not m or (m.group("name") is None and m.group("labels") is None):
        raise ValueError(f"invalid series {text!r}")
    d: dict[str, str] = {}
    if m.group("name"):
        d["__name__"] = m.group("name")
    body = (m.group("labels") or "").strip()
    pos = 0
    while pos < len(body):
        lm = _LABEL_RE.match(body, pos)
        if not lm:
            raise ValueError(f"invalid label matcher in series {text!r}")
        v = lm.group("v")
        d[lm.group("k")] = v[1:-1] if v[0] == "`" else yaml.safe_load('"' + v[1:-1].replace('"', '\\"') + '"') \
            if v[0] == "'" else yaml.safe_load(v)
        pos = lm.end()
    return Labels.of(d)


def _fmt_e(v: float) -> str:
    """Go ``strconv.FormatFloat(v, 'E', -1, 64)``: ``1E+00``, ``2.5E-01``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exp = Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    x = len(digits) + int(exp) - 1 if v != 0 else 0
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mant}E{'-' if x < 0 else '+'}{abs(x):02d}"


def _labels_str(d: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}"


def _alerts_str(items: list[tuple[Labels, Labels]]) -> str:
    if not items:
        return "[]"
    parts = []
    for i, (lb, an) in enumerate(items):
        parts.append(f"{i}:\n  Labels:{_labels_str(dict(lb))}\n  Annotations:{_labels_str(dict(an))}")
    return "[\n" + ",\n".join(parts) + "\n]"


def _indent(s: str, ind: str) -> str:
    lines = s.split("\n")
    return "\n".join([lines[0]] + [ind + ln for ln in lines[1:]])


@dataclass
class _Ctx:
    path: Path
    eval_interval: float
    order: list[str]
    rule_files: list[str]
    fuzzy: bool = False
    compat: str = "3"


def _dur(v: Any, what: str) -> float:
    try:
        return parse_duration(str(v))
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def _run_group(ctx: _Ctx, tg: Mapping[str, Any]) -> list[str]:
    """Run one test group; return the failure messages (promtool's wording)."""
    interval = _dur(tg.get("interval") or ctx.eval_interval, "interval") if tg.get("interval") else ctx.eval_interval
    ext = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    store = SampleStore(retention_seconds=None)
    engine = Engine(store, default_subquery_step_ms=int(ctx.eval_interval * 1000), compat=ctx.compat)
    batch = []
    for s in tg.get("input_series") or []:
        lbl = parse_series(str(s["series"]))
        try:
            values = expand_values(str(s.get("values", "")))
        except ValueError as e:
            raise ValueError(f"{ctx.path}: input_series {s['series']}: {e}") from None
        for i, v in enumerate(values):
            if v is not None:
                batch.append((lbl, int(round(i * interval * 1000)), v))
    batch.sort(key=lambda x: x[1])
    for lbl, t_ms, v in batch:
        if is_stale(v):
            store.mark_stale(lbl, t_ms)
        else:
            store.append(lbl, t_ms, v)
    mgr = RuleManager(store, engine, external_labels=ext, require_severity=False,
                      default_interval=ctx.eval_interval, external_url=str(tg.get("external_url", "")))
    groups, errs = mgr.build(ctx.rule_files)
    if errs:
        return errs
    pos = {n: i for i, n in enumerate(ctx.order)}
    groups.sort(key=lambda g: pos.get(g.name, len(pos)))

    alert_tests = list(tg.get("alert_rule_test") or [])
    expr_tests = list(tg.get("promql_expr_test") or [])
    for a in alert_tests:
        if not a.get("alertname"):
            return ["an item under alert_rule_test misses required attribute alertname "
                    f"at eval_time {a.get('eval_time')}"]
    times = [_dur(a.get("eval_time", 0), "eval_time") for a in alert_tests]
    max_t = max(times + [_dur(e.get("eval_time", 0), "eval_time") for e in expr_tests] + [0.0])
    by_time: dict[float, list[Mapping[str, Any]]] = {}
    for t, a in zip(times, alert_tests):
        by_time.setdefault(t, []).append(a)
    pending_times = sorted(by_time)
    name = f"    name: {tg['name']},\n" if tg.get("name") else ""
    errors: list[str] = []
    step = ctx.eval_interval
    n_steps = int(math.floor(max_t / step + 1e-9)) + 1
    cur = 0
    for k in range(n_steps):
        ts = k * step
        eval_errs = []
        for g in groups:
            g.eval(ts)
            for r, st in zip(g.rules, g.status):
                if st.health == "err":
                    eval_errs.append(f"    rule: {r.name}, time: {format_duration(ts)}, err: {st.last_error}")
        if eval_errs:
            return errors + eval_errs
        while cur < len(pending_times) and ts <= pending_times[cur] + 1e-9 and pending_times[cur] < ts + step - 1e-9:
            t = pending_times[cur]
            for case in by_time[t]:
                alertname = str(case["alertname"])
                got = sorted((a.labels, Labels.of({str(k2): str(v2) for k2, v2 in a.annotations.items()}))
                             for g in groups for r in g.alerting_rules() if r.name == alertname
                             for a in r.alerts() if a.state == AlertState.FIRING)
                exp = []
                for ea in case.get("exp_alerts") or []:
                    lb = {str(k2): str(v2) for k2, v2 in (ea.get("exp_labels") or {}).items()}
                    lb["alertname"] = alertname
                    an = {str(k2): str(v2) for k2, v2 in (ea.get("exp_annotations") or {}).items()}
                    exp.append((Labels.of(lb), Labels.of(an)))
                exp.sort()
                if exp != got:
                    ind = "            "
                    errors.append(f"{name}    alertname: {alertname}, time: {format_duration(t)}, \n"
                                  f"        exp:{_indent(_alerts_str(exp), ind)}, \n"
                                  f"        got:{_indent(_alerts_str(got), ind)}")
            cur += 1

    for case in expr_tests:
        expr = str(case.get("expr", ""))
        t = _dur(case.get("eval_time", 0), "eval_time")
        try:
            res = engine.instant_query(expr, int(round(t * 1000)))
            if isinstance(res, Scalar):
                got_s = [(Labels(), res.v)]
            elif isinstance(res, Vector):
                got_s = [(s.labels, s.v) for s in res]
            else:
                raise ValueError("rule result is not a vector or scalar")
        except Exception as e:  # noqa: BLE001 - reported like promtool
            errors.append(f"    expr: {_q(expr)}, time: {format_duration(t)}, err: {e}")
            continue
        try:
            exp_s = [(parse_series(str(s.get("labels", "{}"))) if str(s.get("labels", "")).strip() not in ("", "{}")
                      else Labels(), float(s.get("value", 0))) for s in case.get("exp_samples") or []]
        except ValueError as e:
            errors.append(f"    expr: {_q(expr)}, time: {format_duration(t)}, err: {e}")
            continue
        exp_s.sort(key=lambda x: x[0])
        got_s.sort(key=lambda x: x[0])
        if not _samples_equal(exp_s, got_s, ctx.fuzzy):
            errors.append(f"    expr: {_q(expr)}, time: {format_duration(t)},\n"
                          f"        exp: {_samples_str(exp_s)}\n        got: {_samples_str(got_s)}")
    return errors


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _samples_equal(a: list[tuple[Labels, float]], b: list[tuple[Labels, float]], fuzzy: bool) -> bool:
    """Exact comparison as promtool (NaN equals NaN); ``fuzzy_compare`` allows a 1e-6 relative error."""
    if len(a) != len(b):
        return False
    for (la, va), (lb, vb) in zip(a, b):
        if la != lb:
            return False
        if not (va == vb or (math.isnan(va) and math.isnan(vb))
                or (fuzzy and math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-300))):
            return False
    return True


def _samples_str(ss: list[tuple[Labels, float]]) -> str:
    if not ss:
        return "nil"
    return ", ".join(f"{_labels_str(dict(lb)) if not lb.name else lb} {_fmt_e(v)}" for lb, v in ss)


def run_test_file(path: str | Path, out: TextIO = sys.stdout, *, compat: str = "3") -> bool:
    """Run one promtool test file, printing promtool-style results; return ``True`` on success.

    :param compat: PromQL semantics, as ``rules.promql_compat``: ``"3"`` agrees with promtool
        3.x, ``"2"`` with promtool 2.x (range windows closed on the left).
    """
    p = Path(path)
    print(f"Unit Testing:  {p}", file=out)
    try:
        with p.open(encoding="utf-8") as f:  # a named stream: YAML errors name the file
            doc = yaml.safe_load(f) or {}
        if not isinstance(doc, dict):
            raise ValueError("test file must be a mapping")
        unknown = set(doc) - {"rule_files", "evaluation_interval", "group_eval_order", "tests", "fuzzy_compare"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        ev = _dur(doc.get("evaluation_interval", "1m"), "evaluation_interval")
        files: list[str] = []
        for rf in doc.get("rule_files") or []:
            pattern = str(p.parent / rf) if not Path(rf).is_absolute() else str(rf)
            matched = sorted(glob.glob(pattern))
            files.extend(matched or [pattern])
        ctx = _Ctx(p, ev, [str(x) for x in doc.get("group_eval_order") or []], files,
                   bool(doc.get("fuzzy_compare", False)), compat)
        errors: list[str] = []
        for tg in doc.get("tests") or []:
            errors.extend(_run_group(ctx, tg))
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        print(f"  FAILED:\n    {exc}\n", file=out)
        return False
    if errors:
        print("  FAILED:", file=out)
        for line in errors:
            print(line, file=out)
        print(file=out)
        return False
    print("  SUCCESS\n", file=out)
    return True


def run_test_files(paths: Iterable[str | Path], out: TextIO = sys.stdout, *, compat: str = "3") -> int:
    """Run promtool-format rule test files (``compat`` as :func:`run_test_file`); return the exit
    code (0 all passed, 1 otherwise)."""
    ok = True
    for p in paths:
        ok = run_test_file(p, out, compat=compat) and ok
    return 0 if ok else 1
