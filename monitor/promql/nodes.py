"""Parse PromQL with ``promql-parser`` and compile the AST into plain Python nodes.

The ``promql_parser`` objects are Rust-backed: every attribute access copies data, and
identities are not stable. The engine therefore evaluates a small tree of frozen Python
nodes built here once per query. Time fields are integer **milliseconds**.

Type rules mirror Prometheus ``promql/parser/parse.go`` (``checkAST``); most are already
enforced by ``promql-parser``, the rest are checked in :func:`compile_expr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import promql_parser as pp

from monitor.errors import QueryError
from monitor.promql.bounds import prepare_query, regex_of_placeholder, restore_placeholders
from model.labels import METRIC_NAME
from model.matchers import Matcher

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "matrix", "string"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Functions Prometheus v2.53 knows that promql-parser 0.12 does not: name -> (args, return, variadic).
_EXTRA_FUNCTIONS = {
    "holt_winters": ([pp.ValueType.Matrix, pp.ValueType.Scalar, pp.ValueType.Scalar], pp.ValueType.Vector, 0),
}
_registered = False


def _register_extra_functions() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    known = []
    for name, (args, ret, variadic) in _EXTRA_FUNCTIONS.items():
        try:
            pp.parse(f"{name}(x[1m], 1, 1)")
        except BaseException:  # noqa: BLE001 - unknown to this parser version: register it
            known.append(pp.Function(name, args, ret, variadic))
    if known:
        try:
            pp.register_extra_functions(known)
        except BaseException:  # noqa: BLE001 - already known under another version
            pass


class Node:
    """Base of compiled nodes; ``type`` is one of scalar/vector/matrix/string."""

    type: str = VECTOR


@dataclass(eq=False)
class NumberLit(Node):
    """A number literal (scalar)."""

    v: float
    type: str = SCALAR


@dataclass(eq=False)
class StringLit(Node):
    """A string literal."""

    v: str
    type: str = STRING


@dataclass(eq=False)
class At:
    """An ``@`` modifier: ``kind`` is ``"at"`` (fixed ``t`` ms), ``"start"`` or ``"end"``."""

    kind: str
    t: int = 0


@dataclass(eq=False)
class VectorSel(Node):
    """An instant vector selector; ``matchers`` include ``__name__`` when a name is given,
    ``or_matchers`` holds the groups of ``{a="1" or b="2"}``; ``offset`` in ms."""

    name: str | None
    matchers: list[Matcher]
    or_matchers: list[list[Matcher]]
    offset: int
    at: At | None
    text: str
    type: str = VECTOR
    #: identifies the matchers alone: selectors with equal keys read the same series.
    key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.key = repr((self.matchers, self.or_matchers))


@dataclass(eq=False)
class MatrixSel(Node):
    """A range vector selector ``vs[range]`` (range in ms; offset and @ live on ``vs``)."""

    vs: VectorSel
    range: int
    type: str = MATRIX


@dataclass(eq=False)
class Subquery(Node):
    """A subquery ``expr[range:step] offset o @ t``; ``step`` is ``None`` when omitted
    (the engine's ``default_subquery_step_ms`` applies); times in ms."""

    expr: Node
    range: int
    step: int | None
    offset: int
    at: At | None
    type: str = MATRIX


@dataclass(eq=False)
class Call(Node):
    """A function call (``type`` is the function's return type); ``cache_key`` is its PromQL text
    when its result may be shared between queries at the same time (see :func:`_cache_info`),
    ``names`` the metrics it reads."""

    name: str
    args: list[Node]
    type: str = VECTOR
    cache_key: str | None = field(default=None, repr=False)
    names: frozenset[str] | None = field(default=None, repr=False)


@dataclass(eq=False)
class Aggregate(Node):
    """An aggregation; ``grouping`` is the by/without label list, ``without`` picks which."""

    op: str
    expr: Node
    param: Node | None
    grouping: list[str]
    without: bool
    type: str = VECTOR
    cache_key: str | None = field(default=None, repr=False)
    names: frozenset[str] | None = field(default=None, repr=False)


@dataclass(eq=False)
class Binary(Node):
    """A binary operation; ``on`` is ``True`` for ``on(...)``, ``False`` for ``ignoring``/none.

    ``card`` is ``one-to-one``, ``many-to-one`` (group_left), ``one-to-many`` (group_right) or
    ``many-to-many`` (set operators); ``include`` the extra labels of group_x.
    """

    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    card: str = "one-to-one"
    on: bool = False
    matching: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    type: str = VECTOR


@dataclass(eq=False)
class Neg(Node):
    """Unary minus; on a vector it drops the metric name."""

    expr: Node
    type: str = VECTOR


@dataclass(eq=False)
class Paren(Node):
    """A parenthesised expression (kept: ``timestamp((x))`` still sees a selector)."""

    expr: Node
    type: str = VECTOR


_TYPE_NAMES = {SCALAR: "scalar", VECTOR: "instant vector", MATRIX: "range vector", STRING: "string"}


def _value_type(vt: Any) -> str:
    for k, v in ((pp.ValueType.Scalar, SCALAR), (pp.ValueType.Matrix, MATRIX), (pp.ValueType.String, STRING),
                 (pp.ValueType.Vector, VECTOR)):
        if vt == k:
            return v
    return VECTOR


def parse_expr(query: str) -> pp.Expr:
    """Parse ``query`` with promql-parser, after checking its size and shape.

    Every expression the daemon parses comes through here (HTTP queries, rule files, the
    promtool-style test runner), so :func:`monitor.promql.bounds.prepare_query` guards them all:
    length, nesting depth, operator and regex counts bounded, negative ``@`` timestamps (which
    make promql-parser 0.12 panic when reading them back) rejected — in one linear scan — and
    regex patterns replaced by placeholders, so that RE2 compiles them instead of Rust's
    ``regex`` crate (:func:`compile_expr` puts them back).

    :raises QueryError: with the parser's message on any syntax or type error, or naming the
        limit a query exceeds.
    """
    if not isinstance(query, str):
        raise QueryError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise QueryError("empty query")
    text = prepare_query(query).text
    _register_extra_functions()
    try:
        expr = pp.parse(text)
    except BaseException as e:  # noqa: BLE001 - the Rust side can raise a PanicException (BaseException)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise QueryError(f"parse error: {restore_placeholders(str(e))}") from None
    try:
        compile_expr(expr)  # type checks that promql-parser misses
    except RecursionError:
        raise QueryError("query is nested too deeply") from None
    return expr


def _ms(td: timedelta | None) -> int:
    if td is None:
        return 0
    return td.days * 86_400_000 + td.seconds * 1000 + td.microseconds // 1000


def _at(node: Any) -> At | None:
    try:
        at = node.at
        if at is None:
            return None
        kind = at.type
        if kind == pp.AtModifierType.Start:
            return At("start")
        if kind == pp.AtModifierType.End:
            return At("end")
        return At("at", _ms(at.at - _EPOCH))
    except BaseException as e:  # noqa: BLE001 - negative @ timestamps panic in promql-parser
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise QueryError("invalid @ modifier timestamp (before 1970 or out of range)") from None


_MATCH_OPS = ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="), (pp.MatchOp.Re, "=~"),
              (pp.MatchOp.NotRe, "!~"))


def _match_op(op: Any) -> str:
    for k, v in _MATCH_OPS:
        if op == k:
            return v
    raise QueryError(f"unknown matcher operator {op}")


def _matcher(m: Any) -> Matcher:
    op = _match_op(m.op)
    value = m.value
    if op in ("=~", "!~"):
        # parse_expr gave the parser a placeholder; RE2 compiles the pattern (^(?s:value)$).
        pattern = regex_of_placeholder(value)
        if pattern is not None:
            value = pattern
    try:
        return Matcher(m.name, op, value)
    except ValueError as e:
        raise QueryError(f"parse error: {e}") from None


def _vector_sel(e: Any) -> VectorSel:
    name = e.name
    ms = e.matchers
    matchers = [_matcher(m) for m in ms.matchers]
    if name is not None and not any(m.name == METRIC_NAME for m in matchers):
        matchers.insert(0, Matcher(METRIC_NAME, "=", name))
    ors = [[_matcher(m) for m in group] for group in ms.or_matchers]
    if name is not None and ors:
        ors = [[Matcher(METRIC_NAME, "=", name), *g] for g in ors]
    return VectorSel(name, matchers, ors, _ms(e.offset), _at(e), restore_placeholders(str(e)))


def compile_expr(e: Any) -> Node:
    """Compile a promql-parser expression into engine nodes, checking types.

    :raises QueryError: on a type error the parser did not catch.
    """
    if isinstance(e, pp.NumberLiteral):
        return NumberLit(float(e.val))
    if isinstance(e, pp.StringLiteral):
        return StringLit(e.val)
    if isinstance(e, pp.VectorSelector):
        return _vector_sel(e)
    if isinstance(e, pp.MatrixSelector):
        vs = _vector_sel(e.vector_selector)
        return MatrixSel(vs, _ms(e.range))
    if isinstance(e, pp.ParenExpr):
        inner = compile_expr(e.expr)
        return Paren(inner, type=inner.type)
    if isinstance(e, pp.UnaryExpr):
        inner = compile_expr(e.expr)
        if inner.type not in (SCALAR, VECTOR):
            raise QueryError(f"unary expression only allowed on expressions of type scalar or vector, got {inner.type}")
        return Neg(inner, type=inner.type)
    if isinstance(e, pp.SubqueryExpr):
        inner = compile_expr(e.expr)
        if inner.type != VECTOR:
            raise QueryError(f"subquery is only allowed on instant vector, got {inner.type}")
        step = _ms(e.step) if e.step is not None else None
        return Subquery(inner, _ms(e.range), step or None, _ms(e.offset), _at(e))
    if isinstance(e, pp.Call):
        func = e.func
        args = [compile_expr(a) for a in e.args]
        ret = _value_type(func.return_type)
        name = func.name
        want = [_value_type(a) for a in func.arg_types]
        for i, a in enumerate(args):
            if not want:
                break
            w = want[min(i, len(want) - 1)]
            if a.type != w:
                # promql-parser lets e.g. ln(-1) through; Prometheus rejects it (checkAST).
                raise QueryError(f"expected type {_TYPE_NAMES[w]} in call to function {name!r}, "
                                 f"got {_TYPE_NAMES[a.type]}")
        # Prometheus unwraps parentheses around range arguments (engine.go unwrapParenExpr).
        args = [a.expr if isinstance(a, Paren) and a.type == MATRIX else a for a in args]
        return _cache_info(Call(name, args, type=ret), e)
    if isinstance(e, pp.AggregateExpr):
        op = str(e.op)
        inner = compile_expr(e.expr)
        if inner.type != VECTOR:
            raise QueryError(f"expected type instant vector in aggregation expression, got {inner.type}")
        param = compile_expr(e.param) if e.param is not None else None
        agg_mod = e.modifier
        grouping: list[str] = []
        without = False
        if agg_mod is not None:
            grouping = list(agg_mod.labels)
            without = agg_mod.type == pp.AggModifierType.Without
        return _cache_info(Aggregate(op, inner, param, grouping, without), e)
    if isinstance(e, pp.BinaryExpr):
        op = str(e.op)
        lhs, rhs = compile_expr(e.lhs), compile_expr(e.rhs)
        for side in (lhs, rhs):
            if side.type not in (SCALAR, VECTOR):
                raise QueryError("binary expression must contain only scalar and instant vector types")
        mod = e.modifier
        node = Binary(op, lhs, rhs)
        if mod is not None:
            node.return_bool = bool(mod.return_bool)
            card = mod.card
            for k, v in ((pp.VectorMatchCardinality.ManyToOne, "many-to-one"),
                         (pp.VectorMatchCardinality.OneToMany, "one-to-many"),
                         (pp.VectorMatchCardinality.ManyToMany, "many-to-many")):
                if card == k:
                    node.card = v
            if mod.matching is not None:
                node.on = mod.matching.type == pp.LabelModifierType.Include
                node.matching = list(mod.matching.labels)
            node.include = list(mod.group_labels or [])
            fill = getattr(mod, "fill_values", None)
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise QueryError("fill modifiers in vector matching are not supported")
        if op in ("and", "or", "unless"):
            node.card = "many-to-many"
        if lhs.type == SCALAR and rhs.type == SCALAR:
            node.type = SCALAR
        return node
    raise QueryError(f"unsupported expression type {type(e).__name__}")


def _cache_info(node: Call | Aggregate, e: Any) -> Call | Aggregate:
    """Mark a vector-valued node whose value depends only on the store and the evaluation
    time (it reads selectors and no ``@ start()``/``@ end()``) as shareable between queries."""
    if node.type != VECTOR:
        return node
    sels = list(iter_selectors(node))
    if not sels or any(_uses_range_bounds(x) for x in _walk(node)):
        return node
    # The dataclass repr spells out every field of the subtree (unlike promql-parser's str,
    # which prints rate(x[5m:]) as rate(x[5m])).
    node.cache_key = repr(node)
    names = selected_metric_names(node)
    if any(isinstance(x, Call) and x.name == "info" for x in _walk(node)):
        names = None  # info() also reads info series (target_info, ...) no selector names
    node.names = frozenset(names) if names is not None else None
    return node


def _walk(node: Node):
    yield node
    for attr in ("expr", "lhs", "rhs", "vs", "param"):
        child = getattr(node, attr, None)
        if isinstance(child, Node):
            yield from _walk(child)
    for child in getattr(node, "args", ()):
        yield from _walk(child)


def iter_nodes(node: Node):
    """Yield ``node`` and every node below it (depth first)."""
    return _walk(node)


def _uses_range_bounds(node: Node) -> bool:
    at = getattr(node, "at", None)
    return at is not None and at.kind in ("start", "end")


def selected_metric_names(expr: Any) -> set[str] | None:
    """Return the metric names of every vector selector in ``expr``.

    :param expr: a query string, a promql-parser ``Expr`` or a compiled :class:`Node`.
    :return: the exact ``__name__`` values selected, or ``None`` if any selector matches names
        otherwise (regex, negative matcher or no name).
    :raises QueryError: if a query string does not parse.
    """
    if isinstance(expr, str):
        expr = parse_expr(expr)
    node = expr if isinstance(expr, Node) else compile_expr(expr)
    names: set[str] = set()
    for sel in iter_selectors(node):
        eq = [m.value for m in sel.matchers if m.name == METRIC_NAME and m.op == "="]
        if eq:
            names.add(eq[0])
        elif sel.or_matchers and all(
            any(m.name == METRIC_NAME and m.op == "=" for m in g) for g in sel.or_matchers
        ):
            for g in sel.or_matchers:
                names.add(next(m.value for m in g if m.name == METRIC_NAME and m.op == "="))
        else:
            return None
    return names


#: Functions that need two samples of a series in their range to return anything.
TWO_SAMPLE_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear"})


def samples_needed(expr: Any) -> dict[str, int] | None:
    """Return, per metric name ``expr`` reads, how many samples of a series it needs to answer.

    A name read in a range by a function of :data:`TWO_SAMPLE_FUNCTIONS` (``rate``,
    ``increase``, ...) needs 2; any other name needs 1.

    :param expr: as for :func:`selected_metric_names`.
    :return: ``{name: 1 | 2}``, or ``None`` when the names cannot be known (see there).
    :raises QueryError: if a query string does not parse.
    """
    if isinstance(expr, str):
        expr = parse_expr(expr)
    node = expr if isinstance(expr, Node) else compile_expr(expr)
    names = selected_metric_names(node)
    if names is None:
        return None
    need = dict.fromkeys(names, 1)
    for n in iter_nodes(node):
        if isinstance(n, Call) and n.name in TWO_SAMPLE_FUNCTIONS:
            for arg in n.args:
                if isinstance(arg, MatrixSel):
                    for sel_name in selected_metric_names(arg) or ():
                        need[sel_name] = 2
    return need


def iter_selectors(node: Node):
    """Yield every :class:`VectorSel` in ``node`` (including those inside range selectors)."""
    if isinstance(node, VectorSel):
        yield node
    elif isinstance(node, MatrixSel):
        yield node.vs
    elif isinstance(node, (Paren, Neg, Subquery)):
        yield from iter_selectors(node.expr)
    elif isinstance(node, Call):
        for a in node.args:
            yield from iter_selectors(a)
    elif isinstance(node, Aggregate):
        if node.param is not None:
            yield from iter_selectors(node.param)
        yield from iter_selectors(node.expr)
    elif isinstance(node, Binary):
        yield from iter_selectors(node.lhs)
        yield from iter_selectors(node.rhs)
