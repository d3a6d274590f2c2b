r"""Bounds on PromQL text, checked in one linear scan before ``promql_parser`` sees it.

``promql_parser`` (Rust, through pyo3) holds the GIL for the whole parse, so whatever it
spends there freezes the event loop, even from a worker thread, and it recurses over the tree:

* a chain of 5,000 binary operators (``1-1-1-…``) overflowed its stack: SIGSEGV, the daemon
  gone; a 5,000-deep parenthesised query took 3.7 s;
* it compiles every regex matcher with Rust's ``regex`` crate, whose Unicode classes make
  ``\w{200}`` cost 68 ms and ``\w{1000}`` 440 ms — per matcher, however many a query has.

So every expression (HTTP queries, rule files, the promtool-style test runner: all parse
through :func:`monitor.promql.nodes.parse_expr`) goes through :func:`prepare_query` first, which

* bounds the size and shape (Prometheus has no such limits; its Go parser survives any depth):

  - :data:`MAX_QUERY_LENGTH` — 65,536 characters (clients hit URL limits about there; long
    regex alternations still fit);
  - :data:`MAX_NESTING_DEPTH` — 64: the tree's depth, estimated as brackets (``( [ {``) nested
    in each other plus the binary operators chained at each level (``a + b + c`` is two levels:
    the tree is left-deep). The shipped rules and dashboards reach 8;
  - :data:`MAX_QUERY_NODES` — 1,024 operators and opening ``(``/``[``, which the parse cost
    grows with (label matchers and string arguments are cheap and not counted);
  - :data:`MAX_REGEX_MATCHERS` — 128 regex matchers (``=~``, ``!~``), each compiled by RE2;

* hands the parser a placeholder for each regex matcher's pattern (``"__re2_<hex>_"``, a plain
  literal), so Rust never compiles a user's regex: :mod:`model.regex` compiles the real one (RE2,
  Go syntax, at most ~55 ms per pattern), and :func:`regex_of_placeholder` /
  :func:`restore_placeholders` give it and the text back;
* rejects a negative ``@`` timestamp, which makes promql-parser 0.12 panic.

Measured at the limits on a loaded 2-core machine (the longest time the event-loop thread
waited for the GIL while a worker thread parsed, compiled and evaluated; worst shapes that just
fit): chains of nested ``abs(``, parentheses, subqueries, ``on()``/``group_left`` and ``or``-ed
selectors held it at most ~13 ms at a time; 13,000 string arguments in 64 KiB, 28 ms; one RE2
compile of a large Unicode-class repetition up to ~55 ms (see :data:`model.regex.MAX_MEM`).
Before, one parse held it for 3.7 s (or crashed). The scan itself is linear (one tokenizer
pass whose patterns cannot backtrack), ~25 ms of interruptible Python for 64 KiB.

Each violation is a :class:`~monitor.errors.QueryError` naming the limit (HTTP 400 ``bad_data``).
"""

from __future__ import annotations

import re

from monitor.errors import QueryError

__all__ = ["MAX_NESTING_DEPTH", "MAX_QUERY_LENGTH", "MAX_QUERY_NODES", "MAX_REGEX_MATCHERS", "PreparedQuery",
           "prepare_query", "regex_of_placeholder", "restore_placeholders"]

#: Most characters of one PromQL expression.
MAX_QUERY_LENGTH = 65_536
#: Deepest estimated tree: nested brackets plus chained binary operators (see module docstring).
MAX_NESTING_DEPTH = 64
#: Most operators and opening parentheses/square brackets in one expression.
MAX_QUERY_NODES = 1_024
#: Most regex label matchers (``=~``, ``!~``) in one expression.
MAX_REGEX_MATCHERS = 128

# One token per match; every alternative is linear (an unterminated string runs to the end of
# the text, never back). Groups: 1 string, 2 comment, 3 open, 4 close, 5 comma, 6 operator,
# 7 word (identifiers, keywords, numbers, durations; the sign of an exponent, 1e-5, counts
# as an operator: a harmless overestimate that keeps every pattern free of backtracking).
_TOKEN = re.compile(r"""
    ("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)
  | (\#[^\n]*)
  | ([(\[{])
  | ([)\]}])
  | (,)
  | (==|!=|>=|<=|=~|!~|[-+*/%^<>=@])
  | ([A-Za-z0-9_:.]+)
  | \s+
  | .
""", re.VERBOSE | re.DOTALL)
#: Words that are binary operators (``atan2`` too, as in Prometheus's lexer).
_WORD_OPS = frozenset({"and", "or", "unless", "atan2"})
#: Go/Prometheus string escapes (``promql/parser/lex.go`` lexEscape, ``util/strutil`` Unquote).
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|([0-7]{3})|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.?))",
                     re.DOTALL)
_PLACEHOLDER = re.compile(r"__re2_([0-9a-f]*)_")


class PreparedQuery:
    """A query within the limits, ready for the parser.

    :ivar text: the query with each regex matcher's pattern replaced by a placeholder.
    :ivar length: characters of the original query.
    :ivar depth: its estimated tree depth.
    :ivar nodes: its operators and opening ``(``/``[``.
    :ivar regexes: its regex matchers.
    """

    __slots__ = ("text", "length", "depth", "nodes", "regexes")

    def __init__(self, text: str, length: int, depth: int, nodes: int, regexes: int) -> None:
        self.text = text
        self.length = length
        self.depth = depth
        self.nodes = nodes
        self.regexes = regexes

    def __repr__(self) -> str:
        return (f"PreparedQuery(length={self.length}, depth={self.depth}, nodes={self.nodes}, "
                f"regexes={self.regexes})")


def prepare_query(query: str) -> PreparedQuery:
    """Measure ``query``, reject it when over a limit, and put placeholders for its regexes.

    :return: the text for the parser and the measured shape (all within the limits).
    :raises QueryError: ``query is too long``, ``query is nested too deeply``, ``query is too
        complex``, ``too many regex matchers`` (each naming the limit), ``parse error: ...`` for
        a regex literal with an invalid escape, or ``negative @ modifier timestamps are not
        supported``.
    """
    n = len(query)
    if n > MAX_QUERY_LENGTH:
        raise QueryError(f"query is too long: {n} characters, more than the limit of "
                         f"{MAX_QUERY_LENGTH} characters")
    # A frame per open bracket: [operators in the current comma-separated segment, deepest
    # child of that segment, deepest segment so far, is a brace]. Depth of a closed group:
    # 1 + max over its segments of (operators + deepest child).
    stack: list[list[int]] = [[0, 0, 0, 0]]
    nodes = 0
    prev = ""
    regex_next = False  # the next token is a regex matcher's pattern
    pieces: list[str] = []  # the text for the parser, when a regex was replaced
    copied = 0  # query[:copied] is in pieces
    for m in _TOKEN.finditer(query):
        kind = m.lastindex
        if kind is None or kind == 2:  # whitespace, other characters, comments
            continue
        tok = m.group(kind)
        frame = stack[-1]
        if kind == 1:
            if regex_next:
                if len(pieces) // 2 >= MAX_REGEX_MATCHERS:
                    raise QueryError(f"too many regex matchers: more than the limit of {MAX_REGEX_MATCHERS}")
                pieces.append(query[copied:m.start()])
                pieces.append('"__re2_' + _unquote(tok).encode("utf-8").hex() + '_"')
                copied = m.end()
        elif kind == 3:
            if tok != "{":
                nodes += 1
            stack.append([0, 0, 0, tok == "{"])
            if len(stack) > MAX_NESTING_DEPTH + 1:
                _too_deep(len(stack) - 1, "at least ")
        elif kind == 4:
            if len(stack) > 1:
                stack.pop()
                depth = 1 + max(frame[2], frame[0] + frame[1])
                parent = stack[-1]
                if depth > parent[1]:
                    parent[1] = depth
        elif kind == 5:
            frame[2] = max(frame[2], frame[0] + frame[1])
            frame[0] = frame[1] = 0
        elif kind == 6:
            if tok == "-" and prev == "@":
                raise QueryError("negative @ modifier timestamps are not supported")
            if not frame[3]:  # in braces, = != =~ !~ are label matchers, not tree nodes
                frame[0] += 1
                nodes += 1
        elif tok in _WORD_OPS and not frame[3]:
            frame[0] += 1
            nodes += 1
        regex_next = kind == 6 and bool(frame[3]) and tok in ("=~", "!~")
        prev = tok
    # Brackets left open (a syntax error the parser will report) count as if closed.
    depth = 0
    while stack:
        frame = stack.pop()
        depth = max(frame[2], frame[0] + max(frame[1], depth)) + (1 if stack else 0)
    if depth > MAX_NESTING_DEPTH:
        _too_deep(depth)
    if nodes > MAX_QUERY_NODES:
        raise QueryError(f"query is too complex: {nodes} operators and brackets, more than the limit "
                         f"of {MAX_QUERY_NODES}")
    text = query
    if pieces:
        pieces.append(query[copied:])
        text = "".join(pieces)
    return PreparedQuery(text, n, depth, nodes, len(pieces) // 2)


def _too_deep(depth: int, qualifier: str = "") -> None:
    raise QueryError(f"query is nested too deeply: depth {qualifier}{depth}, more than the limit of "
                     f"{MAX_NESTING_DEPTH} (nested brackets plus chained binary operators)")


def _unquote(tok: str) -> str:
    """Return the value of a PromQL string literal (Go escapes; backquotes raw).

    :raises QueryError: ``parse error: ...`` for an unterminated literal, an unknown escape, a
        raw byte escape that is not UTF-8 text, or an invalid code point.
    """
    quote = tok[0]
    if len(tok) < 2 or tok[-1] != quote or (quote != "`" and tok[-2] == "\\" and not _even_backslashes(tok)):
        raise QueryError("parse error: unterminated quoted string")
    body = tok[1:-1]
    if quote == "`":
        return body
    if "\n" in body:
        raise QueryError("parse error: unterminated quoted string")

    def esc(g: re.Match[str]) -> str:
        simple, octal, hex2, hex4, hex8, other = g.groups()
        if simple is not None:
            if simple in "'\"":
                if simple != quote:
                    raise QueryError(f"parse error: unknown escape sequence \\{simple}")
                return simple
            return _ESCAPES[simple]
        if octal is not None or hex2 is not None:
            code = int(octal, 8) if octal is not None else int(hex2, 16)
            if code > 0x7F:  # a raw byte: Go strings may hold it, regexes over UTF-8 text cannot
                raise QueryError(f"parse error: invalid escape {g.group(0)} (not UTF-8 text)")
            return chr(code)
        if hex4 is not None or hex8 is not None:
            code = int(hex4 or hex8, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise QueryError(f"parse error: invalid Unicode code point in {g.group(0)}")
            return chr(code)
        raise QueryError(f"parse error: unknown escape sequence \\{other}")

    return _ESCAPE.sub(esc, body)


def _even_backslashes(tok: str) -> bool:
    """Return whether the backslashes before ``tok``'s closing quote pair up (so it closes)."""
    i = len(tok) - 2
    count = 0
    while i > 0 and tok[i] == "\\":
        count += 1
        i -= 1
    return count % 2 == 0


def regex_of_placeholder(value: str) -> str | None:
    """Return the pattern a matcher value placed by :func:`prepare_query` stands for, else ``None``."""
    m = _PLACEHOLDER.fullmatch(value)
    if m is None:
        return None
    try:
        return bytes.fromhex(m.group(1)).decode("utf-8")
    except ValueError:
        return None


def restore_placeholders(text: str) -> str:
    """Put the patterns back into ``text`` printed by the parser (``a=~"__re2_78_"`` ->
    ``a=~"x"``), escaped for a double-quoted PromQL string."""
    if "__re2_" not in text:
        return text

    def back(m: re.Match[str]) -> str:
        pattern = regex_of_placeholder(m.group(0))
        if pattern is None:
            return m.group(0)
        return pattern.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return _PLACEHOLDER.sub(back, text)
