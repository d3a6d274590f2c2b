"""Load ``monitor.yaml`` into a :class:`~monitor.config.model.Config`, reporting every error at once.

Steps (STYLE 7, after Prometheus ``model/rulefmt`` positions and Alertmanager ``config/config.go``):

1. ``yaml.compose`` with a ``SafeLoader`` keeps node marks; the node tree is converted to Python
   while recording ``key path -> (line, column)`` (1-based; a key's position is its key token).
   Duplicate keys are errors. ``<<`` merge keys are honoured.
2. String scalars get ``${VAR}`` / ``${VAR:-default}`` substituted from the environment (``$${``
   gives a literal ``${``). An unset variable without default is an error naming it.
3. Secret companions: for a model field ``<f>`` typed ``SecretStr``, a sibling key ``<f>_file``
   names a file (relative to the config's directory) whose content, trailing newline stripped,
   becomes ``<f>``. The model class of each mapping is found by walking :class:`Config`'s fields
   alongside the data (probes by their ``kind``). Other ``*_file`` keys (``ca_file``) are left alone.
4. ``Config.model_validate``; each pydantic error's ``loc`` is mapped back to the deepest node
   found and printed human-readably:
   ``monitor.yaml:14:5: probes[2].interval: expected a duration such as 30s, got "-5"``.

Errors come out sorted by position in the file. Error messages never contain secret values.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from monitor.config.model import Config, probe_settings_class
from monitor.config.secrets import MIN_SECRET_LENGTH
from monitor.config.validation import Loc
from model.secrets import redact
from monitor.errors import ConfigError, ConfigErrors
from monitor.slo.files import convert_documents
from monitor.slo.model import SLO
from probes.base import ProbeSettings

__all__ = ["load_config", "load_config_text", "check_config_file", "format_loc"]

Pos = tuple[int, int]
_MISSING = object()
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and default the config file at ``path``.

    :param path: the YAML file; error messages name it as given.
    :param env: variables for ``${VAR}`` substitution (default ``os.environ``).
    :return: the config, with :attr:`Config.source_file` and :attr:`Config.config_dir` set.
    :raises ConfigErrors: every error found (unreadable file, YAML syntax, validation).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(
            "no such file; pass --config FILE (the demo's config is examples/monitor.yaml)",
            file=str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigErrors([ConfigError(f"cannot read config file: {reason}", file=str(path))]) from None
    return load_config_text(text, str(path), base_dir=p.absolute().parent, env=env,
                            source_file=p.absolute())


def load_config_text(text: str, filename: str = "monitor.yaml", *, base_dir: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None, source_file: Path | None = None) -> Config:
    """Validate YAML ``text`` as a config; like :func:`load_config` without reading a file.

    :param text: the YAML document.
    :param filename: the name used in error messages.
    :param base_dir: directory for relative ``*_file`` and rule-file paths (default: the
        directory of ``filename``).
    :param env: variables for ``${VAR}`` substitution (default ``os.environ``).
    :param source_file: recorded as :attr:`Config.source_file`.
    :raises ConfigErrors: every error found, in file order.
    """
    base = Path(base_dir) if base_dir is not None else Path(filename).absolute().parent
    builder = _Builder(filename, os.environ if env is None else env, base)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and exc.context_mark is not mark:
            cm = exc.context_mark
            problem += f" ({exc.context} at line {cm.line + 1}, column {cm.column + 1})"
        raise ConfigErrors([ConfigError(f"invalid YAML: {problem}", file=filename,
                                        line=mark.line + 1 if mark else None,
                                        column=mark.column + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(f"invalid YAML: {exc}", file=filename)]) from None
    if node is None:
        data: Any = {}
        builder.marks[()] = (1, 1)
    else:
        builder.marks[()] = _pos(node.start_mark)
        data = builder.convert(node, ())
    if isinstance(data, dict):
        builder.resolve_secret_files(data, Config, ())
    config = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            builder.add_pydantic_error(err, data)
    if builder.errors:
        raise ConfigErrors(_sorted(builder.scrubbed_errors()))
    assert config is not None
    config.set_origin(source_file, base)
    _load_slos(config, builder, os.environ if env is None else env)
    return config


def load_config_reporting(path: str | os.PathLike[str], out: TextIO | None = None) -> Config | None:
    """Load a config file for a command: on errors print each to ``out`` (stderr) and return ``None``."""
    try:
        return load_config(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=out or sys.stderr)
        return None


def check_config_file(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> list[str]:
    """Validate the config file at ``path`` for ``codebook-monitor check``.

    :return: formatted errors (``file:line:col: path: message``), in file order; empty when valid.
    """
    try:
        load_config(path, env=env)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    return []


def _load_slos(config: Config, builder: _Builder, env: Mapping[str, str]) -> None:
    """Read ``slo_files`` into ``config`` and check SLO ids are unique across all SLOs.

    Each file is read like ``monitor.yaml`` (marks, ``${VAR}``); its documents are converted by
    :func:`monitor.slo.files.convert_documents` and validated as :class:`~monitor.slo.model.SLO`,
    every error located in the SLO file (``slos/api.yaml:7:16: slos[0].objective: ...``).

    :raises ConfigErrors: every error of every file (and duplicate ids), in file order per file.
    """
    errors: list[ConfigError] = []
    seen: dict[str, str] = {}
    for i, slo in enumerate(config.slos):
        slo.source = builder.filename
        if slo.id in seen:
            line, col = builder.position(("slos", i, "name"))
            errors.append(ConfigError(f'duplicate SLO "{slo.id}" (service-name)', file=builder.filename, line=line,
                                      column=col, path=format_loc(("slos", i, "name"))))
        seen[slo.id] = builder.filename
    loaded: list[SLO] = []
    for path in config.resolved_slo_files():
        file_errors: list[ConfigError] = []
        try:
            text = path.read_text(encoding="utf-8")
            nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            errors.append(ConfigError(f"cannot read SLO file: {reason}", file=str(path)))
            continue
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            errors.append(ConfigError(f"invalid YAML: {exc.problem or exc.context}", file=str(path),
                                      line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None))
            continue
        fb = _Builder(str(path), env, config.config_dir)
        docs = []
        for d, node in enumerate(nodes):
            fb.marks[(d,)] = _pos(node.start_mark)
            docs.append(fb.convert(node, (d,)))
        single = len(nodes) == 1

        def err(loc: Loc, message: str, fb: _Builder = fb, single: bool = single,
                out: list[ConfigError] = file_errors) -> None:
            line, col = fb.position(loc)
            out.append(ConfigError(message, file=fb.filename, line=line, column=col,
                                   path=format_loc(loc[1:] if single else loc)))

        converted, problems = convert_documents(docs)
        for loc, message in problems:
            err(loc, message)
        for c in converted:
            try:
                slo = SLO.model_validate(c.data)
            except ValidationError as exc:
                for e in exc.errors():
                    loc, raw = _normalise_loc(tuple(e["loc"]), c.data)
                    err(c.source_loc(loc), _humanise(e, raw))
                continue
            slo.source = str(path)
            if slo.id in seen:
                err(c.source_loc(("name",)), f'duplicate SLO "{slo.id}" (service-name; also in {seen[slo.id]})')
                continue
            seen[slo.id] = str(path)
            loaded.append(slo)
        errors.extend(fb.errors)
        errors.extend(_sorted(file_errors))
    if errors:
        raise ConfigErrors(errors)
    config.set_file_slos(loaded)


def format_loc(loc: Loc) -> str:
    """Format a key path: ``("probes", 2, "interval")`` -> ``probes[2].interval``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pos(mark: yaml.Mark) -> Pos:
    return (mark.line + 1, mark.column + 1)


def _sorted(errors: list[ConfigError]) -> list[ConfigError]:
    # Stable: errors at the same position keep the order they were found in.
    return sorted(errors, key=lambda e: (e.line is None, e.line or 0, e.column or 0))


class _Builder:
    """Convert a YAML node tree to Python, recording positions and collecting errors."""

    def __init__(self, filename: str, env: Mapping[str, str], base_dir: Path) -> None:
        self.filename = filename
        self.env = env
        self.base_dir = base_dir
        self.marks: dict[Loc, Pos] = {}
        self.errors: list[ConfigError] = []
        # Paths that already have an error from the loader: pydantic errors at or under them are
        # consequences (e.g. "field required" after a missing variable) and are not repeated.
        self.failed: set[Loc] = set()
        self._ctor = yaml.SafeLoader("")
        # Values found in secret fields: never echoed in a message, even when the same value
        # also sits in a non-secret field whose error quotes its input.
        self.secrets: set[str] = set()

    # -- errors ------------------------------------------------------------------------------

    def error(self, loc: Loc, message: str, pos: Pos | None = None, *, failed: Loc | None = None,
              record: bool = True) -> None:
        """Add an error at ``loc``; with ``record``, later pydantic errors at/under ``failed``
        (default ``loc``) are dropped as consequences of this one."""
        pos = pos or self._position(loc)
        self.errors.append(ConfigError(message, file=self.filename, line=pos[0], column=pos[1],
                                       path=format_loc(loc)))
        if record:
            self.failed.add(loc if failed is None else failed)

    def scrubbed_errors(self) -> list[ConfigError]:
        """Return the errors with every secret value replaced by its prefix."""
        secrets = sorted((s for s in self.secrets if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        out = []
        for e in self.errors:
            message = e.message
            for secret in secrets:
                message = message.replace(secret, redact(secret))
            out.append(e if message == e.message else
                       ConfigError(message, file=e.file, line=e.line, column=e.column, path=e.path))
        return out

    def position(self, loc: Loc) -> Pos:
        """Return the ``(line, column)`` of ``loc``, or of its nearest located ancestor."""
        return self._position(loc)

    def _position(self, loc: Loc) -> Pos:
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.marks:
                return self.marks[loc[:n]]
        return (1, 1)

    # -- YAML -> Python ----------------------------------------------------------------------

    def convert(self, node: yaml.Node, path: Loc) -> Any:
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self._ctor.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self.error(path, f"invalid value: {getattr(exc, 'problem', None) or exc}", _pos(node.start_mark))
                return None
            if node.tag == _STR_TAG and isinstance(value, str) and "${" in value:
                value = self._substitute(value, path)
            return value
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, child in enumerate(node.value):
                self.marks[path + (i,)] = _pos(child.start_mark)
                out.append(self.convert(child, path + (i,)))
            return out
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        return None  # pragma: no cover - compose only yields the three node kinds

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            key = self._ctor.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or isinstance(key, (list, dict)):
                self.error(path, "keys must be plain scalars", _pos(key_node.start_mark), record=False)
                continue
            if key in out:
                self.error(path, f'duplicate key "{key}"', _pos(key_node.start_mark), failed=path + (key,))
                continue
            self.marks[path + (key,)] = _pos(key_node.start_mark)
            out[key] = self.convert(value_node, path + (key,))
        # ``<<: *base`` — keys given explicitly win over merged ones (YAML merge-key spec).
        for merged in merges:
            if not isinstance(merged, yaml.MappingNode):
                self.error(path, "<< expects a mapping or a list of mappings", _pos(merged.start_mark))
                continue
            for key, value in self._mapping(merged, path).items():
                out.setdefault(key, value)
        return out

    def _substitute(self, text: str, path: Loc) -> str | None:
        missing: list[str] = []

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            value = self.env.get(name)
            if value:
                return value
            if default is not None:
                return default
            if value is None:
                missing.append(name)
            return ""

        out = _ENV_RE.sub(repl, text)
        for name in missing:
            self.error(path, f'environment variable "{name}" is not set')
        return None if missing else out

    # -- *_file secret companions ------------------------------------------------------------

    def resolve_secret_files(self, value: Any, tp: Any, path: Loc) -> None:
        """Walk ``value`` alongside the type ``tp``, reading ``<secret>_file`` keys in place."""
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (list, tuple, set, frozenset) and isinstance(value, list):
            args = get_args(tp)
            item_tp = args[0] if args else Any
            for i, item in enumerate(value):
                self.resolve_secret_files(item, item_tp, path + (i,))
        elif origin in (dict, Mapping) and isinstance(value, dict):
            args = get_args(tp)
            val_tp = args[1] if len(args) == 2 else Any
            for k, v in value.items():
                self.resolve_secret_files(v, val_tp, path + (k,))
        elif origin in (Union, types.UnionType):
            member = _pick_member([a for a in get_args(tp) if a is not type(None)], value)
            if member is not None:
                self.resolve_secret_files(value, member, path)
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(value, dict):
            cls = probe_settings_class(value.get("kind")) if tp is ProbeSettings else tp
            if cls is None:
                return
            self._secret_companions(value, cls, path)
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if key in value:
                    self.resolve_secret_files(value[key], field.annotation, path + (key,))

    def _secret_companions(self, value: dict[Any, Any], cls: type[BaseModel], path: Loc) -> None:
        secrets = {f.alias or n for n, f in cls.model_fields.items() if _is_secret(f.annotation)}
        declared = {f.alias or n for n, f in cls.model_fields.items()}
        for key in [k for k in value if isinstance(k, str) and k.endswith("_file")]:
            field = key[: -len("_file")]
            if field not in secrets or key in declared:
                continue
            file_value = value.pop(key)
            if field in value:
                # Point at whichever of the two comes later in the file.
                later = max(self._position(path + (key,)), self._position(path + (field,)))
                self.error(path, f"at most one of {field} and {key}", later, failed=path + (field,))
                continue
            self.marks[path + (field,)] = self._position(path + (key,))
            if not isinstance(file_value, str) or not file_value:
                self.error(path + (key,), f"expected a file path, got {_show(file_value)}", failed=path + (field,))
                continue
            file = Path(file_value)
            full = file if file.is_absolute() else self.base_dir / file
            try:
                content = full.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
                self.error(path + (key,), f'cannot read secret file "{file_value}": {reason}',
                           failed=path + (field,))
                continue
            value[field] = content.rstrip("\r\n")
        self.secrets.update(v for k, v in value.items() if k in secrets and isinstance(v, str))

    # -- pydantic errors -> ConfigError ------------------------------------------------------

    def add_pydantic_error(self, err: Mapping[str, Any], data: Any) -> None:
        loc, raw = _normalise_loc(tuple(err["loc"]), data)
        if any(loc[:n] in self.failed for n in range(len(loc) + 1)):
            return
        kind = err["type"]
        if kind == "extra_forbidden" and loc:
            self.error(loc[:-1], f'unknown key "{loc[-1]}"', self._position(loc), record=False)
            return
        self.error(loc, _humanise(err, raw), record=False)


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_secret(tp: Any) -> bool:
    tp = _unwrap(tp)
    if tp is SecretStr:
        return True
    if get_origin(tp) in (Union, types.UnionType):
        return any(_unwrap(a) is SecretStr for a in get_args(tp))
    return False


def _pick_member(members: list[Any], value: Any) -> Any:
    """Choose the union member a mapping belongs to by its ``Literal`` fields (the discriminator)."""
    models = [m for m in (_unwrap(a) for a in members) if isinstance(m, type) and issubclass(m, BaseModel)]
    if not isinstance(value, dict) or not models:
        return None
    if len(models) == 1:
        return models[0]
    for model in models:
        for name, field in model.model_fields.items():
            ann = _unwrap(field.annotation)
            if get_origin(ann) is Literal and (field.alias or name) in value \
                    and value[field.alias or name] in get_args(ann):
                return model
    return None


def _normalise_loc(loc: Loc, data: Any) -> tuple[Loc, Any]:
    """Drop the tags pydantic inserts into ``loc`` for unions; return the data path and its value.

    A discriminated union adds the tag (``("probes", 2, "api", "interval")``); a plain union adds
    the member's name (``"int"``, ``"ReceiverConfig"``). A string part that is not a key of the
    mapping at hand, and is not the last part, or that follows a list or scalar, is such a tag.
    """
    cur: Any = data
    out: list[int | str] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if part == "[key]":
            continue
        if isinstance(cur, dict):
            if part in cur:
                out.append(part)
                cur = cur[part]
                continue
            if not last and isinstance(part, str):
                continue
            out.append(part)
            cur = _MISSING
        elif isinstance(cur, list):
            if isinstance(part, int) and 0 <= part < len(cur):
                out.append(part)
                cur = cur[part]
            elif isinstance(part, str):
                continue
            else:
                out.append(part)
                cur = _MISSING
        elif cur is _MISSING:
            out.append(part)
        elif isinstance(part, str):
            continue  # a scalar has no keys: a union member tag
        else:
            out.append(part)
            cur = _MISSING
    return tuple(out), cur


def _show(value: Any) -> str:
    if value is _MISSING or value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    if isinstance(value, SecretStr):
        return "a secret"
    return f'"{value}"'


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
}
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}


def _humanise(err: Mapping[str, Any], raw: Any) -> str:
    """Turn one pydantic error into our wording (see the module docstring)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    msg = str(err.get("msg", ""))
    if kind == "missing":
        return "field required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(raw)}"
    if kind in ("value_error", "assertion_error"):
        if "error" in ctx:
            return str(ctx["error"])
        return re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {_show(raw)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, got {_show(raw)}"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')}, got {_show(raw)}"
    if kind == "enum":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {_show(raw)}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "union_tag_invalid":
        return (f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} \"{ctx.get('tag')}\" "
                f"(expected one of {ctx.get('expected_tags')})")
    if kind == "union_tag_not_found":
        return f"field required: {ctx.get('discriminator', 'kind').strip(chr(39))}"
    # Our own (located_error) and anything else: pydantic's text, lower-cased to match ours.
    if msg[:1].isupper() and not msg[1:2].isupper():
        return msg[:1].lower() + msg[1:]
    return msg
