"""What an :class:`~monitor.promql.engine.Engine` keeps between queries, besides the range memo
(:mod:`monitor.promql.memo`): results of calls and aggregations, and two memos of label work.

* :class:`ResultCache` — results of function calls and aggregations by (PromQL text, evaluation
  time in ms). The rules of a group evaluate at one timestamp and repeat subexpressions such as
  ``rate(http_requests_total[5m])``; entries are dropped when the store reports new samples for
  a metric they read (``SampleStore.add_listener`` -> :meth:`ResultCache.invalidate`).
* :class:`NamelessLabels` — each label set without ``__name__``, one shared object per set.
* :class:`GroupKeyMemo` — the group labels of each input label set, per ``by``/``without`` clause.

Only instant queries (rule evaluations) use the result cache; the label memos serve every query.
All three are bounded: the result cache by samples held, the memos by entries (then start over).
"""

from __future__ import annotations

from typing import Callable

from monitor.promql.value import Sample, drop_name
from model.labels import Labels

#: Most nameless label sets kept (NamelessLabels) before starting over.
NAMELESS_LIMIT = 100_000
#: Most memoised group keys (all ``by``/``without`` clauses together) before starting over.
GROUP_KEY_LIMIT = 200_000
#: Most grouping clauses memoised at once (GroupKeyMemo) before starting over.
GROUP_CLAUSE_LIMIT = 64


class ResultCache:
    """Results of calls and aggregations at one evaluation time, shared between queries.

    :param limit: most result samples held in all (0 disables the cache: nothing is stored).

    Keys are ``(node.cache_key, t_ms)`` (see :func:`monitor.promql.nodes._cache_info`); each
    entry remembers the metric names its node reads (``None``: unknown, dropped on any
    invalidation). Oldest entries go first when the limit is reached; a result larger than
    the whole limit is not stored. An index from metric name to entries makes
    :meth:`invalidate` cost what it drops, not what the cache holds (it runs after every
    recorded write: with 50 SLOs, scanning every entry each time was over half the evaluation).
    """

    __slots__ = ("limit", "samples", "_entries", "_by_name", "_unknown")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.samples = 0
        self._entries: dict[tuple[str, int], tuple[frozenset[str] | None, list[Sample]]] = {}
        self._by_name: dict[str, set[tuple[str, int]]] = {}
        self._unknown: set[tuple[str, int]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, int]) -> list[Sample] | None:
        """Return the cached result for ``key``, or ``None``."""
        hit = self._entries.get(key)
        return None if hit is None else hit[1]

    def put(self, key: tuple[str, int], names: frozenset[str] | None, result: list[Sample]) -> None:
        """Keep ``result`` (read from the metrics ``names``) under ``key``, evicting the oldest
        entries beyond :attr:`limit` samples."""
        if len(result) > self.limit:
            return
        entries = self._entries
        if key in entries:
            self._remove(key)
        entries[key] = (names, result)
        self.samples += len(result)
        if names is None:
            self._unknown.add(key)
        else:
            by_name = self._by_name
            for name in names:
                keys = by_name.get(name)
                if keys is None:
                    by_name[name] = {key}
                else:
                    keys.add(key)
        while self.samples > self.limit:
            self._remove(next(iter(entries)))

    def _remove(self, key: tuple[str, int]) -> None:
        names, result = self._entries.pop(key)
        self.samples -= len(result)
        if names is None:
            self._unknown.discard(key)
            return
        by_name = self._by_name
        for name in names:
            keys = by_name.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del by_name[name]

    def invalidate(self, names: set[str]) -> None:
        """Drop the entries that read any of ``names`` (or unknown metric names)."""
        if not self._entries:
            return
        drop = set(self._unknown)
        by_name = self._by_name
        if len(names) <= len(by_name):
            for name in names:
                keys = by_name.get(name)
                if keys:
                    drop |= keys
        else:
            for name, keys in by_name.items():
                if name in names:
                    drop |= keys
        for key in drop:
            self._remove(key)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._by_name.clear()
        self._unknown.clear()
        self.samples = 0


class NamelessLabels:
    """Label sets without ``__name__``, one shared object per label set.

    Rules drop the names of the same series every round; sharing the result means fewer
    objects and less GC work. Call the memo with a label set; ``known`` is the underlying
    mapping, for hot loops that try ``known.get(labels)`` first.

    :param limit: most label sets kept before starting over.
    :param drop: the name removal (``value.drop_name``; ``value.mark_name`` under delayed name
        removal, where "without ``__name__``" means with the name marked for removal).

    Usage::

        nameless = NamelessLabels()
        nameless(Labels.of(__name__="up", job="api"))   # -> {job="api"}, the same object next time
    """

    __slots__ = ("limit", "known", "drop")

    def __init__(self, limit: int = NAMELESS_LIMIT, drop: Callable[[Labels], Labels] = drop_name) -> None:
        self.limit = limit
        self.known: dict[Labels, Labels] = {}
        self.drop = drop

    def __call__(self, labels: Labels) -> Labels:
        """Return ``labels`` without ``__name__`` (memoised)."""
        known = self.known
        got = known.get(labels)
        if got is None:
            if len(known) >= self.limit:
                known.clear()
            got = known[labels] = self.drop(labels)
        return got


class GroupKeyMemo:
    """Group labels per grouping clause and input label set (``aggregations.group_keys``).

    A label set's group labels depend on the grouping clause alone, and rules aggregate the
    same series every round, so they are computed once per (clause, label set).

    :param limit: most memoised label sets (all clauses together) before starting over.
    :param max_clauses: most clauses memoised at once before starting over.
    """

    __slots__ = ("limit", "max_clauses", "_by_clause")

    def __init__(self, limit: int = GROUP_KEY_LIMIT, max_clauses: int = GROUP_CLAUSE_LIMIT) -> None:
        self.limit = limit
        self.max_clauses = max_clauses
        self._by_clause: dict[tuple[bool, frozenset[str]], dict[Labels, Labels]] = {}

    def clause(self, without: bool, grouping: frozenset[str]) -> dict[Labels, Labels]:
        """Return the memo ``{input labels: group labels}`` of one grouping clause.

        The caller fills it, keeping each group's labels under their own key too (one
        object per group). All clauses are forgotten first when the memo is over its bounds
        (label churn or many different clauses).
        """
        memos = self._by_clause
        if len(memos) > self.max_clauses or sum(map(len, memos.values())) > self.limit:
            memos.clear()
        key = (without, grouping)
        memo = memos.get(key)
        if memo is None:
            memo = memos[key] = {}
        return memo
