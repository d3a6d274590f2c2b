"""``slo_files:`` — read each SLO file (ours, Sloth ``prometheus/v1``, OpenSLO v1) into the config.

Called by :func:`monitor.config.loader.load_config_text` once ``monitor.yaml`` itself is valid
(and, through :func:`read_slo_files`, when it is not, so every error is reported in one round).
Each file is read like ``monitor.yaml`` (node marks, ``${VAR}``), its documents converted by
:func:`monitor.slo.files.convert_documents`, each SLO validated as :class:`~monitor.slo.model.SLO`,
and every error located in the SLO file: ``slos/api.yaml:7:16: slos[0].objective: ...``. SLO ids
(``service-name``) must be unique across ``slos:`` and every file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from monitor.config.messages import humanise, normalise_loc
from monitor.config.validation import Loc
from monitor.errors import ConfigError, ConfigErrors
from monitor.slo.files import convert_documents
from monitor.slo.model import SLO

if TYPE_CHECKING:
    from monitor.config.model import Config

__all__ = ["load_slos", "read_slo_files"]


def load_slos(config: Config, builder: Any, env: Mapping[str, str], format_loc: Callable[[Loc], str]) -> None:
    """Read ``slo_files`` into ``config`` and check SLO ids are unique across all SLOs.

    Each file is read like ``monitor.yaml`` (marks, ``${VAR}``); its documents are converted by
    :func:`monitor.slo.files.convert_documents` and validated as :class:`~monitor.slo.model.SLO`,
    every error located in the SLO file (``slos/api.yaml:7:16: slos[0].objective: ...``).

    :param builder: the loader's builder of ``monitor.yaml`` (its file name and key positions); a
        new one of the same class reads each SLO file.
    :param format_loc: prints a key path (``slos[0].objective``).
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
    loaded, file_errors = read_slo_files(config.resolved_slo_files(), type(builder), env, config.config_dir,
                                         format_loc, seen)
    errors.extend(file_errors)
    if errors:
        raise ConfigErrors(errors)
    config.set_file_slos(loaded)


def read_slo_files(paths: list[Path], builder_class: Any, env: Mapping[str, str], base_dir: Path,
                   format_loc: Callable[[Loc], str], seen: dict[str, str] | None = None,
                   ) -> tuple[list[SLO], list[ConfigError]]:
    """Read and validate the SLO files ``paths``; also used for a ``monitor.yaml`` that did not validate.

    The loader calls this on an invalid config too (with ``seen`` empty), so ``codebook-monitor
    check`` reports the SLO files' errors in the same round as the config's.

    :param builder_class: the loader's builder class (reads a file: marks, ``${VAR}``).
    :param seen: SLO id -> the file defining it (updated); a repeated id is an error.
    :return: the valid SLOs, in file order, and every error (``file:line:col``), in file order per file.
    """
    seen = {} if seen is None else seen
    errors: list[ConfigError] = []
    loaded: list[SLO] = []
    for path in paths:
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
        fb = builder_class(str(path), env, base_dir)
        docs = []
        for d, node in enumerate(nodes):
            fb.marks[(d,)] = (node.start_mark.line + 1, node.start_mark.column + 1)
            docs.append(fb.convert(node, (d,)))
        single = len(nodes) == 1

        def err(loc: Loc, message: str, fb: Any = fb, single: bool = single,
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
                    loc, raw = normalise_loc(tuple(e["loc"]), c.data)
                    err(c.source_loc(loc), humanise(e, raw))
                continue
            slo.source = str(path)
            if slo.id in seen:
                err(c.source_loc(("name",)), f'duplicate SLO "{slo.id}" (service-name; also in {seen[slo.id]})')
                continue
            seen[slo.id] = str(path)
            loaded.append(slo)
        errors.extend(fb.errors)
        errors.extend(sorted(file_errors, key=lambda e: (e.line or 0, e.column or 0)))
    return loaded, errors
