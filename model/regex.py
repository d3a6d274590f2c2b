r"""Regular expressions with Go's (RE2) syntax, matched in linear time by ``google-re2``.

Prometheus and Alertmanager compile every user regex with Go's ``regexp`` package, whose syntax
is RE2's and whose matching time is linear in the input. ``google-re2`` is the C++ RE2 library
behind a ``re``-like API, so we get the same syntax and the same guarantee: no pattern can
backtrack catastrophically (``(a+)+$`` against ``"aaaa…!"`` returns at once, where Python's
``re`` runs for minutes with the event loop held).

Two ways a pattern is compiled:

* :func:`anchored` — label matchers (``=~``, ``!~``) and ``label_replace``: the pattern must
  match the whole value, and ``.`` matches a newline. Prometheus 3 wraps the pattern as
  ``^(?s:<pattern>)$`` (``model/labels/regexp.go`` ``NewFastRegexMatcher``, ``promql/functions.go``
  ``funcLabelReplace``); Prometheus 2.x used ``^(?:<pattern>)$``. We keep the 3.x form, as the
  code always has; no 2.53 conformance case depends on the difference.
* :func:`unanchored` — template functions ``match`` / ``reReplaceAll`` (Prometheus
  ``template/template.go``: ``regexp.MatchString``, ``regexp.MustCompile(p).ReplaceAllString``):
  the pattern as written, matched anywhere, ``.`` not matching a newline.

Where C++ RE2 accepts more than Go, Go's rule wins: ``\C`` (any byte) is rejected. Text with
lone surrogates (possible in JSON-decoded strings, never valid UTF-8) is matched with each
surrogate read as U+FFFD, as Go reads invalid UTF-8.

Errors are :class:`RegexError` (a ``ValueError``) carrying RE2's reason, e.g.
``missing ): (a`` or ``invalid repetition size: {1001}``.

Usage::

    rx = anchored("api|db-.*")
    rx.matches("db-1")                      # True; fast paths for literals, a|b|c, .*, .+
    m = rx.match("db-1")                     # groups, for label_replace
    unanchored("(.*):.*").replace_all("a:9", "$1")   # "a"
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

__all__ = ["Regex", "RegexError", "RegexMatch", "anchored", "expand", "unanchored"]

#: RE2's memory budget per compiled pattern (bytes; RE2's default is 8 MiB). Compiling holds
#: the GIL, and at 8 MiB ``\pL{100}`` took 50 ms and a pattern over budget 100 ms before
#: failing; at 1 MiB the slowest of 230 Unicode-class repetitions took ~55 ms on a loaded
#: 2-core machine. Programs up to ~60,000 instructions fit (``\pL{50}``; ``.{1000}`` is 7,000);
#: larger ones fail with ``pattern too large - compile failed``.
MAX_MEM = 1 << 20

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every rejected pattern to stderr
_OPTIONS.max_mem = MAX_MEM
# For the syntax check of a pattern alone: a tiny budget makes RE2 stop right after parsing.
_SYNTAX_OPTIONS = re2.Options()
_SYNTAX_OPTIONS.log_errors = False
_SYNTAX_OPTIONS.max_mem = 1 << 10
_TOO_LARGE = "pattern too large - compile failed"
#: RE2's metacharacters outside a character class: a pattern without them is a literal.
_META = frozenset(".+*?()|[]{}^$\\")
#: Go ``Regexp.Expand`` references: ``$$``, ``${name}``, ``$name`` (names of [A-Za-z0-9_]).
_GO_REF = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
_NO_SPAN = (-1, -1)
# The anchors of RE2::Match, which google-re2 exports only under a private name.
_ANCHOR_BOTH = re2._Anchor.ANCHOR_BOTH  # noqa: SLF001
_UNANCHORED = re2._Anchor.UNANCHORED  # noqa: SLF001
#: Results of :meth:`Regex.matches` kept per compiled pattern: label values repeat across series,
#: and a dict hit costs ~0.1 µs where an RE2 call costs ~0.8 µs. The first values seen are kept
#: (no eviction, so no thrashing when more values come); a pattern is held by the matchers using
#: it and by :func:`anchored`'s cache of 1,024, so the memo stays small.
MEMO_LIMIT = 512


class RegexError(ValueError):
    """A pattern RE2 (or Go's ``regexp``) rejects.

    :ivar pattern: the pattern as written.
    :ivar reason: RE2's explanation (``missing ): (a``).
    """

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(reason)


def _utf8(text: str) -> bytes:
    """Encode ``text`` as UTF-8, lone surrogates as U+FFFD (Go reads invalid UTF-8 so)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text).encode("utf-8")


def _compile(pattern: str, text: str, options: Any = _OPTIONS) -> Any:
    """Compile ``text`` (``pattern``, possibly wrapped) with RE2; :raises RegexError:."""
    if "\\C" in pattern and _has_any_byte_escape(pattern):
        raise RegexError(pattern, "invalid escape sequence: \\C")
    try:
        return re2.compile(_utf8(text), options)
    except re2.error as e:
        reason = e.args[0] if e.args else "invalid regular expression"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(pattern, str(reason)) from None


def _check_syntax(pattern: str) -> None:
    """Reject ``pattern`` unless it parses alone (``a)|(b`` would compile once wrapped as
    ``^(?s:a)|(b)$``); the size of its program is left to the real compile."""
    try:
        _compile(pattern, pattern, _SYNTAX_OPTIONS)
    except RegexError as e:
        if e.reason != _TOO_LARGE:
            raise


def _has_any_byte_escape(pattern: str) -> bool:
    r"""Return whether ``pattern`` holds the escape ``\C`` (not ``\\C``, a backslash and a C)."""
    i = 0
    while True:
        i = pattern.find("\\", i)
        if i < 0 or i + 1 >= len(pattern):
            return False
        if pattern[i + 1] == "C":
            return True
        i += 2


class RegexMatch:
    """The groups of one match (spans into the matched text).

    ``group(i)`` / ``group(name)`` return the group's text, ``None`` when it did not take part;
    an unknown group raises ``IndexError`` (as ``re.Match.group`` does).
    """

    __slots__ = ("_text", "_spans", "_names")

    def __init__(self, text: bytes, spans: list[tuple[int, int]], names: dict[str, int]) -> None:
        self._text = text
        self._spans = spans
        self._names = names

    def group(self, ref: int | str = 0) -> str | None:
        """Return group ``ref`` (a number or a name) of the match."""
        i = self._names.get(ref, -1) if isinstance(ref, str) else ref
        if not 0 <= i < len(self._spans):
            raise IndexError(f"no such group: {ref!r}")
        lo, hi = self._spans[i]
        return None if lo < 0 else self._text[lo:hi].decode("utf-8")

    def span(self) -> tuple[int, int]:
        """Return the whole match's ``(start, end)`` as byte offsets into the UTF-8 text."""
        return self._spans[0]


class Regex:
    """A compiled pattern (make one with :func:`anchored` or :func:`unanchored`).

    Immutable and safe to share between threads.

    :ivar pattern: the pattern as written by the user.
    :ivar anchored: whether it must match the whole text (``^(?s:pattern)$``).
    """

    __slots__ = ("pattern", "anchored", "_re", "_raw", "_anchor", "_names", "_fast", "_memo")

    def __init__(self, pattern: str, *, anchored: bool) -> None:
        self.pattern = pattern
        self.anchored = anchored
        if anchored:
            _check_syntax(pattern)
            self._re = _compile(pattern, "^(?s:" + pattern + ")$")
            self._anchor = _ANCHOR_BOTH
        else:
            self._re = _compile(pattern, pattern)
            self._anchor = _UNANCHORED
        # The pybind11 RE2 object under the re-like wrapper: calling Match on it directly
        # saves ~3 µs per call over the wrapper's generator (google-re2 1.1).
        self._raw = getattr(self._re, "_regexp", None)
        self._names = {k.decode("utf-8") if isinstance(k, bytes) else k: v
                       for k, v in self._re.groupindex.items()}
        self._fast = _fast_path(pattern) if anchored else None
        self._memo: dict[str, bool] = {}  # single dict operations: safe under the GIL

    def __repr__(self) -> str:
        return f"{'anchored' if self.anchored else 'unanchored'}({self.pattern!r})"

    def _spans(self, data: bytes, pos: int = 0) -> list[tuple[int, int]] | None:
        """Return the spans (byte offsets; ``(-1, -1)``: group unused) of the first match in
        ``data`` at or after ``pos`` (``^`` still means the start of ``data``), or ``None``."""
        raw = self._raw
        if raw is None:  # a google-re2 without the private object: the public API, on bytes
            m = (self._re.fullmatch if self.anchored else self._re.search)(data, pos)
            return None if m is None else [m.span(i) for i in range(self._re.groups + 1)]
        spans = raw.Match(self._anchor, data, pos, len(data))
        return None if spans[0] == _NO_SPAN else list(spans)

    def matches(self, text: str) -> bool:
        """Return whether ``text`` matches: all of it when anchored, anywhere in it otherwise."""
        fast = self._fast
        if fast is not None:
            return bool(fast(text))
        memo = self._memo
        hit = memo.get(text)
        if hit is None:
            hit = self._spans(_utf8(text)) is not None
            if len(memo) < MEMO_LIMIT:
                memo[text] = hit
        return hit

    def match(self, text: str) -> RegexMatch | None:
        """Return the match with its groups, or ``None``."""
        data = _utf8(text)
        spans = self._spans(data)
        return None if spans is None else RegexMatch(data, spans, self._names)

    def replace_all(self, text: str, template: str) -> str:
        """Replace every match in ``text`` by ``template`` expanded (Go ``ReplaceAllString``).

        Go's rules, which differ from ``re.sub``: an empty match right after a previous match
        is not replaced, and ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$`` are expanded by
        :func:`expand`.
        """
        data = _utf8(text)
        out: list[bytes] = []
        last = 0  # end of the last match copied
        pos = 0  # where the next search starts
        n = len(data)
        while pos <= n:
            spans = self._spans(data, pos)
            if spans is None:
                break
            lo, hi = spans[0]
            out.append(data[last:lo])
            if hi > last or lo == 0:
                out.append(expand(template, RegexMatch(data, spans, self._names)).encode("utf-8"))
            last = hi
            if hi > pos:
                pos = hi
            else:  # an empty match: step over one character (a UTF-8 sequence)
                pos += 1
                while pos < n and data[pos] & 0xC0 == 0x80:
                    pos += 1
        out.append(data[last:])
        return b"".join(out).decode("utf-8")


def _fast_path(pattern: str) -> Any:
    """Return a plain-Python test equivalent to the anchored pattern, or ``None``.

    Prometheus's ``FastRegexMatcher`` shortcuts (``model/labels/regexp.go``): a literal,
    literal alternatives ``a|b|c``, ``.*`` (anything, newlines included under ``(?s)``), ``.+``.
    """
    if pattern == ".*":
        return lambda text: True
    if pattern == ".+":
        return lambda text: text != ""
    if not _META.intersection(pattern.replace("|", "")):
        alts = frozenset(pattern.split("|"))
        return alts.__contains__
    return None


@functools.lru_cache(maxsize=1024)
def anchored(pattern: str) -> Regex:
    """Return ``pattern`` compiled to match whole values, ``.`` matching newlines
    (``^(?s:pattern)$``, Prometheus 3 label matchers and ``label_replace``).

    Compiled patterns are kept (1,024 most recent), so rules and repeated queries compile once.

    :raises RegexError: RE2 rejects the pattern.
    """
    return Regex(pattern, anchored=True)


@functools.lru_cache(maxsize=256)
def unanchored(pattern: str) -> Regex:
    """Return ``pattern`` compiled as written, to match anywhere (Go ``regexp.Compile``).

    :raises RegexError: RE2 rejects the pattern.
    """
    return Regex(pattern, anchored=False)


def expand(template: str, m: RegexMatch) -> str:
    """Expand ``template`` with the groups of ``m`` as Go ``Regexp.ExpandString`` does.

    ``$1`` and ``${1}`` are numbered groups, ``$name`` and ``${name}`` named ones, ``$$`` is a
    ``$``; a name is the longest run of ``[A-Za-z0-9_]`` (so ``$1x`` is the group named ``1x``),
    and a group that does not exist or did not match expands to ``""``. A ``$`` not followed by
    a reference is kept.
    """

    def ref(g: re.Match[str]) -> str:
        if g.group(1) == "$":
            return "$"
        name = g.group(2) or g.group(3)
        try:
            val = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, ValueError):
            return ""
        return val or ""

    return _GO_REF.sub(ref, template)
