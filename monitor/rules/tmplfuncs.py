"""Functions and Go-style value formatting for rule templates (see :mod:`monitor.rules.templates`).

Outputs match Prometheus ``template/template.go`` (``NewTemplateExpander`` funcMap: humanize,
humanize1024, humanizeDuration, humanizePercentage, humanizeTimestamp, title, first, label, value,
match, reReplaceAll, ...) and Go's ``fmt`` (``%v`` of a float prints ``1e+06``, ``+Inf``; a
missing map key prints ``<no value>``), plus the Go ``text/template`` builtins (and, or, not, eq,
ne, lt, le, gt, ge, len, index, print, printf, println).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from monitor.errors import RuleError
from model.regex import unanchored

__all__ = ["TemplateSample", "NO_VALUE", "FUNCTIONS", "go_str", "go_sprintf", "humanize", "humanize1024",
           "humanize_duration", "humanize_percentage", "humanize_timestamp", "field_of", "truth",
           "range_items", "range_pairs"]


@dataclass(frozen=True)
class TemplateSample:
    """One element of a ``query`` result as templates see it (Prometheus ``template.sample``).

    :param Labels: label name -> value, ``__name__`` included.
    :param Value: the sample value.
    """

    Labels: dict[str, str] = field(default_factory=dict)
    Value: float = 0.0


class _NoValue:
    """Go's invalid reflect.Value: a missing map key prints ``<no value>`` and is false."""

    def __str__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


# --------------------------------------------------------------------------- Go value formatting

def _go_float_shortest(v: float) -> str:
    """Format like Go ``%v`` / ``strconv.FormatFloat(v, 'g', -1, 64)``: ``1e+06``, ``0.5``, ``+Inf``.

    Go uses the shortest round-tripping digits and switches to ``d.ddde+XX`` when the decimal
    exponent is < -4 or >= 6 (``strconv/ftoa.go``, ``eprec = 6`` when shortest).
    """
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exp = Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    # Decimal value = 0.ds * 10**dp
    dp = len(digits) + int(exp)
    e = dp - 1
    neg = "-" if sign else ""
    if e < -4 or e >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{neg}{ds}{'0' * (dp - len(ds))}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def go_str(x: Any) -> str:
    """Print a value as Go's ``fmt.Sprint`` would for the types templates meet."""
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return _go_float_shortest(x)
    if isinstance(x, int):
        return str(x)
    if x is None:
        return "<nil>"
    if isinstance(x, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(x[k])}" for k in sorted(x)) + "]"
    if isinstance(x, (list, tuple)):
        return "[" + " ".join(go_str(i) for i in x) + "]"
    if isinstance(x, TemplateSample):
        return "{" + go_str(x.Labels) + " " + go_str(x.Value) + "}"
    return str(x)


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def _g4(v: float) -> str:
    """Go ``fmt.Sprintf("%.4g", v)``."""
    return _special(v) or "%.4g" % v


_PRINTF_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go ``fmt.Sprintf`` for the verbs templates use: ``%v %s %q %d %f %F %e %E %g %G %x %X %t %%``.

    Mismatched verbs print Go's ``%!d(float64=1.5)`` marker; missing arguments ``%!v(MISSING)``.
    """
    out: list[str] = []
    ai = 0
    pos = 0
    for m in _PRINTF_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width, ai = str(int(args[ai])) if ai < len(args) else "", ai + 1
        if prec == "*":
            prec, ai = str(int(args[ai])) if ai < len(args) else "", ai + 1
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        spec = flags.replace("#", "") + (width or "")
        pspec = spec + ("." + (prec or "0") if prec is not None else "")
        if verb in "vs":
            s = go_str(a)
            if prec is not None:
                s = s[:int(prec or 0)]
            out.append(("%" + spec + "s") % s)
        elif verb == "q":
            out.append(("%" + spec + "s") % ('"' + go_str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'))
        elif verb == "t":
            out.append(go_str(a) if isinstance(a, bool) else f"%!t({_go_type(a)}={go_str(a)})")
        elif verb in "dxXob":
            if isinstance(a, int) and not isinstance(a, bool):
                out.append(("%" + spec + verb) % a if verb != "b" else format(a, "b"))
            else:
                out.append(f"%!{verb}({_go_type(a)}={go_str(a)})")
        elif verb in "fFeEgG":
            if isinstance(a, (int, float)) and not isinstance(a, bool):
                fv = float(a)
                sp = _special(fv)
                if sp is not None:
                    out.append(("%" + spec + "s") % sp)
                elif verb in "gG" and prec is None:
                    s = _go_float_shortest(fv)
                    out.append(("%" + spec + "s") % (s.upper() if verb == "G" else s))
                else:
                    out.append(("%" + pspec + verb.replace("F", "f")) % fv)
            else:
                out.append(f"%!{verb}({_go_type(a)}={go_str(a)})")
        else:
            out.append(f"%!{verb}({_go_type(a)}={go_str(a)})")
    out.append(fmt[pos:])
    if ai < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(a)}={go_str(a)}" for a in args[ai:]) + ")")
    return "".join(out)


def _go_type(a: Any) -> str:
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, int):
        return "int"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, str):
        return "string"
    return type(a).__name__


# --------------------------------------------------------------------------- Prometheus functions

def _to_float(x: Any) -> float:
    """Prometheus ``convertToFloat``: numbers as they are, strings parsed with ParseFloat."""
    if isinstance(x, bool):
        raise RuleError(f"can't convert {go_str(x)} to float")
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x.strip().replace("Inf", "inf"))
        except ValueError:
            raise RuleError(f'strconv.ParseFloat: parsing "{x}": invalid syntax') from None
    raise RuleError(f"can't convert {go_str(x)} to float")


def humanize(x: Any) -> str:
    """Prometheus ``humanize``: SI prefixes (k M G ... / m u n ...) with ``%.4g``."""
    v = _to_float(x)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(x: Any) -> str:
    """Prometheus ``humanize1024``: binary prefixes (ki Mi Gi ...) with ``%.4g``."""
    v = _to_float(x)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(x: Any) -> str:
    """Prometheus ``humanizeDuration``: seconds as ``1d 2h 3m 4s``, ``1m 5s``, ``1.5s``, ``250ms``."""
    v = _to_float(x)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(x: Any) -> str:
    """Prometheus ``humanizePercentage``: ``%.4g%%`` of ``v * 100`` (0.1234 -> ``12.34%``)."""
    return _g4(_to_float(x) * 100) + "%"


def humanize_timestamp(x: Any) -> str:
    """Prometheus ``humanizeTimestamp``: Unix seconds as Go's ``time.Time.String()`` in UTC.

    ``1.5`` -> ``1970-01-01 00:00:01.5 +0000 UTC``.
    """
    v = _to_float(x)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    sec, nanos = divmod(int(v * 1e9), 10**9)  # as Prometheus floatToTime: int64(v * 1e9) ns
    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=sec)
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"


def _title(s: str) -> str:
    """Go ``strings.Title``: upper-case the first letter of each word."""
    out, prev_sep = [], True
    for ch in str(s):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _first(v: Any) -> Any:
    if not v:
        raise RuleError("first() called on vector with no elements")
    return v[0]


def _label(name: str, s: TemplateSample) -> str:
    return s.Labels.get(name, "")


def _value(s: TemplateSample) -> float:
    return s.Value


def _strvalue(s: TemplateSample) -> str:
    return s.Labels.get("__value__", "")


def _sort_by_label(name: str, v: list[TemplateSample]) -> list[TemplateSample]:
    return sorted(v, key=lambda s: s.Labels.get(name, ""))


def _match(pattern: str, text: str) -> bool:
    """``match``: Go ``regexp.MatchString`` (RE2, unanchored, linear time; :mod:`model.regex`)."""
    return unanchored(pattern).matches(text)


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    """``reReplaceAll``: Go ``regexp.MustCompile(pattern).ReplaceAllString(text, repl)``
    (``$1``, ``${name}``, ``$$`` expanded the Go way)."""
    return unanchored(pattern).replace_all(text, repl)


def _strip_port(host: str) -> str:
    m = re.fullmatch(r"\[(.*)\]:\d+|(.*?):\d+", host)
    if m:
        return m.group(1) or m.group(2)
    return host


def _strip_domain(host: str) -> str:
    port = ""
    m = re.fullmatch(r"(.*?)(:\d+)", host)
    if m and not host.startswith("["):
        host, port = m.group(1), m.group(2)
    if re.fullmatch(r"[\d.]+", host) or ":" in host:
        return host + port
    return host.split(".", 1)[0] + port


def _go_and(*a: Any) -> Any:
    for x in a:
        if not truth(x):
            return x
    return a[-1]


def _go_or(*a: Any) -> Any:
    for x in a:
        if truth(x):
            return x
    return a[-1]


def _go_eq(a: Any, *bs: Any) -> bool:
    return any(a == b for b in bs)


def _go_index(x: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(x, Mapping):
            x = x.get(k, NO_VALUE)
        else:
            x = x[int(k)]
    return x


def truth(x: Any) -> bool:
    """Return the template truth of ``x`` (``if``/``with``: empty and zero values are false)."""
    return bool(x)


def field_of(x: Any, name: str) -> Any:
    """Go field/map-key access ``x.name``: missing map keys give ``<no value>``."""
    if isinstance(x, Mapping):
        return x.get(name, NO_VALUE)
    if isinstance(x, TemplateSample) and name in ("Labels", "Value"):
        return getattr(x, name)
    raise RuleError(f"can't evaluate field {name} in type {_go_type(x)}")


def range_items(x: Any) -> list[Any]:
    """Return what ``{{ range }}`` iterates: map values by sorted key, ``range(n)`` for a number."""
    if isinstance(x, Mapping):
        return [x[k] for k in sorted(x)]
    if isinstance(x, _NoValue) or x is None:
        return []
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return list(range(int(x)))
    return list(x)


def range_pairs(x: Any) -> list[tuple[Any, Any]]:
    """Return ``(key, value)`` pairs for ``{{ range $k, $v := x }}``: sorted map keys, else indices."""
    if isinstance(x, Mapping):
        return [(k, x[k]) for k in sorted(x)]
    return list(enumerate(range_items(x)))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Prometheus template/template.go NewTemplateExpander funcMap
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
    "humanizeTimestamp": humanize_timestamp,
    "title": _title,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "first": _first,
    "label": _label,
    "value": _value,
    "strvalue": _strvalue,
    "sortByLabel": _sort_by_label,
    "match": _match,
    "reReplaceAll": _re_replace_all,
    "safeHtml": lambda s: str(s),
    "stripPort": _strip_port,
    "stripDomain": _strip_domain,
    "args": lambda *a: {f"arg{i}": x for i, x in enumerate(a)},
    # Go text/template builtins
    "printf": go_sprintf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "and": _go_and,
    "or": _go_or,
    "not": lambda x: not truth(x),
    "eq": _go_eq,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "len": lambda x: len(x),
    "index": _go_index,
}
