"""Warnings of ``codebook-monitor check``: a config that is valid but watches less than it seems to.

- a glob of ``rules.files`` or ``slo_files`` that matches no file (a typo in a folder name
  leaves the daemon without those rules, silently otherwise);
- a config with no probes and no scrape targets: ``nothing to monitor`` (an empty file is valid).

Each warning names the config file and the key path, as errors do (without a line: the
config has validated, its positions are gone).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from monitor.config.model import expand_rule_files

__all__ = ["config_warnings"]


def config_warnings(config: Any, filename: str) -> list[str]:
    """Return the warnings of a valid config (see the module docstring), in key order.

    :param config: a validated :class:`~monitor.config.model.Config` (its ``config_dir`` set).
    :param filename: the config file as the user named it, for the messages.
    :return: ``['monitor.yaml: rules.files[0]: "nomatch/*.yaml" matches no file (relative to /x)', ...]``.
    """
    out: list[str] = []
    base: Path = config.config_dir
    for key, patterns in (("rules.files", config.rules.files), ("slo_files", config.slo_files)):
        for i, pattern in enumerate(patterns):
            if glob.has_magic(pattern) and not expand_rule_files([pattern], base):
                out.append(f'{filename}: {key}[{i}]: "{pattern}" matches no file '
                           f"(relative to the config file's folder {base})")
    if not config.probes and not config.scrape:
        out.append(f"{filename}: nothing to monitor: no probes and no scrape targets "
                   "(examples/monitor.yaml shows both)")
    return out
