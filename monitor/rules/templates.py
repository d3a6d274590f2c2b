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
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from monitor.errors import RuleError
from monitor.rules.tmplfuncs import (
    FUNCTIONS,
    TemplateSample,
    go_sprintf,
    go_str,
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
    field_of,
    range_items,
    range_pairs,
    truth,
)

__all__ = ["TemplateSample", "compile_template", "check_template", "render_template", "expand",
           "go_str", "humanize", "humanize1024", "humanize_duration", "humanize_percentage",
           "humanize_timestamp", "go_sprintf", "QueryFunc"]

#: ``query(expr: str) -> list[TemplateSample]`` — runs a PromQL instant query at the evaluation time.
QueryFunc = Callable[[str], "list[TemplateSample]"]


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
_ENV.globals.update(gstr=go_str, gtruth=truth, gfield=field_of, grange=range_items,
                    grange_pairs=range_pairs)


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
