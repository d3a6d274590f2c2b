"""The per-series memo of range-function results within one evaluation instant.

Rules of a group evaluate at one timestamp and repeat selectors such as
``rate(http_requests_total[5m])`` with different label filters; each series' value over a
window is computed once and shared (see ``engine._Query.range_columns``). Entries are dropped
with the engine's result cache when the store reports new samples for the metric.
"""

from __future__ import annotations

from typing import Any

from model.labels import Labels

#: Memo entry of a series without samples in the window (see _Query.range_columns).
ABSENT = object()


class RangeMemo:
    """Results of one range function over one window (see ``_Query.range_columns``).

    :ivar values: series labels -> value, ``None`` (no output element) or ``ABSENT`` (no
        samples in the window).
    :ivar columns: (selector key, keep_name) -> ``(labels, values, series count)`` of a
        selector whose series were all in ``values``.
    """

    __slots__ = ("values", "columns")

    def __init__(self) -> None:
        self.values: dict[Labels, Any] = {}
        self.columns: dict[tuple[str, bool], tuple[list[Labels], list[float], int]] = {}
