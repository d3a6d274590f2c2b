"""Prometheus-style label and annotation templates, translated to Jinja2 and rendered sandboxed.

Rule authors write Go ``text/template`` syntax, as in Prometheus (``template/template.go``):
``{{ $value }}``, ``{{ $labels.instance }}``, ``{{ $externalLabels.env }}``, ``{{ .Value }}``,
``{{ $value | humanizePercentage }}``, ``{{ printf "%.2f" $value }}``,
``{{ if gt $value 0.5 }}...{{ else }}...{{ end }}``,
``{{ range query "up" }}{{ .Labels.instance }} {{ .Value }}{{ end }}``,
``{{ with query "..." }}{{ . | first | value }}{{ end }}``, ``{{ $x := ... }}``, ``{{- trim -}}``.

:func:`compile_template` lexes and parses each ``{{ action }}`` and emits a Jinja2 template in which
every Go construct becomes a call to one of our helper functions (``gfn_humanize(...)``), every
literal a constant from a table, and ``.``/``$var`` plain Jinja variables; it is then rendered in a
:class:`jinja2.sandbox.SandboxedEnvironment`. Values print as Go's ``fmt`` would (``1e+06``,
``+Inf``, ``<no value>`` for a missing label), and the ``humanize*`` functions reproduce
Prometheus's formats exactly.

A template that does not parse (unknown function, undefined variable, unbalanced ``end``) raises
:class:`~monitor.errors.RuleError` from :func:`compile_template`; :func:`check_template`
additionally renders it with dummy data, as rule files are checked at load.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from monitor.errors import RuleError

__all__ = ["TemplateSample", "compile_template", "check_template", "render_template", "expand",
           "go_str", "humanize", "humanize1024", "humanize_duration", "humanize_percentage",
           "humanize_timestamp", "go_sprintf", "QueryFunc"]

#: ``query(expr: str) -> list[TemplateSample]`` — runs a PromQL instant query at the evaluation time.
QueryFunc = Callable[[str], "list[TemplateSample]"]


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
    sec = math.floor(v)
    nanos = int(round((v - sec) * 1e9))
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
    return re.search(_go_re(pattern), text) is not None


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    # Go expands $1 / ${1} / ${name}; Python wants \g<1>.
    py_repl = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">",
                     repl.replace("\\", "\\\\"))
    return re.sub(_go_re(pattern), py_repl, text)


def _go_re(pattern: str) -> str:
    return re.sub(r"\(\?P<", "(?P<", pattern)


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
        if not _truth(x):
            return x
    return a[-1]


def _go_or(*a: Any) -> Any:
    for x in a:
        if _truth(x):
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


def _truth(x: Any) -> bool:
    return bool(x)


def _field(x: Any, name: str) -> Any:
    """Go field/map-key access ``x.name``: missing map keys give ``<no value>``."""
    if isinstance(x, Mapping):
        return x.get(name, NO_VALUE)
    if isinstance(x, TemplateSample) and name in ("Labels", "Value"):
        return getattr(x, name)
    raise RuleError(f"can't evaluate field {name} in type {_go_type(x)}")


def _range_items(x: Any) -> list[Any]:
    if isinstance(x, Mapping):
        return [x[k] for k in sorted(x)]
    if isinstance(x, _NoValue) or x is None:
        return []
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return list(range(int(x)))
    return list(x)


def _range_pairs(x: Any) -> list[tuple[Any, Any]]:
    if isinstance(x, Mapping):
        return [(k, x[k]) for k in sorted(x)]
    return list(enumerate(_range_items(x)))


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
    "not": lambda x: not _truth(x),
    "eq": _go_eq,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "len": lambda x: len(x),
    "index": _go_index,
}
#: Functions that are bound per render (they need the evaluation's query function / URL).
_BOUND = ("query", "externalURL", "pathPrefix")


# --------------------------------------------------------------------------- lexer / translator

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
""", re.VERBOSE)


def _lex(src: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise RuleError(f"unexpected {src[pos]!r} in command")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append((kind, m.group()))
    return toks


_PREDECLARED = ("$", "$labels", "$externalLabels", "$externalURL", "$value")


class _Translator:
    """Translate one Go template into Jinja2 source (see the module docstring)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.consts: list[Any] = []
        self.vars: set[str] = set(_PREDECLARED)
        self.out: list[str] = []
        self.stack: list[list[str]] = []  # each entry: [kind, end-source]
        self.n = 0

    def const(self, v: Any) -> str:
        self.consts.append(v)
        return f"gk[{len(self.consts) - 1}]"

    # -- top level
    def translate(self) -> str:
        text, pos = self.text, 0
        trim_next = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if start >= 0 and text[start + 2:start + 4] in ("- ", "-\t", "-\n"):
                chunk = chunk.rstrip(" \t\r\n")
            self.emit_text(chunk)
            if start < 0:
                break
            end, body, trim_next = self.find_close(start)
            self.action(body.strip())
            pos = end
        if self.stack:
            raise RuleError(f"unexpected EOF (missing {{{{end}}}} for {{{{{self.stack[-1][0]}}}}})")
        return "".join(self.out)

    def find_close(self, start: int) -> tuple[int, str, bool]:
        text, i = self.text, start + 2
        if text.startswith("- ", i) or text.startswith("-\t", i) or text.startswith("-\n", i):
            i += 1
        body_start = i
        quote = ""
        while i < len(text):
            c = text[i]
            if quote:
                if c == "\\" and quote != "`":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "\"`'":
                quote = c
            elif text.startswith("}}", i):
                body = text[body_start:i]
                trim = body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-")
                if trim:
                    body = body[:-1]
                return i + 2, body, trim
            elif text.startswith("*/", i) and text[body_start:].lstrip().startswith("/*"):
                pass
            i += 1
        raise RuleError("unclosed action")

    def emit_text(self, chunk: str) -> None:
        if not chunk:
            return
        if "{" in chunk or "%}" in chunk or "#}" in chunk or "}}" in chunk:
            self.out.append("{{ " + self.const(chunk) + " }}")
        else:
            self.out.append(chunk)

    # -- actions
    def action(self, body: str) -> None:
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise RuleError("unclosed comment")
            return
        toks = _lex(body)
        if not toks:
            raise RuleError("missing value for command")
        kind, word = toks[0]
        if kind == "ident" and word in ("if", "range", "with", "else", "end", "define", "template",
                                        "block", "break", "continue"):
            getattr(self, "kw_" + word)(toks[1:])
            return
        # variable declaration / assignment: $x := pipeline
        if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] in ("decl", "assign"):
            name = toks[0][1]
            if toks[1][0] == "assign" and name not in self.vars:
                raise RuleError(f'undefined variable "{name}"')
            self.vars.add(name)
            self.out.append("{% set " + self.varname(name) + " = " + self.pipeline(toks[2:]) + " %}")
            return
        self.out.append("{{ gstr(" + self.pipeline(toks) + ") }}")

    def varname(self, name: str) -> str:
        return "gv_" + name[1:] if name != "$" else "gv__root"

    def kw_if(self, toks: list[tuple[str, str]]) -> None:
        self.out.append("{% if gtruth(" + self.pipeline(toks) + ") %}")
        self.stack.append(["if", "{% endif %}"])

    def kw_range(self, toks: list[tuple[str, str]]) -> None:
        names = []
        # range $i, $e := pipeline  |  range $e := pipeline
        if len(toks) >= 2 and toks[0][0] == "var":
            if toks[1][0] == "comma" and len(toks) >= 4 and toks[2][0] == "var" and toks[3][0] == "decl":
                names, toks = [toks[0][1], toks[2][1]], toks[4:]
            elif toks[1][0] == "decl":
                names, toks = [toks[0][1]], toks[2:]
        expr = self.pipeline(toks)
        self.vars.update(names)
        if len(names) == 2:
            self.out.append("{% for " + self.varname(names[0]) + ", gdot in grange_pairs(" + expr + ") %}"
                            "{% set " + self.varname(names[1]) + " = gdot %}")
        else:
            self.out.append("{% for gdot in grange(" + expr + ") %}")
            if names:
                self.out.append("{% set " + self.varname(names[0]) + " = gdot %}")
        self.stack.append(["range", "{% endfor %}"])

    def kw_with(self, toks: list[tuple[str, str]]) -> None:
        self.n += 1
        tmp = f"gw{self.n}"
        names = []
        if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] == "decl":
            names, toks = [toks[0][1]], toks[2:]
        self.out.append("{% with " + tmp + " = " + self.pipeline(toks) + " %}{% if gtruth(" + tmp
                        + ") %}{% with gdot = " + tmp + " %}")
        for n in names:
            self.vars.add(n)
            self.out.append("{% set " + self.varname(n) + " = gdot %}")
        self.stack.append(["with", "{% endwith %}{% endif %}{% endwith %}"])

    def kw_else(self, toks: list[tuple[str, str]]) -> None:
        if not self.stack:
            raise RuleError("unexpected {{else}}")
        top = self.stack[-1]
        if toks and toks[0] == ("ident", "if"):
            if top[0] != "if":
                raise RuleError("unexpected {{else if}}")
            self.out.append("{% elif gtruth(" + self.pipeline(toks[1:]) + ") %}")
            return
        if toks:
            raise RuleError("unexpected tokens after {{else}}")
        if top[0] == "with":
            self.out.append("{% endwith %}{% else %}")
            top[1] = "{% endif %}{% endwith %}"
        else:
            self.out.append("{% else %}")

    def kw_end(self, toks: list[tuple[str, str]]) -> None:
        if toks:
            raise RuleError("unexpected tokens after {{end}}")
        if not self.stack:
            raise RuleError("unexpected {{end}}")
        self.out.append(self.stack.pop()[1])

    def kw_define(self, toks: list[tuple[str, str]]) -> None:
        raise RuleError("{{define}} / {{template}} are not supported in rule templates")

    kw_template = kw_block = kw_define

    def kw_break(self, toks: list[tuple[str, str]]) -> None:
        raise RuleError("{{break}} / {{continue}} are not supported in rule templates")

    kw_continue = kw_break

    # -- pipelines
    def pipeline(self, toks: list[tuple[str, str]]) -> str:
        if not toks:
            raise RuleError("missing value for command")
        cmds: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for t in toks:
            if t[0] == "lp":
                depth += 1
            elif t[0] == "rp":
                depth -= 1
                if depth < 0:
                    raise RuleError("unexpected right paren")
            if t[0] == "pipe" and depth == 0:
                cmds.append([])
            else:
                cmds[-1].append(t)
        if depth:
            raise RuleError("unclosed left paren")
        expr: str | None = None
        for cmd in cmds:
            if not cmd:
                raise RuleError("missing command in pipeline")
            expr = self.command(cmd, expr)
        assert expr is not None
        return expr

    def command(self, toks: list[tuple[str, str]], piped: str | None) -> str:
        operands = self.split_operands(toks)
        head = operands[0]
        if len(head) == 1 and head[0][0] == "ident" and head[0][1] not in ("true", "false", "nil"):
            fname = head[0][1]
            if fname not in FUNCTIONS and fname not in _BOUND:
                raise RuleError(f'function "{fname}" not defined')
            args = [self.operand(o) for o in operands[1:]]
            if piped is not None:
                args.append(piped)
            return "gfn_" + fname + "(" + ", ".join(args) + ")"
        if len(operands) > 1 or piped is not None:
            raise RuleError(f"can't give argument to non-function {''.join(t[1] for t in head)}")
        return self.operand(head)

    def split_operands(self, toks: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
        """Split a command into operands; a term followed directly by ``.field``s is one operand."""
        ops: list[list[tuple[str, str]]] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t[0] == "lp":
                depth, j = 0, i
                while j < len(toks):
                    depth += toks[j][0] == "lp"
                    depth -= toks[j][0] == "rp"
                    if depth == 0:
                        break
                    j += 1
                cur = toks[i:j + 1]
                i = j + 1
            elif t[0] in ("rp", "comma", "decl", "assign"):
                raise RuleError(f"unexpected {t[1]!r} in operand")
            else:
                cur = [t]
                i += 1
            while i < len(toks) and toks[i][0] == "field" and cur[-1][0] != "ident":
                cur.append(toks[i])
                i += 1
            ops.append(cur)
        return ops

    def operand(self, toks: list[tuple[str, str]]) -> str:
        kind, word = toks[0]
        rest = toks[1:]
        if kind == "lp":
            depth, j = 0, 0
            for j, t in enumerate(toks):
                depth += t[0] == "lp"
                depth -= t[0] == "rp"
                if depth == 0:
                    break
            base = "(" + self.pipeline(toks[1:j]) + ")"
            rest = toks[j + 1:]
        elif kind == "var":
            if word not in self.vars:
                raise RuleError(f'undefined variable "{word}"')
            base = self.varname(word)
        elif kind == "dot":
            base = "gdot"
        elif kind == "field":
            base = "gdot"
            rest = toks
        elif kind == "str":
            base = self.const(ast.literal_eval(word))
        elif kind == "raw":
            base = self.const(word[1:-1])
        elif kind == "char":
            base = self.const(ord(ast.literal_eval(word)))
        elif kind == "num":
            w = word.replace("_", "")
            try:
                v: Any = int(w, 0)
            except ValueError:
                v = float(w)
            base = self.const(v)
        elif kind == "ident" and word in ("true", "false", "nil"):
            base = self.const({"true": True, "false": False, "nil": None}[word])
        elif kind == "ident":
            if word not in FUNCTIONS and word not in _BOUND:
                raise RuleError(f'function "{word}" not defined')
            base = "gfn_" + word + "()"
        else:
            raise RuleError(f"unexpected {word!r} in operand")
        for fk, fw in rest:
            if fk != "field":
                raise RuleError(f"unexpected {fw!r} in operand")
            base = "gfield(" + base + ", " + self.const(fw[1:]) + ")"
        return base


@dataclass
class CompiledTemplate:
    """A translated template: the Jinja2 source, its constants and the compiled Jinja2 template."""

    source: str
    jinja_source: str
    consts: list[Any]
    template: Any


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.globals.update({"gfn_" + k: v for k, v in FUNCTIONS.items()})
_ENV.globals.update(gstr=go_str, gtruth=_truth, gfield=_field, grange=_range_items,
                    grange_pairs=_range_pairs)


@functools.lru_cache(maxsize=4096)
def compile_template(text: str, name: str = "template") -> CompiledTemplate:
    """Translate a Go-style template to Jinja2 and compile it.

    :param text: the template, e.g. ``"{{ $labels.instance }} is down"``.
    :param name: used in error messages (e.g. ``__alert_HighLatency``).
    :raises RuleError: ``template: <name>: <what is wrong>`` when it does not parse.
    """
    if "{{" not in text:
        return CompiledTemplate(text, text, [], None)
    tr = _Translator(name, text)
    try:
        src = tr.translate()
        tmpl = _ENV.from_string(src)
    except RuleError as e:
        raise RuleError(f"template: {name}: {e}") from None
    except (TemplateError, SyntaxError, ValueError) as e:
        raise RuleError(f"template: {name}: {e}") from None
    return CompiledTemplate(text, src, tr.consts, tmpl)


def render_template(text: str, *, labels: Mapping[str, str], value: float,
                    external_labels: Mapping[str, str] | None = None, external_url: str = "",
                    query: QueryFunc | None = None, name: str = "template") -> str:
    """Render a Go-style template with Prometheus's alert template data.

    The data is Prometheus's (``rules/alerting.go`` Eval ``tmplData``): ``.Labels``, ``.ExternalLabels``,
    ``.ExternalURL``, ``.Value`` and the variables ``$labels``, ``$externalLabels``, ``$externalURL``,
    ``$value``.

    :param query: runs ``query "expr"`` at the evaluation time; ``None`` makes ``query`` an error.
    :raises RuleError: when the template does not parse or fails while rendering.
    """
    ct = compile_template(text, name)
    if ct.template is None:
        return text
    ext = dict(external_labels or {})
    lbls = dict(labels)
    data = {"Labels": lbls, "ExternalLabels": ext, "ExternalURL": external_url, "Value": value}

    def _query(q: str) -> list[TemplateSample]:
        if query is None:
            raise RuleError("query is not available here")
        return list(query(q))

    ctx = {"gk": ct.consts, "gdot": data, "gv__root": data, "gv_labels": lbls, "gv_externalLabels": ext,
           "gv_externalURL": external_url, "gv_value": value, "gfn_query": _query,
           "gfn_externalURL": lambda: external_url, "gfn_pathPrefix": lambda: ""}
    try:
        return ct.template.render(ctx)
    except RuleError as e:
        raise RuleError(f"template: {name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - anything the sandbox raises is a template error
        raise RuleError(f"template: {name}: error calling function: {e}") from None


def expand(text: str, **kw: Any) -> str:
    """Render like Prometheus ``template.Expander.Expand`` does for alerts: errors become text.

    On failure the result is ``<error expanding template: ...>`` (``rules/alerting.go`` expand).
    """
    try:
        return render_template(text, **kw)
    except RuleError as e:
        return f"<error expanding template: {e}>"


def check_template(text: str, name: str = "template") -> None:
    """Parse a template and test-render it with dummy data, as rule files are checked at load.

    Dummy data: no labels, value 0, a query function returning one sample with no labels.

    :raises RuleError: when it does not parse or does not render.
    """
    compile_template(text, name)
    render_template(text, labels={}, value=0.0, external_labels={}, name=name,
                    query=lambda q: [TemplateSample({}, 0.0)])
