"""What ``check`` says about rules whose meaning differs between Prometheus 2 and 3.

Prometheus's migration guide (v3.0 "PromQL" changes) lists what changes a rule's result
without any error; :func:`migration_warnings` finds them in parsed rule files:

* a range selector of a counter function (``rate``, ``increase``, ...) or a subquery whose
  range is no larger than its step (the group's interval, or the subquery's own step): in 3
  the window is open on the left, so it holds one sample fewer — ``rate(x[1m])`` evaluated
  every minute can return nothing, ``max_over_time(x[5m:5m])`` sees one point instead of two;
* an ``le``/``quantile`` matcher whose value is not in float form (``le="1"``): Prometheus 3
  stores ``le="1.0"``, so the matcher selects nothing;
* ``holt_winters``, removed in 3 (``double_exponential_smoothing`` behind
  ``promql-experimental-functions``).

:func:`compat_errors` lists the rules the configured ``promql_compat``/``enable_features``
reject outright (the daemon refuses to load them).
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.errors import QueryError
from monitor.promql import nodes as n
from monitor.promql.compat import DURATION_EXPR, check_query
from monitor.promql.durations import rewrite_durations
from monitor.rules.rulefmt import RuleFileSpec, RuleSpec, compile_rule_expr
from monitor.scrape.exposition import format_float_label

#: Functions that need two samples in their window (a window one sample short changes them).
_COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear",
                                "resets", "changes"})


def _where(spec: RuleFileSpec, group: str, r: RuleSpec) -> str:
    return f'{spec.path}:{r.line}:{r.column}: group "{group}", rule {r.index}, "{r.name}"'


def compat_errors(specs: Sequence[RuleFileSpec], compat: str, features: frozenset[str]) -> list[str]:
    """Rule expressions ``compat`` and ``features`` reject (``holt_winters`` under 3, a
    disabled experimental function or duration expression), one line per rule."""
    out = []
    for spec in specs:
        for g in spec.groups:
            for r in g.rules:
                try:
                    check_query(compile_rule_expr(r.expr), compat, features)
                    if DURATION_EXPR not in features and rewrite_durations(r.expr) != r.expr:
                        raise QueryError(f"parse error: duration expressions are not enabled: add "
                                         f"{DURATION_EXPR!r} to rules.enable_features")
                except QueryError as e:
                    out.append(f"{_where(spec, g.name, r)}: could not parse expression: {e}")
    return out


def migration_warnings(specs: Sequence[RuleFileSpec], default_interval: float) -> list[str]:
    """Rules whose result differs between Prometheus 2 and 3, one line per finding.

    :param default_interval: seconds, for groups without ``interval``.
    """
    out = []
    for spec in specs:
        for g in spec.groups:
            step_ms = round((g.interval_seconds or default_interval) * 1000)
            for r in g.rules:
                try:
                    root = compile_rule_expr(r.expr)
                except QueryError:
                    continue  # reported as an error already
                out += [f"{_where(spec, g.name, r)}: {msg}" for msg in _findings(root, step_ms)]
    return out


def _findings(root: n.Node, step_ms: int) -> list[str]:
    found = []
    for node in n.iter_nodes(root):
        if isinstance(node, n.Call) and node.name == "holt_winters":
            found.append("holt_winters is removed in Prometheus 3 (double_exponential_smoothing, "
                         "behind promql-experimental-functions)")
        elif isinstance(node, n.Call) and node.name in _COUNTER_FUNCTIONS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, n.MatrixSel) and arg.range <= step_ms:
                found.append(f"{node.name}() over [{_dur(arg.range)}], no longer than the evaluation interval "
                             f"{_dur(step_ms)}: Prometheus 3's left-open window holds one sample fewer "
                             "(the result can be empty)")
        elif isinstance(node, n.Subquery):
            sub_step = node.step or step_ms
            if node.range <= sub_step:
                found.append(f"subquery [{_dur(node.range)}:{_dur(sub_step)}] no longer than its step: "
                             "Prometheus 3 evaluates it at one point fewer")
        elif isinstance(node, n.VectorSel):
            for m in node.matchers:
                if m.name in ("le", "quantile") and m.op in ("=", "!="):
                    try:
                        norm = format_float_label(float(m.value))
                    except ValueError:
                        continue
                    if norm != m.value:
                        found.append(f'{m.name}="{m.value}" never matches in Prometheus 3, which stores '
                                     f'{m.name}="{norm}"')
    return found


def _dur(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
