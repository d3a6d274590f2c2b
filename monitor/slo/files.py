"""Recognise an SLO file's format and convert its documents to our SLO shape.

Three formats are accepted in ``slo_files:`` (told apart by their content, not their name):

- ours: a mapping with ``slos:``, a list of entries exactly like ``slos:`` in ``monitor.yaml``;
- Sloth ``prometheus/v1`` (``version: prometheus/v1``, :mod:`monitor.slo.sloth`);
- OpenSLO v1 (``apiVersion: openslo/v1``, one or more YAML documents, :mod:`monitor.slo.openslo`).

Key paths in the returned problems and in :class:`~monitor.slo.convert.Converted` start with the
YAML document's index (``(0, "slos", 2, "objective")``), so a multi-document OpenSLO stream and a
single-document file are located alike.
"""

from __future__ import annotations

from typing import Any

from monitor.slo.convert import Converted, Loc, Problems
from monitor.slo.openslo import convert_openslo, is_openslo
from monitor.slo.sloth import convert_sloth, is_sloth

__all__ = ["convert_documents"]


def _prefixed(c: Converted, prefix: Loc) -> Converted:
    return Converted(c.data, prefix + c.at, {k: prefix + v for k, v in c.trans.items()}, c.same_shape)


def convert_documents(docs: list[Any]) -> tuple[list[Converted], Problems]:
    """Convert the YAML documents of one SLO file.

    :param docs: the file's documents, in order (``None`` for an empty document).
    :return: ``(converted SLO mappings, problems)``; a problem is ``(key path, message)``.
    """
    problems: Problems = []
    present = [(i, d) for i, d in enumerate(docs) if d is not None]
    if any(is_openslo(d) for _, d in present):
        out = convert_openslo(present, problems)
        if not out and not problems:
            problems.append(((), "no OpenSLO SLO document in this file"))
        return out, problems
    if len(present) != 1:
        problems.append(((), "expected one YAML document: `slos:` (ours), Sloth prometheus/v1 or OpenSLO v1"))
        return [], problems
    i, doc = present[0]
    local: Problems = []
    if is_sloth(doc):
        out = [_prefixed(c, (i,)) for c in convert_sloth(doc, local)]
    elif isinstance(doc, dict) and "slos" in doc:
        for k in sorted(set(doc) - {"slos"}):
            local.append(((k,), f'unknown key "{k}"'))
        items = doc["slos"]
        if not isinstance(items, list):
            local.append((("slos",), "expected a list"))
            items = []
        out = [Converted(item if isinstance(item, dict) else {}, (i, "slos", n), same_shape=True)
               for n, item in enumerate(items)]
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                local.append((("slos", n), "expected a mapping"))
        out = [c for c, item in zip(out, items) if isinstance(item, dict)]
    else:
        local.append(((), "not an SLO file: expected `slos:` (ours), `version: prometheus/v1` (Sloth) "
                          "or `apiVersion: openslo/v1` (OpenSLO)"))
        out = []
    problems.extend(((i,) + loc, msg) for loc, msg in local)
    return out, problems
