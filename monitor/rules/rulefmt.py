"""Parse and validate Prometheus rule files, reporting every error at once with its position.

Format and checks follow Prometheus ``model/rulefmt/rulefmt.go`` (``RuleGroups.Validate``,
``RuleNode.Validate``, ``testTemplateParsing``)::

    groups:
      - name: api                 # unique in the file
        interval: 30s             # optional, else the global evaluation interval
        limit: 0                  # optional, max alerts/series per rule (0 = no limit)
        query_offset: 1m          # optional, evaluate queries this far in the past
        labels: {team: api}       # optional (Prometheus 3), added to every rule; a rule's own win
        rules:
          - alert: HighLatency    # or: record: endpoint:http_requests:rate5m
            expr: histogram_quantile(0.95, ...) > 5
            for: 5m
            keep_firing_for: 0s
            labels: {severity: critical}
            annotations: {summary: "...", description: "..."}

Every error is a :class:`RuleFileError` printed as
``rules/api.yaml:14:9: group "api", rule 3, "HighLatency": could not parse expression: ...``
(1-based line and column of the offending YAML node; rule numbers 1-based). Beyond Prometheus we
reject duplicate alert names in a group and, by default, alerting rules without a ``severity``
label (``critical``, ``warning``, ``info``, or ``none`` for the always-firing ``Watchdog`` that
never pages: Alertmanager's convention); templates are test-rendered with dummy data. A
templated ``severity`` (``{{ if gt $value 10.0 }}critical{{ else }}warning{{ end }}``) is only
checked to parse here: the policy applies to what it expands to, at evaluation
(:class:`~monitor.rules.alerting.AlertingRule` ``severities``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.duration import parse_duration as _parse_duration
from monitor.errors import QueryError, RuleError
from monitor.rules.templates import check_template

__all__ = ["RuleSpec", "GroupSpec", "RuleFileSpec", "RuleFileError", "parse_rule_text",
           "load_rule_file", "load_rule_files", "RuleText", "parse_duration", "compile_rule_expr", "SEVERITIES"]

#: Accepted ``severity`` values; ``none`` marks alerts meant for machines (the Watchdog), never a person.
SEVERITIES = ("critical", "warning", "info", "none")
_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "query_offset", "limit", "labels", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


def parse_duration(s: str) -> float:
    """Parse a Prometheus duration (``model.ParseDuration``: ``1h30m``, ``5m``, ``90s``, ``0``) to seconds.

    Rule files take duration strings only (not bare numbers), as Prometheus does.

    :raises ValueError: ``not a valid duration string: "5x"``.
    """
    text = str(s).strip()
    try:
        if text != "0" and not text[-1:].isalpha():
            raise ValueError(text)
        return _parse_duration(text)
    except ValueError:
        raise ValueError(f'not a valid duration string: "{text}"') from None


@dataclass(frozen=True)
class RuleSpec:
    """One validated rule.

    :param kind: ``"alert"`` or ``"record"``.
    :param name: the alert name or the recorded metric name.
    :param expr: the PromQL expression text.
    :param for_seconds: ``for`` (alerting rules), seconds.
    :param keep_firing_for_seconds: ``keep_firing_for`` (alerting rules), seconds.
    :param labels: labels to add (values may be templates in alerting rules).
    :param annotations: annotation templates (alerting rules).
    :param index: 1-based position in the group; ``line``/``column`` of the rule's node.
    """

    kind: str
    name: str
    expr: str
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    index: int = 1
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class GroupSpec:
    """One validated group: ``interval_seconds`` is ``None`` when the file leaves it to the global."""

    name: str
    rules: list[RuleSpec]
    interval_seconds: float | None = None
    query_offset_seconds: float = 0.0
    limit: int = 0
    line: int = 0
    column: int = 0
    #: the group's ``labels`` (Prometheus 3), already merged into each rule's labels.
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleFileSpec:
    """One parsed rule file: its path as given and its groups in file order."""

    path: str
    groups: list[GroupSpec]


class RuleFileError(RuleError):
    """One problem in a rule file, with its position.

    ``str(err)`` is ``file:line:col: group "g", rule N, "name": message`` — the parts that do not
    apply are left out (a group-level error has no rule part, a YAML syntax error no group).
    """

    def __init__(self, message: str, *, file: str, line: int | None = None, column: int | None = None,
                 group: str | None = None, rule_index: int | None = None, rule_name: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.group = group
        self.rule_index = rule_index
        self.rule_name = rule_name
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        ctx = []
        if self.group is not None:
            ctx.append(f'group "{self.group}"')
        if self.rule_index is not None:
            ctx.append(f"rule {self.rule_index}")
        if self.rule_name:
            ctx.append(f'"{self.rule_name}"')
        prefix = f"{where}: " + (", ".join(ctx) + ": " if ctx else "")
        return prefix + self.message


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "sequence"
    return "scalar"


def _scalar(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return "" if node.tag == "tag:yaml.org,2002:null" else node.value
    return None


def compile_rule_expr(text: str) -> Any:
    """Parse and type-check a rule expression with the engine's parser; return the compiled node.

    The node can be handed to ``Engine.instant_query`` as is (no re-parsing per evaluation);
    ``node.type`` is ``"vector"``, ``"scalar"``, ``"matrix"`` or ``"string"``.

    Duration expressions (``x[5m+1m]``) are accepted here; whether they are enabled
    (``rules.enable_features``) is the rule manager's check.

    :raises QueryError: on syntax errors, unknown functions and type errors.
    """
    from monitor.promql import nodes
    from monitor.promql.durations import rewrite_durations

    text = rewrite_durations(text)

    return nodes.compile_expr(nodes.parse_expr(text))


_TYPE_NAMES = {"matrix": "range vector", "string": "string"}


class _FileParser:
    def __init__(self, path: str, require_severity: bool) -> None:
        self.path = path
        self.require_severity = require_severity
        self.errors: list[RuleFileError] = []

    def err(self, msg: str, node: yaml.Node | None, **ctx: Any) -> None:
        line, col = _pos(node) if node is not None else (None, None)
        self.errors.append(RuleFileError(msg, file=self.path, line=line, column=col, **ctx))

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str,
                **ctx: Any) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Return ``{key: (key_node, value_node)}``; report unknown and repeated keys."""
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if not isinstance(node, yaml.MappingNode):
            self.err(f"{what} must be a mapping, got a {_kind(node)}", node, **ctx)
            return out
        for k, v in node.value:
            key = _scalar(k)
            if key is None:
                self.err(f"{what} keys must be strings", k, **ctx)
                continue
            if key in out:
                self.err(f'mapping key "{key}" already defined at line {_pos(out[key][0])[0]}', k, **ctx)
                continue
            if key not in allowed:
                self.err(f'field {key} not found in {what} (allowed: {", ".join(allowed)})', k, **ctx)
                continue
            out[key] = (k, v)
        return out

    def string_map(self, node: yaml.Node, what: str, **ctx: Any) -> dict[str, tuple[str, yaml.Node, yaml.Node]]:
        out: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
        if _scalar(node) == "":
            return out
        if not isinstance(node, yaml.MappingNode):
            self.err(f"{what} must be a mapping of strings, got a {_kind(node)}", node, **ctx)
            return out
        for k, v in node.value:
            key, val = _scalar(k), _scalar(v)
            if key is None or val is None:
                self.err(f"{what} must be a mapping of strings", k, **ctx)
                continue
            if key in out:
                self.err(f'{what} key "{key}" already defined', k, **ctx)
                continue
            out[key] = (val, k, v)
        return out

    def duration(self, node: yaml.Node, what: str, **ctx: Any) -> float:
        text = _scalar(node)
        try:
            if text is None:
                raise ValueError(f"must be a duration string, got a {_kind(node)}")
            return parse_duration(text)
        except ValueError as e:
            self.err(f"{what}: {e}", node, **ctx)
            return 0.0

    def parse(self, text: str) -> RuleFileSpec:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = getattr(e, "problem", None) or str(e)
            self.errors.append(RuleFileError(f"invalid YAML: {problem}", file=self.path,
                                             line=mark.line + 1 if mark else None,
                                             column=mark.column + 1 if mark else None))
            return RuleFileSpec(self.path, [])
        if root is None or _scalar(root) == "":
            return RuleFileSpec(self.path, [])
        top = self.mapping(root, _FILE_KEYS, "rule file")
        groups: list[GroupSpec] = []
        if "groups" not in top:
            return RuleFileSpec(self.path, groups)
        gnode = top["groups"][1]
        if _scalar(gnode) == "":
            return RuleFileSpec(self.path, groups)
        if not isinstance(gnode, yaml.SequenceNode):
            self.err(f"groups must be a sequence, got a {_kind(gnode)}", gnode)
            return RuleFileSpec(self.path, groups)
        seen: dict[str, int] = {}
        for g in gnode.value:
            spec = self.group(g, seen)
            if spec is not None:
                groups.append(spec)
        return RuleFileSpec(self.path, groups)

    def group(self, node: yaml.Node, seen: dict[str, int]) -> GroupSpec | None:
        keys = self.mapping(node, _GROUP_KEYS, "rule group")
        if not isinstance(node, yaml.MappingNode):
            return None
        name = _scalar(keys["name"][1]) if "name" in keys else None
        if not name:
            self.err("groupname must not be empty", keys["name"][1] if "name" in keys else node)
            name = ""
        elif name in seen:
            self.err(f'groupname: "{name}" is repeated in the same file (first at line {seen[name]})',
                     keys["name"][1])
        else:
            seen[name] = _pos(node)[0]
        ctx = {"group": name}
        interval = None
        if "interval" in keys and _scalar(keys["interval"][1]) != "":
            interval = self.duration(keys["interval"][1], "interval", **ctx)
            if interval == 0:
                interval = None
        offset = self.duration(keys["query_offset"][1], "query_offset", **ctx) if "query_offset" in keys else 0.0
        limit = 0
        if "limit" in keys:
            lt = _scalar(keys["limit"][1])
            if lt is None or not re.fullmatch(r"\d+", lt):
                self.err(f"limit must be a non-negative integer, got {lt!r}", keys["limit"][1], **ctx)
            else:
                limit = int(lt)
        group_labels = self.string_map(keys["labels"][1], "labels", **ctx) if "labels" in keys else {}
        for k, (_, kn, _) in group_labels.items():
            if not _LABEL_NAME_RE.match(k) or k == "__name__":
                self.err(f"invalid label name: {k}", kn, **ctx)
        rules: list[RuleSpec] = []
        if "rules" in keys:
            rnode = keys["rules"][1]
            if isinstance(rnode, yaml.SequenceNode):
                alert_names: dict[str, int] = {}
                for i, r in enumerate(rnode.value, start=1):
                    spec = self.rule(r, name, i, alert_names, group_labels)
                    if spec is not None:
                        rules.append(spec)
            elif _scalar(rnode) != "":
                self.err(f"rules must be a sequence, got a {_kind(rnode)}", rnode, **ctx)
        line, col = _pos(node)
        return GroupSpec(name, rules, interval, offset, limit, line, col, {k: v[0] for k, v in group_labels.items()})

    def rule(self, node: yaml.Node, group: str, index: int, alert_names: dict[str, int],
             group_labels: dict[str, tuple[str, yaml.Node, yaml.Node]] | None = None) -> RuleSpec | None:
        ctx: dict[str, Any] = {"group": group, "rule_index": index}
        if isinstance(node, yaml.MappingNode):  # name the rule in every error, unknown keys included
            names = {_scalar(k): _scalar(v) for k, v in node.value}
            ctx["rule_name"] = names.get("alert") or names.get("record") or None
        keys = self.mapping(node, _RULE_KEYS, "rule", **ctx)
        if not isinstance(node, yaml.MappingNode):
            return None
        record = _scalar(keys["record"][1]) if "record" in keys else None
        alert = _scalar(keys["alert"][1]) if "alert" in keys else None
        ctx["rule_name"] = alert or record or None
        n_errors = len(self.errors)
        if record and alert:
            self.err("only one of 'record' and 'alert' must be set", node, **ctx)
        elif not record and not alert:
            what = "record" if "record" in keys else "alert" if "alert" in keys else None
            self.err(f"field '{what}' must be a non-empty string" if what
                     else "one of 'record' or 'alert' must be set", keys[what][1] if what else node, **ctx)
        kind = "record" if record else "alert"
        # expression
        expr_text = _scalar(keys["expr"][1]) if "expr" in keys else None
        if not expr_text:
            self.err("field 'expr' must be set in rule", keys["expr"][1] if "expr" in keys else node, **ctx)
        else:
            try:
                compiled = compile_rule_expr(expr_text)
                if compiled.type in _TYPE_NAMES:
                    self.err("expression must evaluate to an instant vector or scalar, got "
                             f"{_TYPE_NAMES[compiled.type]}", keys["expr"][1], **ctx)
            except (QueryError, ValueError) as e:
                self.err(f"could not parse expression: {e}", keys["expr"][1], **ctx)
        for_s = keep_s = 0.0
        if kind == "record":
            for f in ("for", "keep_firing_for", "annotations"):
                if f in keys:
                    self.err(f"invalid field '{f}' in recording rule", keys[f][0], **ctx)
            if record and not _METRIC_NAME_RE.match(record):
                self.err(f"invalid recording rule name: {record}", keys["record"][1], **ctx)
        else:
            if "for" in keys:
                for_s = self.duration(keys["for"][1], "for", **ctx)
            if "keep_firing_for" in keys:
                keep_s = self.duration(keys["keep_firing_for"][1], "keep_firing_for", **ctx)
            if alert:
                if alert in alert_names:
                    self.err(f'duplicate alert name "{alert}" in group (first defined as rule {alert_names[alert]})',
                             keys["alert"][1], **ctx)
                else:
                    alert_names[alert] = index
        own = self.string_map(keys["labels"][1], "labels", **ctx) if "labels" in keys else {}
        labels = {**(group_labels or {}), **own}  # Prometheus 3 group labels; the rule's win
        for k, (v, kn, vn) in own.items():
            if not _LABEL_NAME_RE.match(k):
                self.err(f"invalid label name: {k}", kn, **ctx)
            elif k == "__name__":
                self.err("invalid label name: __name__ cannot be set by a rule", kn, **ctx)
            elif kind == "alert":
                self.template(v, f'label "{k}"', vn, ctx)
        for k, (v, _, vn) in labels.items():
            if k not in own and kind == "alert" and _LABEL_NAME_RE.match(k):
                self.template(v, f'group label "{k}"', vn, ctx)
        annotations = self.string_map(keys["annotations"][1], "annotations", **ctx) if "annotations" in keys else {}
        if kind == "alert":
            for k, (v, kn, vn) in annotations.items():
                if not _LABEL_NAME_RE.match(k):
                    self.err(f"invalid annotation name: {k}", kn, **ctx)
                else:
                    self.template(v, f'annotation "{k}"', vn, ctx)
            if self.require_severity and alert:
                sev = labels.get("severity")
                if sev is None:
                    self.err(f'missing "severity" label (one of {", ".join(SEVERITIES)})',
                             keys["labels"][1] if "labels" in keys else node, **ctx)
                elif sev[0] not in SEVERITIES and "{{" not in sev[0]:  # a template: checked once expanded
                    self.err(f'label "severity" must be one of {", ".join(SEVERITIES)}, got "{sev[0]}"',
                             sev[2], **ctx)
        if len(self.errors) > n_errors:
            return None
        line, col = _pos(node)
        return RuleSpec(kind, alert or record or "", expr_text or "", for_s, keep_s,
                        {k: v[0] for k, v in labels.items()}, {k: v[0] for k, v in annotations.items()},
                        index, line, col)

    def template(self, text: str, what: str, node: yaml.Node, ctx: dict[str, Any]) -> None:
        try:
            check_template(text, name=f"__alert_{ctx.get('rule_name') or ''}")
        except RuleError as e:
            self.err(f"{what}: {e}", node, **ctx)


def parse_rule_text(text: str, path: str, *, require_severity: bool = True) -> tuple[RuleFileSpec, list[RuleFileError]]:
    """Parse and validate one rule file's text.

    :param path: the name used in error messages and as the groups' ``file``.
    :param require_severity: reject alerting rules without a valid ``severity`` label (our policy;
        the promtool-style unit-test runner passes ``False``).
    :return: the spec (groups whose rules are all valid) and every error found, in file order.
    """
    p = _FileParser(path, require_severity)
    spec = p.parse(text)
    return spec, sorted(p.errors, key=lambda e: (e.line or 0, e.column or 0))


def load_rule_file(path: str | Path, *, require_severity: bool = True) -> tuple[RuleFileSpec, list[RuleFileError]]:
    """Read and validate one rule file (see :func:`parse_rule_text`); unreadable files are an error."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except OSError as e:
        return RuleFileSpec(p, []), [RuleFileError(f"cannot read rule file: {e.strerror or e}", file=p)]
    return parse_rule_text(text, p, require_severity=require_severity)


@dataclass(frozen=True)
class RuleText:
    """A rule file held in memory rather than on disk: the SLO rules generated at load
    (:mod:`monitor.slo.generate`). ``path`` names it in errors and as its groups' ``file``
    (``<slos>``); ``text`` is the rule file's YAML."""

    path: str
    text: str

    def __str__(self) -> str:
        return self.path


def load_rule_files(paths: Iterable[str | Path | RuleText], *,
                    require_severity: bool = True) -> tuple[list[RuleFileSpec], list[RuleFileError]]:
    """Validate many files (paths, or :class:`RuleText` held in memory); return every spec and all
    errors of all files (nothing is partial)."""
    specs, errors = [], []
    for p in paths:
        if isinstance(p, RuleText):
            s, e = parse_rule_text(p.text, p.path, require_severity=require_severity)
        else:
            s, e = load_rule_file(p, require_severity=require_severity)
        specs.append(s)
        errors.extend(e)
    return specs, errors
