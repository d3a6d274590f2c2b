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
   alongside the data (probes by their ``kind``). Other ``*_file`` keys (``ca_file``) are paths.
3b. File paths are resolved against the config file's directory, as rule files are:
   ``state.path`` and every probe's ``ca_file`` become absolute. ``codebook-monitor check``
   (``check_files``) also rejects a ``ca_file`` that is not a readable file; the daemon does not
   (the TLS probe fails with the reason until the file appears).
4. ``Config.model_validate``; each pydantic error's ``loc`` is mapped back to the deepest node
   found and printed human-readably:
   ``monitor.yaml:14:5: probes[2].interval: expected a duration such as 30s, got "-5"``.
5. When validation failed, the cross-references of ``alerting`` (receivers, people, schedules,
   time intervals) are still checked on their own — the whole-config check that holds them only
   runs once every section is valid — so one round reports a bad duration and an unknown receiver
   together (Prometheus ``rulefmt`` and ``amtool check-config`` report everything at once too).

Errors come out sorted by position in the file, each once. Error messages never contain secret
values.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from monitor.config.alerting import AlertingConfig, validate_alerting_refs
from monitor.config.model import Config, expand_rule_files, probe_settings_class
from monitor.config.secrets import MIN_SECRET_LENGTH
from monitor.config.messages import humanise as _humanise, normalise_loc as _normalise_loc, show as _show
from monitor.config.validation import Loc, parse_path
from model.secrets import redact, redact_url
from monitor.errors import ConfigError, ConfigErrors
from monitor.config.slofiles import load_slos, read_slo_files
from probes.base import ProbeSettings

__all__ = ["InvalidConfig", "load_config", "load_config_text", "check_config_file", "format_loc"]

Pos = tuple[int, int]
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class InvalidConfig(ConfigErrors):
    """The config file parsed but did not validate: every error, and the rule files it names.

    :ivar rule_files: what ``rules.files`` expands to (relative to the config file's directory),
        so ``codebook-monitor check`` can report the rule files' errors in the same round;
        empty when ``rules.files`` itself is invalid.
    """

    def __init__(self, errors: list[ConfigError], rule_files: list[Path]) -> None:
        super().__init__(errors)
        self.rule_files = rule_files


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None,
                check_files: bool = False) -> Config:
    """Read, validate and default the config file at ``path``.

    :param path: the YAML file; error messages name it as given.
    :param env: variables for ``${VAR}`` substitution (default ``os.environ``).
    :param check_files: also reject files the config names that do not exist (``ca_file``), as
        ``codebook-monitor check`` does.
    :return: the config, with :attr:`Config.source_file` and :attr:`Config.config_dir` set.
    :raises ConfigErrors: every error found (unreadable file, YAML syntax); :class:`InvalidConfig`
        (a ``ConfigErrors``) when the file parsed but did not validate.
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
                            source_file=p.absolute(), check_files=check_files)


def load_config_text(text: str, filename: str = "monitor.yaml", *, base_dir: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None, source_file: Path | None = None,
                     check_files: bool = False) -> Config:
    """Validate YAML ``text`` as a config; like :func:`load_config` without reading a file.

    :param text: the YAML document.
    :param filename: the name used in error messages.
    :param base_dir: directory for relative ``*_file`` and rule-file paths (default: the
        directory of ``filename``).
    :param env: variables for ``${VAR}`` substitution (default ``os.environ``).
    :param source_file: recorded as :attr:`Config.source_file`.
    :param check_files: see :func:`load_config`.
    :raises ConfigErrors: every error found, in file order (:class:`InvalidConfig` once the YAML parsed).
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
        builder.resolve_paths(data, check_files=check_files)
    config = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            builder.add_pydantic_error(err, data)
        if isinstance(data, dict):
            builder.add_reference_errors(data)
    if builder.errors:
        slo_errors = _slo_file_errors(data, base, os.environ if env is None else env)
        raise InvalidConfig(_sorted(builder.scrubbed_errors()) + slo_errors, _rule_files(data, base))
    assert config is not None
    config.set_origin(source_file, base)
    load_slos(config, builder, os.environ if env is None else env, format_loc)
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
    """Validate the config file at ``path`` for ``codebook-monitor check`` (files it names included).

    :return: formatted errors (``file:line:col: path: message``), in file order; empty when valid.
    """
    try:
        load_config(path, env=env, check_files=True)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    return []


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


def _rule_files(data: Any, base: Path) -> list[Path]:
    """Return what ``rules.files`` of an invalid config expands to (empty when not a list of strings)."""
    rules = data.get("rules") if isinstance(data, dict) else None
    files = rules.get("files") if isinstance(rules, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return []
    return expand_rule_files(files, base)


def _slo_file_errors(data: Any, base: Path, env: Mapping[str, str]) -> list[ConfigError]:
    """Errors of the SLO files an invalid config names (none when ``slo_files`` is not a list of strings).

    Duplicate ids across ``slos:`` and the files are left for when the config is valid.
    """
    files = data.get("slo_files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return []
    return read_slo_files(expand_rule_files(files, base), _Builder, env, base, format_loc)[1]


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
        err = ConfigError(message, file=self.filename, line=pos[0], column=pos[1], path=format_loc(loc))
        if str(err) not in {str(e) for e in self.errors}:
            self.errors.append(err)
        if record:
            self.failed.add(loc if failed is None else failed)

    def scrubbed_errors(self) -> list[ConfigError]:
        """Return the errors with every secret value replaced by its prefix."""
        secrets = sorted((s for s in self.secrets if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        out = []
        for e in self.errors:
            message = e.message
            for secret in secrets:
                message = message.replace(secret, _stand_in(secret))
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

    # -- paths -------------------------------------------------------------------------------

    def resolve_paths(self, data: dict[Any, Any], *, check_files: bool) -> None:
        """Make ``state.path`` and every probe's ``ca_file`` absolute against the config's directory.

        With ``check_files`` a ``ca_file`` that is not a readable file is an error at its key.
        """
        state = data.get("state")
        if isinstance(state, dict) and isinstance(state.get("path"), str) and state["path"] \
                and state["path"] != ":memory:":
            state["path"] = os.path.normpath(self.base_dir / Path(state["path"]).expanduser())
        probes = data.get("probes")
        for probe in probes if isinstance(probes, list) else []:  # backup folders, as ca_file
            for src in probe.get("sources") or [] if isinstance(probe, dict) and probe.get("kind") == "backup" else []:
                if isinstance(src, dict) and isinstance(src.get("path"), str) and src["path"]:
                    src["path"] = os.path.normpath(self.base_dir / Path(src["path"]).expanduser())
        for i, probe in enumerate(probes if isinstance(probes, list) else []):
            if not isinstance(probe, dict) or not isinstance(probe.get("ca_file"), str) or not probe["ca_file"]:
                continue
            given = probe["ca_file"]
            full = Path(os.path.normpath(self.base_dir / Path(given).expanduser()))
            probe["ca_file"] = str(full)
            if check_files and not (full.is_file() and os.access(full, os.R_OK)):
                reason = "not readable" if full.is_file() else "no such file"
                where = "" if str(full) == given else f" (resolved against the config file's directory: {full})"
                self.error(("probes", i, "ca_file"), f'cannot read ca_file "{given}": {reason}{where}', record=False)

    # -- cross-references when the whole config did not validate -------------------------------

    def add_reference_errors(self, data: dict[Any, Any]) -> None:
        """Check the ``alerting`` section's references on their own (see the module docstring, step 5).

        When ``alerting`` itself has errors (already reported), the keys in error are left out
        and the rest is checked (:func:`_validate_pruned`): a bad ``group_wait`` does not hide an
        unknown receiver in the same route.
        """
        section = data.get("alerting")
        alerting = _validate_pruned(AlertingConfig, {} if section is None else section)
        if alerting is None:
            return
        receivers = data.get("receivers")
        names = {r["name"] for r in (receivers if isinstance(receivers, list) else [])
                 if isinstance(r, dict) and isinstance(r.get("name"), str)}
        for path, message in validate_alerting_refs(alerting, names):
            self.add_pydantic_error({"loc": parse_path(path), "type": "config", "msg": message}, data)

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


def _stand_in(secret: str) -> str:
    """Return what an error message shows for a secret: a URL's ``scheme://host/...`` (its user info,
    path and query may hold the token; the host tells which URL is meant), else :func:`redact`'s prefix."""
    if "://" in secret:
        scheme, _, rest = redact_url(secret).partition("://")
        host = rest.split("/", 1)[0]
        if scheme and host:
            return f"{scheme}://{host}/..."
    return redact(secret)


#: Rounds of :func:`_validate_pruned` before it gives up.
_PRUNE_ROUNDS = 10


def _validate_pruned(model: type[BaseModel], value: Any) -> Any:
    """Validate ``value`` as ``model`` after leaving out the mapping keys that are in error.

    Each round validates a copy, deletes every key an error points at (the mapping holding a
    missing field), and tries again. An error at a list item (``route.routes[0].matchers[0]``)
    deletes the key holding the list (``route.routes[0].matchers``; a route in error as a whole:
    ``route.routes``), as leaving out the item alone would renumber the items the references
    name. An error at the top cannot be left out: then the result is ``None``.

    :return: the model instance, or ``None``.
    """
    data = copy.deepcopy(value)
    for _ in range(_PRUNE_ROUNDS):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            locs = set()
            for err in exc.errors():
                loc, _ = _normalise_loc(tuple(err["loc"]), data)
                loc = loc[:-1] if err["type"] == "missing" else loc
                if loc and isinstance(loc[-1], int):
                    loc = _list_key(loc)
                locs.add(loc)
            for loc in sorted(locs, key=len, reverse=True):
                if not _delete_key(data, loc):
                    return None
    return None


def _list_key(loc: Loc) -> Loc:
    """Return ``loc`` without its trailing list indexes: the key holding the list."""
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    return loc


def _delete_key(data: Any, loc: Loc) -> bool:
    """Delete the mapping key at ``loc`` in ``data``; ``False`` when ``loc`` is not such a key."""
    if not loc or not isinstance(loc[-1], str):
        return False
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return True  # already gone with a deleted ancestor
    if isinstance(parent, dict):
        parent.pop(loc[-1], None)
        return True
    return False


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
