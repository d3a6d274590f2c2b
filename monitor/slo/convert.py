"""What the format converters share: a converted SLO mapping with the way back to its source keys.

A converter (:mod:`monitor.slo.sloth`, :mod:`monitor.slo.openslo`) turns a foreign document into
mappings of our :class:`~monitor.slo.model.SLO` shape. Validation errors are found on our shape;
:meth:`Converted.source_loc` maps each error's key path back to the key of the source document it
came from, so the loader can print ``slos/sloth.yaml:12:9: slos[0].objective: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Loc", "Problems", "Converted"]

#: A key path: mapping keys and list indexes, outermost first.
Loc = tuple[int | str, ...]
#: Structural errors found while converting: ``(source key path, message)``.
Problems = list[tuple[Loc, str]]


@dataclass
class Converted:
    """One SLO mapping converted from a source document.

    :ivar data: the mapping in our ``SLO`` shape (not validated yet).
    :ivar at: the key path of the SLO's own node in the source document (errors fall back to it).
    :ivar trans: our key path prefix -> source key path, for the keys that map one to one.
    :ivar same_shape: the source is in our shape already: an error at ``loc`` is at ``at + loc``.
    """

    data: dict[str, Any]
    at: Loc
    trans: dict[Loc, Loc] = field(default_factory=dict)
    same_shape: bool = False

    def source_loc(self, loc: Loc) -> Loc:
        """Return the source key path of an error at our ``loc`` (longest known prefix wins)."""
        if self.same_shape:
            return self.at + loc
        for n in range(len(loc), 0, -1):
            if loc[:n] in self.trans:
                return self.trans[loc[:n]]
        return self.at
