r"""Read one line of the Prometheus text format (or OpenMetrics) strictly, as Prometheus's parsers do.

:func:`parse_sample_line` reads a sample line; :func:`parse_meta_line` a ``# HELP`` / ``# TYPE`` /
``# UNIT`` / ``# EOF`` line. Each raises :class:`LineError` (the reason, no line number: the caller,
:class:`~monitor.scrape.exposition.ExpositionParser`, knows it) at the first thing Prometheus would
refuse. The rules and their sources (Prometheus ``model/textparse/promlex.l`` / ``promparse.go``,
``openmetricsparse.go``, and prometheus/common ``expfmt/text_parse.go`` where the issue asks for its
stricter checks):

- a metric name is ``[a-zA-Z_:][a-zA-Z0-9_:]*``, a label name ``[a-zA-Z_][a-zA-Z0-9_]*``; either may
  instead be quoted (Prometheus 3's UTF-8 names: ``{"my.metric", "a.b"="1"}``), and must then be
  non-empty valid UTF-8;
- a label value is double-quoted; its only escapes are ``\\``, ``\"`` and ``\n`` (expfmt: ``invalid
  escape sequence``; Prometheus's own lexer keeps other escapes literally); labels are separated by
  ``,`` (a trailing one allowed); a label name appears once per sample (``duplicate label name``);
  ``__name__`` is not a label of a sample line (expfmt: ``label name "__name__" is reserved``);
- the value is a Go ``ParseFloat`` float: no ``_``, no hex (``p``), ASCII only, no other blank
  (Python's ``float`` would skip a form feed) (``Inf``, ``NaN`` accepted in any case, as Go does);
- the timestamp is digits, milliseconds within int64 (text format; promlex's ``{D}+``: expfmt would
  take ``-5``), or a float of seconds (OpenMetrics); nothing but blanks follows it (OpenMetrics: an
  exemplar ``# {...} v [ts]``);
- any invalid UTF-8 in a sample or ``# HELP`` line is refused (``invalid UTF-8``);
- ``# TYPE`` names one of the format's types, in lower case as promparse (expfmt would take
  ``Counter``) (text: counter, gauge, histogram, summary, untyped;
  OpenMetrics adds gaugehistogram, stateset, info, unknown); ``# UNIT`` (OpenMetrics) is a suffix of
  the family name after ``_``.

``tests/test_exposition_strict.py`` checks each refusal against ``promtool check metrics`` (expfmt).
Lenient where Prometheus's scrape is: the value may follow the name without a blank (``a0.5``
is ``a0`` = 0.5, ``b-1 2`` is ``b`` = -1 at 2 ms, as promlex splits them), blanks after the value
(expfmt refuses them), blanks (spaces and tabs) around tokens, any comment line that is
not ``# HELP``/``# TYPE`` in the text format. Unknown escapes in ``# HELP`` text are kept literally,
as Prometheus's scrape keeps them.
"""

from __future__ import annotations

import math
import re

__all__ = ["LineError", "META_TYPES_OM", "META_TYPES_TEXT", "MetaLine", "parse_meta_line", "parse_sample_line"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: ``name value`` / ``name value ts`` with nothing else: the common line, read in one match.
_PLAIN = re.compile(r"[ \t]*([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]+([^ \t{}\"#]+)(?:[ \t]+([^ \t#]+))?[ \t]*")
_INT64_MAX = 2**63 - 1
_BLANKS = re.compile(r"[ \t]+")
_META = re.compile(r"[ \t]+(HELP|TYPE)[ \t]")
_META_OM = re.compile(r" (HELP|TYPE|UNIT) ")

#: ``# TYPE`` values of the text format (``promparse.go``).
META_TYPES_TEXT = frozenset(("counter", "gauge", "histogram", "summary", "untyped"))
#: ``# TYPE`` values of OpenMetrics 1.0 (``openmetricsparse.go``).
META_TYPES_OM = frozenset(("counter", "gauge", "histogram", "gaugehistogram", "stateset", "info", "summary",
                           "unknown"))

#: ``(keyword, family name, text)`` of a metadata line: keyword ``HELP``, ``TYPE``, ``UNIT`` or ``EOF``.
MetaLine = tuple[str, str, str]


class LineError(Exception):
    """A line breaks the exposition format; ``str(e)`` is the reason (e.g. ``invalid escape ...``)."""


def _check_utf8(line: str) -> None:
    """Refuse a line holding undecodable bytes (kept as lone surrogates by ``surrogateescape``)."""
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise LineError("invalid UTF-8") from None


def _skip(line: str, i: int) -> int:
    n = len(line)
    while i < n and line[i] in " \t":
        i += 1
    return i


def _quoted(line: str, i: int, what: str) -> tuple[str, int]:
    """Read the quoted string starting at ``line[i] == '"'``; return its text and the index after it."""
    j = line.find('"', i + 1)
    if j < 0:
        raise LineError(f"unterminated {what}")
    text = line[i + 1:j]
    if "\\" not in text:
        return text, j + 1
    out: list[str] = []
    k, n = i + 1, len(line)
    while k < n:
        c = line[k]
        if c == "\\":
            if k + 1 >= n:
                break
            e = line[k + 1]
            if e == "n":
                out.append("\n")
            elif e in '"\\':
                out.append(e)
            else:
                raise LineError(f"invalid escape sequence '\\{e}' in {what}")
            k += 2
        elif c == '"':
            return "".join(out), k + 1
        else:
            out.append(c)
            k += 1
    raise LineError(f"unterminated {what}")


def _labels(line: str, i: int, name: str) -> tuple[str, dict[str, str], int]:
    """Read a label set from just after its ``{``; return the metric name, the labels, the index after ``}``."""
    labels: dict[str, str] = {}
    n = len(line)
    while True:
        i = _skip(line, i)
        if i >= n:
            raise LineError("unterminated label set: expected '}'")
        c = line[i]
        if c == "}":
            return name, labels, i + 1
        if c == '"':
            key, i = _quoted(line, i, "quoted name")
            j = _skip(line, i)
            if j < n and line[j] in ",}":  # a quoted metric name inside the braces (Prometheus 3)
                if name:
                    raise LineError(f'metric name already set: "{name}"')
                if not key:
                    raise LineError("empty metric name")
                name, i = key, (j + 1 if line[j] == "," else j)
                continue
            if not key:
                raise LineError("empty label name")
        else:
            m = _LABEL.match(line, i)
            if m is None:
                raise LineError(f"expected label name, got {line[i:i + 20]!r}")
            key, i = m.group(), m.end()
        i = _skip(line, i)
        if i >= n or line[i] != "=":
            raise LineError(f'expected "=" after label name "{key}"')
        i = _skip(line, i + 1)
        if i >= n or line[i] != '"':
            raise LineError(f'expected \'"\' at start of the value of label "{key}"')
        value, i = _quoted(line, i, f'value of label "{key}"')
        if key == "__name__":
            raise LineError('label name "__name__" is reserved')
        if key in labels:
            raise LineError(f'duplicate label name "{key}"')
        labels[key] = value
        i = _skip(line, i)
        if i < n and line[i] == ",":
            i += 1
        elif i >= n or line[i] != "}":
            raise LineError(f'expected "," or "}}" after the value of label "{key}"')


def _float(tok: str) -> float:
    """Go's ``strconv.ParseFloat`` as Prometheus calls it (no ``_``, no hex floats)."""
    if not tok.isascii() or "_" in tok or "p" in tok or "P" in tok or tok.strip() != tok:
        raise LineError(f'expected float as value, got "{tok[:40]}"')
    try:
        return float(tok)
    except ValueError:
        raise LineError(f'expected float as value, got "{tok[:40]}"') from None


def _timestamp(tok: str, openmetrics: bool) -> int:
    """Return a sample timestamp in ms: integer ms (text format) or float seconds (OpenMetrics)."""
    if openmetrics:
        try:
            f = _float(tok)
        except LineError:
            raise LineError(f'expected timestamp, got "{tok[:40]}"') from None
        if not math.isfinite(f) or abs(f) * 1000 > _INT64_MAX:
            raise LineError(f'invalid timestamp "{tok[:40]}"')
        return int(round(f * 1000))
    if not (tok.isascii() and tok.isdigit()):
        raise LineError(f'expected integer timestamp (ms) or end of line, got "{tok[:40]}"')
    ts = int(tok)
    if ts > _INT64_MAX:
        raise LineError(f'timestamp out of range: "{tok[:40]}"')
    return ts


def parse_sample_line(line: str, openmetrics: bool = False) -> tuple[str, dict[str, str], float, int | None]:
    """Read one sample line (not a comment, not blank).

    :param openmetrics: OpenMetrics rules: timestamps in seconds (float), an exemplar may follow.
    :return: ``(name, labels, value, timestamp_ms or None)``, names as exposed, label values unescaped.
    :raises LineError: the line breaks the format (the reason, without the line number).
    """
    m = _PLAIN.fullmatch(line)
    if m is not None:
        # all ASCII by the pattern but the value and timestamp tokens, which must be ASCII
        name, value, ts = m.groups()
        return name, {}, _float(value), (None if ts is None else _timestamp(ts, openmetrics))
    _check_utf8(line)
    i = _skip(line, 0)
    n = len(line)
    name = ""
    labels: dict[str, str] = {}
    nm = _NAME.match(line, i)
    if nm is not None:
        name, i = nm.group(), nm.end()  # the value may follow without a blank (promlex): ``a0.5`` is a0 = .5
        i = _skip(line, i)
    if i < n and line[i] == "{":
        name, labels, i = _labels(line, i + 1, name)
    elif not name:
        raise LineError(f"expected a metric name, got {line[i:i + 20]!r}")
    if not name:
        raise LineError("metric name not set")
    rest = [t for t in _BLANKS.split(line[i:]) if t]
    if openmetrics and "#" in rest:  # an exemplar: ``# {labels} value [timestamp]``
        k = rest.index("#")
        exemplar = line[i:].split("#", 1)[1].strip() if k else ""
        if k and not exemplar.startswith("{"):
            raise LineError("expected exemplar label set after '#'")
        rest = rest[:k]
    if not rest:
        raise LineError(f'expected value after metric "{name[:60]}"')
    value = _float(rest[0])
    if len(rest) > 2:
        raise LineError(f'unexpected "{rest[2][:40]}" after the timestamp')
    return name, labels, value, (_timestamp(rest[1], openmetrics) if len(rest) == 2 else None)


def _meta_name(text: str, keyword: str) -> tuple[str, str]:
    """Split ``name rest`` of a metadata line; the name may be quoted."""
    if text.startswith('"'):
        name, i = _quoted(text, 0, "quoted metric name")
        if not name:
            raise LineError(f"expected metric name after {keyword}")
        if i < len(text) and text[i] not in " \t":
            raise LineError(f"expected blank after the metric name of {keyword}")
        return name, text[i:].strip(" \t")
    m = _NAME.match(text)
    if m is None or (m.end() < len(text) and text[m.end()] not in " \t"):
        raise LineError(f"invalid metric name in {keyword}: {text.split()[0][:60] if text.split() else ''!r}")
    return m.group(), text[m.end():].strip(" \t")


def _unescape_help(text: str, openmetrics: bool) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    k, n = 0, len(text)
    while k < n:
        c = text[k]
        if c == "\\" and k + 1 < n and (text[k + 1] in "\\n" or (openmetrics and text[k + 1] == '"')):
            out.append("\n" if text[k + 1] == "n" else text[k + 1])
            k += 2
        else:
            out.append(c)
            k += 1
    return "".join(out)


def parse_meta_line(line: str, openmetrics: bool = False) -> MetaLine | None:
    """Read a comment line (it starts with ``#`` after blanks).

    :return: ``(keyword, name, text)`` for ``# HELP`` (text unescaped), ``# TYPE`` (the type), ``# UNIT``
        (OpenMetrics, the unit) and ``# EOF`` (OpenMetrics: ``("EOF", "", "")``); ``None`` for any other
        comment of the text format.
    :raises LineError: a malformed metadata line; in OpenMetrics also any other comment.
    """
    body = line.strip(" \t")[1:]
    if openmetrics and body == " EOF":
        return "EOF", "", ""
    m = (_META_OM if openmetrics else _META).match(body)
    text = body[m.end():].strip(" \t") if m else ""
    if m is None or not text:
        if openmetrics:
            raise LineError("invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF, "
                            "each with a metric name")
        return None
    keyword = m.group(1)
    name, rest = _meta_name(text, keyword)
    if keyword == "HELP":
        _check_utf8(rest)
        return "HELP", name, _unescape_help(rest, openmetrics)
    if keyword == "TYPE":
        if rest not in (META_TYPES_OM if openmetrics else META_TYPES_TEXT):
            raise LineError(f'invalid metric type "{rest[:40]}"')
        return "TYPE", name, rest
    if rest and not name.endswith("_" + rest):
        raise LineError(f'unit "{rest[:40]}" not a suffix of metric "{name[:60]}"')
    return "UNIT", name, rest
