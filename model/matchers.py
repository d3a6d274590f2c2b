r"""Label matchers: ``name op value`` with op ``=``, ``!=``, ``=~``, ``!~``, and Alertmanager's
string form (``severity="critical"``, ``{a="b", c!~"d"}``).

Matching follows Prometheus ``model/labels/matcher.go`` (regexes fully anchored, ``.`` matching
newlines, RE2 syntax matched in linear time: :mod:`model.regex`; an absent label has the value
``""``). Parsing follows Alertmanager ``pkg/labels/parse.go`` (``ParseMatcher`` /
``ParseMatchers``): a label name, an operator, then a value that is either bare (surrounding
whitespace trimmed) or double-quoted with the escapes ``\"``, ``\\`` and ``\n``; a list may
be wrapped in braces and is separated by commas (commas inside quotes belong to the value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from model.labels import Labels
from model.regex import Regex, RegexError, anchored

__all__ = ["Matcher", "MATCH_OPS", "parse_matcher", "parse_matchers", "matchers_from_legacy", "matches_all",
           "format_matchers", "sort_key"]

MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher: ``name op value`` with op one of ``=``, ``!=``, ``=~``, ``!~``.

    Regexes are fully anchored with ``.`` matching newlines (``^(?s:value)$``), as in Prometheus 3
    (``model/labels/regexp.go``), in RE2 syntax and matched in linear time
    (:func:`model.regex.anchored`). A label that is absent has the value ``""``.

    :raises ValueError: on an unknown op or an invalid regex (``invalid regex '(': missing ): (``).
    """

    name: str
    op: str
    value: str
    _re: Regex | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in MATCH_OPS:
            raise ValueError(f"unknown matcher op {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_re", anchored(self.value))
            except RegexError as e:
                raise ValueError(f"invalid regex {self.value!r}: {e}") from None

    def matches(self, value: str) -> bool:
        """Return whether a label value (``""`` when absent) satisfies this matcher."""
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        m = self._re.matches(value)  # type: ignore[union-attr]
        return m if op == "=~" else not m

    def matches_labels(self, labels: Labels) -> bool:
        """Return whether a label set satisfies this matcher."""
        return self.matches(labels.get(self.name))

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


# Applied to the stripped text: the former ``\s*(.*?)\s*$`` tail backtracked quadratically
# over inner whitespace (16,000 spaces: 1.2 s).
_MATCHER_RE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*)", re.DOTALL)


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as ``severity="critical"`` or ``env!=prod``.

    :raises ValueError: ``bad matcher format: <text>``, an unescaped double quote, or an
        invalid regex.
    """
    m = _MATCHER_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad matcher format: {text}")
    name, op, raw = m.group(1), m.group(2), m.group(3)
    expect_quote = raw.startswith('"')
    if expect_quote:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                out.append("\n")
            elif ch in ('"', "\\"):
                out.append(ch)
            else:
                out.append("\\" + ch)
            continue
        if ch == "\\":
            if i < len(raw) - 1:
                escaped = True
                continue
            out.append("\\")  # a trailing backslash is literal (parse.go does the same)
        elif ch == '"':
            if not expect_quote or i < len(raw) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {m.group(3)}")
            expect_quote = False
        else:
            out.append(ch)
    if expect_quote:
        raise ValueError(f"matcher value contains unescaped double quote: {m.group(3)}")
    return Matcher(name, op, "".join(out))


def _split(text: str) -> list[str]:
    """Split a matcher list on commas that are outside double quotes."""
    parts: list[str] = []
    buf: list[str] = []
    in_quote = escaped = False
    for ch in text:
        if escaped:
            escaped = False
            buf.append(ch)
            continue
        if ch == "\\" and in_quote:
            escaped = True
            buf.append(ch)
            continue
        if ch == '"':
            in_quote = not in_quote
        if ch == "," and not in_quote:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a comma-separated matcher list, optionally in braces: ``{a="b", c=~"d|e"}``.

    ``""`` and ``"{}"`` give an empty list; a trailing comma is allowed.

    :raises ValueError: on the first bad matcher.
    """
    s = text.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    elif s.startswith("{") or (s.endswith("}") and not s.endswith('"}')):
        raise ValueError(f"bad matcher format: {text}")
    if not s.strip():
        return []
    parts = _split(s)
    if not parts[-1].strip():
        parts = parts[:-1]
    out = []
    for p in parts:
        if not p.strip():
            raise ValueError(f"bad matcher format: {text}")
        out.append(parse_matcher(p))
    return out


def matchers_from_legacy(match: Mapping[str, str], match_re: Mapping[str, str]) -> list[Matcher]:
    """Turn Alertmanager's deprecated ``match`` / ``match_re`` maps into matchers."""
    return [Matcher(k, "=", v) for k, v in match.items()] + [Matcher(k, "=~", v) for k, v in match_re.items()]


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    """Return whether every matcher matches the label set (an empty list matches everything)."""
    return all(m.matches(labels.get(m.name)) for m in matchers)


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """Format matchers as Alertmanager prints them: ``{severity="critical", service=~"api|db"}``."""
    return "{" + ", ".join(_format_one(m) for m in matchers) + "}"


def _format_one(m: Matcher) -> str:
    value = m.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{m.name}{m.op}"{value}"'


def sort_key(m: Matcher) -> tuple[str, str, str]:
    """Order matchers by name, op, value (Alertmanager sorts route matchers the same way)."""
    return (m.name, m.op, m.value)
