"""The per-series memo of range-function results within one evaluation instant.

Rules of a group evaluate at one timestamp and repeat selectors such as
``rate(http_requests_total[5m])`` with different label filters; each series' value over a
window is computed once and shared (see ``Evaluator.range_columns``). Entries are dropped
with the engine's result cache when the store reports new samples for the metric.
"""

from __future__ import annotations

from typing import Any

from model.labels import Labels

#: Memo entry of a series without samples in the window (see Evaluator.range_columns).
ABSENT = object()
#: Most (function, window) memos kept at once (RangeMemos).
MEMO_WINDOWS = 256


class RangeMemo:
    """Results of one range function over one window (see ``Evaluator.range_columns``).

    :ivar values: series labels -> value, ``None`` (no output element) or ``ABSENT`` (no
        samples in the window).
    :ivar columns: (selector key, keep_name) -> ``(labels, values, series count)`` of a
        selector whose series were all in ``values``.
    """

    __slots__ = ("values", "columns")

    def __init__(self) -> None:
        self.values: dict[Labels, Any] = {}
        self.columns: dict[tuple[str, bool], tuple[list[Labels], list[float], int]] = {}


class RangeMemos:
    """The :class:`RangeMemo` of each (metric names, function, window start, end, range).

    :param limit: about how many series values to keep in all memos together.
    :param max_windows: most memos (windows) kept at once.

    The oldest memos go first when a new one needs room; :meth:`invalidate` drops the memos
    of metrics with new samples (or of unknown metrics, names ``None``).
    """

    __slots__ = ("limit", "max_windows", "_memos")

    def __init__(self, limit: int, max_windows: int = MEMO_WINDOWS) -> None:
        self.limit = limit
        self.max_windows = max_windows
        self._memos: dict[tuple[Any, ...], RangeMemo] = {}

    def __len__(self) -> int:
        return len(self._memos)

    def values(self) -> list[RangeMemo]:
        """Return the memos kept, oldest first."""
        return list(self._memos.values())

    def window(self, key: tuple[Any, ...]) -> RangeMemo:
        """Return the memo for ``key`` (``key[0]``: the metric names read, or ``None``), made
        room for (oldest first) when new: at most ``max_windows`` windows and about ``limit``
        series in all."""
        memos = self._memos
        memo = memos.get(key)
        if memo is None:
            while memos and (len(memos) >= self.max_windows
                             or sum(len(m.values) for m in memos.values()) > self.limit):
                del memos[next(iter(memos))]
            memo = memos[key] = RangeMemo()
        return memo

    def invalidate(self, names: set[str]) -> None:
        """Drop the memos that read any of ``names`` (or unknown metric names)."""
        memos = self._memos
        if memos:
            for k in [k for k in memos if k[0] is None or not k[0].isdisjoint(names)]:
                del memos[k]

    def clear(self) -> None:
        """Forget every memo."""
        self._memos.clear()
