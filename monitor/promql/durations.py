"""Duration expressions (Prometheus 3 ``--enable-feature=promql-duration-expr``), rewritten to
plain durations before parsing, since ``promql-parser`` 0.12 does not parse them.

Prometheus v3.5 (``promql/parser/generated_parser.y`` ``duration_expr``, ``durations.go``)
accepts arithmetic in range selectors, subquery ranges and steps, and parenthesised offsets::

    x[26m+4m]        x[1h/2]        x[29s+1s:5s+5s]        x offset (2 * 2)     x offset -(1m+1s)

Numbers are seconds, durations their usual units; ``+ - * / % ^`` with Go's precedence (``^``
binds tighter than unary minus and is right-associative; ``%`` keeps the dividend's sign, as
``math.Mod``). :func:`rewrite_durations` replaces each expression by its value in
milliseconds (``1800000ms``); the parser then checks the result as it checks any duration.
"""

from __future__ import annotations

import math
import re

from monitor.errors import QueryError

_PLAIN = re.compile(r"\s*(?:(?:\d+(?:ms|[smhdwy]))+|\d+)?\s*")
_TOKEN = re.compile(r"\s*(?:(?P<dur>(?:\d+(?:ms|[smhdwy]))+)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<op>[-+*/%^()]))")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}
_OFFSET = re.compile(r"\boffset\s*(-?)\s*\(")


def _duration_s(text: str) -> float:
    return sum(int(n) * _UNIT_S[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text))


class _Calc:
    """Recursive-descent evaluation of one duration expression (seconds)."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise QueryError(f"parse error: bad duration expression {text!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) and self.tokens[self.i][0] == "op" else None

    def value(self) -> float:
        v = self.sum()
        if self.i != len(self.tokens):
            raise QueryError("parse error: unexpected token in duration expression")
        return v

    def sum(self) -> float:
        v = self.product()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.i][1]
            self.i += 1
            r = self.product()
            v = v + r if op == "+" else v - r
        return v

    def product(self) -> float:
        v = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.tokens[self.i][1]
            self.i += 1
            r = self.unary()
            if op == "*":
                v *= r
            elif r == 0:
                raise QueryError("parse error: division by zero in duration expression")
            else:
                v = v / r if op == "/" else math.fmod(v, r)
        return v

    def unary(self) -> float:
        if self.peek() in ("-", "+"):
            op = self.tokens[self.i][1]
            self.i += 1
            v = self.unary()
            return -v if op == "-" else v
        return self.power()

    def power(self) -> float:
        v = self.primary()
        if self.peek() == "^":
            self.i += 1
            v = v ** self.unary()
        return v

    def primary(self) -> float:
        if self.i >= len(self.tokens):
            raise QueryError("parse error: unexpected end of duration expression")
        kind, text = self.tokens[self.i]
        self.i += 1
        if kind == "dur":
            return _duration_s(text)
        if kind == "num":
            return float(text)
        if text == "(":
            v = self.sum()
            if self.peek() != ")":
                raise QueryError("parse error: unclosed parenthesis in duration expression")
            self.i += 1
            return v
        raise QueryError(f"parse error: unexpected {text!r} in duration expression")


def duration_ms(expr: str) -> int:
    """Evaluate a duration expression; return milliseconds.

    :raises QueryError: on a syntax error or a division by zero.
    """
    return round(_Calc(expr).value() * 1000)


def _closing(text: str, i: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at ``i`` (quotes skipped), or -1."""
    depth, quote = 0, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _fmt(ms: int) -> str:
    return f"{ms}ms"


def rewrite_durations(query: str) -> str:
    """Replace the duration expressions of ``query`` by plain durations; text without any is
    returned unchanged (string literals are never touched).

    :raises QueryError: for a malformed duration expression.
    """
    out: list[str] = []
    i, quote = 0, ""
    n = len(query)
    while i < n:
        c = query[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < n:
                out.append(query[i + 1])
                i += 1
            elif c == quote:
                quote = ""
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "[":
            end = _closing(query, i, "[", "]")
            if end > 0:
                parts = query[i + 1:end].split(":")
                if len(parts) <= 2 and not all(_PLAIN.fullmatch(p) for p in parts):
                    new = [p if _PLAIN.fullmatch(p) else _fmt(duration_ms(p)) for p in parts]
                    out.append("[" + ":".join(new) + "]")
                    i = end + 1
                    continue
        elif c == "o":
            m = _OFFSET.match(query, i)
            if m and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] == "_")):
                start = m.end() - 1
                end = _closing(query, start, "(", ")")
                if end > 0:
                    ms = duration_ms(query[start:end + 1])
                    if m.group(1):
                        ms = -ms
                    out.append(f"offset {'-' if ms < 0 else ''}{_fmt(abs(ms))}")
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)
