"""The series index of the sample store: series objects, their ids, and the postings index.

Every series (a :class:`~model.labels.Labels` set, the metric name included as ``__name__``) is a
:class:`_Series` holding its recent samples (the head) in two parallel typed arrays:
``array('q')`` of timestamps (int **milliseconds** since the Unix epoch) and ``array('d')`` of
float64 values, its older ones in closed chunks (:mod:`monitor.tsdb.chunks`), plus its retention
and resolution (from :mod:`monitor.tsdb.retention`).

Series are found through an inverted index, as in Prometheus's head block
(``tsdb/index/postings.go``, ``tsdb/querier.go`` ``PostingsForMatchers``): label name ->
label value -> set of series ids. An equality matcher is one dict lookup; a regex matcher
is evaluated once per distinct *value* of its label (not once per series); matchers that
also match the empty string (``!=``, ``!~``, ``=~".*"``, ``=""``) are applied as filters on
the candidates found by the others.

:class:`SeriesIndex` is the base of :class:`monitor.tsdb.store.SampleStore`; it holds no samples
logic (appends, selection and retention are the store's).
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterable, Sequence
from operator import attrgetter

from model.labels import Labels
from model.matchers import Matcher
from .chunks import CHUNK_OVERHEAD_BYTES, COLD_BYTES, Cold

__all__ = ["SeriesIndex"]

#: Characters that make a regex more than a literal (for the ``=~"a|b|c"`` fast path).
_REGEX_META = re.compile(r"[.^$*+?{}\[\]\\()|]")

# Sizes for the running memory estimate (:attr:`SampleStore.estimated_memory_bytes`), bytes:
#: one stored sample: an int64 and a float64, plus the arrays' ~1/16 over-allocation;
_SAMPLE_BYTES = 17
#: a hash-table entry (dicts and large sets, amortised);
_ENTRY_BYTES = 50
#: one label pair of a series: its slot in the labels tuple, the pair tuple, its id in a postings set;
_PER_LABEL_BYTES = 8 + sys.getsizeof(("", "")) + 40
#: a distinct label value: its postings set and the entry pointing to it (plus the string itself);
_PER_VALUE_BYTES = sys.getsizeof(set()) + _ENTRY_BYTES
#: a distinct label name: its dict of values and the entry pointing to it (plus the string itself).
_PER_NAME_BYTES = sys.getsizeof({}) + _ENTRY_BYTES


class _Series:
    """One series: labels, parallel arrays, the offset of its first live sample, its policy.

    :ivar keep: retention, int milliseconds, or ``-1``: the store's default retention.
    :ivar res: resolution, int milliseconds: at most one sample per ``res`` step (the last one
        appended in it); ``0`` keeps every sample.
    """

    __slots__ = ("sid", "labels", "ts", "vs", "start", "keep", "res", "cold")

    def __init__(self, sid: int, labels: Labels, keep: int = -1, res: int = 0) -> None:
        self.sid = sid
        self.labels = labels
        self.ts = array("q")
        self.vs = array("d")
        self.start = 0
        self.keep = keep
        self.res = res
        #: Closed chunks of older samples (:class:`~monitor.tsdb.chunks.Cold`), ``None`` until
        #: the retention sweep closes the first one.
        self.cold: Cold | None = None

    def __len__(self) -> int:
        return len(self.ts) - self.start


#: one series beyond its samples and labels: the object, two empty arrays, the labels tuple,
#: the id, and its entries in the two series dicts.
_SERIES_BYTES = (sys.getsizeof(_Series(0, Labels())) + 2 * sys.getsizeof(array("q")) + sys.getsizeof(())
                 + 28 + 2 * _ENTRY_BYTES)


#: Shared ``(name, value)`` pairs (:func:`_intern_labels`); started over past :data:`PAIRS_LIMIT`.
_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}
#: Most shared pairs kept (label churn would otherwise grow the table without bound).
PAIRS_LIMIT = 1_000_000


def _intern_labels(labels: Labels) -> Labels:
    """Return ``labels`` built of shared ``(name, value)`` pairs of interned strings, so the many
    series of one target or probe (``probe``, ``instance``, ``kind`` ...) share their pairs and
    strings: 6 labels cost 48 bytes of pointers instead of 6 tuples of 62 bytes."""
    pairs = _PAIRS
    if len(pairs) > PAIRS_LIMIT:
        pairs.clear()
    out = []
    for pair in labels:
        shared = pairs.get(pair)
        if shared is None:
            shared = pairs[pair] = (sys.intern(pair[0]), sys.intern(pair[1]))
        out.append(shared)
    return tuple.__new__(Labels, tuple(out))



class SeriesIndex:
    """Series by labels and by id, the postings index, and the running size of both.

    Subclasses set :attr:`_policy` (labels -> ``(keep_ms, res_ms)``) before creating series.
    """

    def __init__(self) -> None:
        self._by_labels: dict[Labels, _Series] = {}
        self._by_id: dict[int, _Series] = {}
        self._postings: dict[str, dict[str, set[int]]] = {}
        self._next_id = 0
        # Series id -> position in label order (see _sorted_ids); None when series came or
        # went since, with _unranked series sorted by their labels meanwhile.
        self._rank: dict[int, int] | None = None
        self._unranked = 0
        # Running totals behind estimated_memory_bytes: array slots held (expired ones not yet
        # compacted away included) and the bytes of series objects, labels and the index.
        self._slots = 0
        self._index_bytes = 0
        # Bytes of closed chunks (encodings and per-chunk overhead), and per block file (by its
        # number, :mod:`monitor.tsdb.blocks`) the chunks held in memory that it stores.
        self._cold_bytes = 0
        self._block_live: dict[int, int] = {}
        # Series created since the write-ahead log last recorded new series (durable stores only).
        self._new_series: list[_Series] = []
        self._track_new = False

    def _policy(self, labels: Labels) -> tuple[int, int]:
        """Return ``(keep_ms, res_ms)`` for a new series (overridden by the store)."""
        return -1, 0

    def _create(self, labels: Labels, sid: int | None = None) -> _Series:
        """Create and index a series; ``sid`` is given when replaying the write-ahead log."""
        labels = _intern_labels(labels)
        if sid is None or sid in self._by_id:
            sid = self._next_id
        self._next_id = max(self._next_id, sid + 1)
        keep, res = self._policy(labels)
        s = _Series(sid, labels, keep, res)
        if self._track_new:
            self._new_series.append(s)
        self._by_labels[labels] = s
        self._by_id[sid] = s
        self._rank, self._unranked = None, 0
        postings = self._postings
        size = sys.getsizeof
        added = _SERIES_BYTES + _PER_LABEL_BYTES * len(labels)
        for k, val in labels:
            values = postings.get(k)
            if values is None:
                values = postings[k] = {}
                added += size(k) + _PER_NAME_BYTES
            ids = values.get(val)
            if ids is None:
                ids = values[val] = set()
                added += size(val) + _PER_VALUE_BYTES
            ids.add(sid)
        self._index_bytes += added
        return s

    def _forget_chunks(self, cold: Cold, k: int) -> None:
        """Account for the ``k`` oldest chunks of ``cold`` going (the caller removes them)."""
        self._cold_bytes -= sum(map(len, cold.data[:k])) + CHUNK_OVERHEAD_BYTES * k
        live = self._block_live
        for b in cold.block[:k]:
            if b:
                live[b] -= 1

    def _drop(self, s: _Series) -> None:
        """Remove a series from the index (its samples are gone or expired)."""
        del self._by_labels[s.labels]
        del self._by_id[s.sid]
        self._rank, self._unranked = None, 0
        self._slots -= len(s.ts)
        if s.cold is not None:
            self._forget_chunks(s.cold, len(s.cold))
            self._cold_bytes -= COLD_BYTES
            s.cold = None
        size = sys.getsizeof
        removed = _SERIES_BYTES + _PER_LABEL_BYTES * len(s.labels)
        for k, val in s.labels:
            values = self._postings[k]
            ids = values[val]
            ids.discard(s.sid)
            if not ids:
                del values[val]
                removed += size(val) + _PER_VALUE_BYTES
                if not values:
                    del self._postings[k]
                    removed += size(k) + _PER_NAME_BYTES
        self._index_bytes -= removed

    # ------------------------------------------------------------------ listeners


    def _ids_for(self, matchers: Sequence[Matcher]) -> Iterable[int]:
        """Return the ids of the series matching every matcher (``tsdb/querier.go``)."""
        postings = self._postings
        positive: list[set[int]] = []
        filters: list[Matcher] = []
        for m in matchers:
            if m.matches(""):
                # Matches series without the label too: filter the others' candidates.
                filters.append(m)
                continue
            values = postings.get(m.name)
            if not values:
                return ()
            if m.op == "=":
                ids = values.get(m.value)
                if not ids:
                    return ()
                positive.append(ids)
                continue
            alts = _literal_alternatives(m)
            if alts is not None:
                sets = [values[a] for a in alts if a in values]
            else:
                sets = [ids for val, ids in values.items() if m.matches(val)]
            if not sets:
                return ()
            positive.append(sets[0] if len(sets) == 1 else set().union(*sets))
        if positive:
            positive.sort(key=len)
            result: Iterable[int] = positive[0].intersection(*positive[1:]) if len(positive) > 1 else positive[0]
        else:
            result = self._by_id.keys()
        if filters:
            by_id = self._by_id
            result = [sid for sid in result
                      if all(m.matches_labels(by_id[sid].labels) for m in filters)]
        return result


    def _sorted_ids(self, ids: Iterable[int]) -> list[int]:
        """Return ``ids`` in label order (as Prometheus's postings lists are).

        Sorting by a cached rank (series id -> position in label order) compares ints rather
        than label tuples. After series come or go the rank is stale: selections are then
        sorted by their labels, and the rank is rebuilt (O(N log N) over all N series) only
        once N series have been sorted that way, so churn costs at most about twice the
        sorting it did before.
        """
        rank = self._rank
        if rank is None:
            by_id = self._by_id
            ids = list(ids)
            self._unranked += len(ids)
            if self._unranked < len(by_id):
                ids.sort(key=lambda sid: by_id[sid].labels)
                return ids
            ordered = sorted(by_id.values(), key=attrgetter("labels"))
            self._rank = rank = {s.sid: i for i, s in enumerate(ordered)}
        return sorted(ids, key=rank.__getitem__)


    def series(self, matchers: Sequence[Matcher] = ()) -> list[Labels]:
        """Return the label sets of the series matching ``matchers``, sorted."""
        by_id = self._by_id
        return [by_id[sid].labels for sid in self._sorted_ids(self._ids_for(matchers))]

    def label_names(self, matchers: Sequence[Matcher] | None = None) -> list[str]:
        """Return every label name in use (of the matching series, if given), sorted."""
        if not matchers:
            return sorted(self._postings)
        names: set[str] = set()
        for lbl in self.series(matchers):
            names.update(k for k, _ in lbl)
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] | None = None) -> list[str]:
        """Return every value of label ``name`` (of the matching series, if given), sorted."""
        if not matchers:
            return sorted(self._postings.get(name, ()))
        vals = {lbl.get(name) for lbl in self.series(matchers)}
        vals.discard("")
        return sorted(vals)


    @property
    def series_count(self) -> int:
        """The number of series held."""
        return len(self._by_labels)

    def memory_bytes(self) -> int:
        """Estimate the bytes held: arrays (allocated capacity), series objects, labels, index.

        Label strings are interned and shared between series, so each distinct string is
        counted once (through the postings index); dict/set overheads use ``sys.getsizeof``.
        """
        size = sys.getsizeof
        total = size(self._by_labels) + size(self._by_id) + size(self._postings)
        for s in self._by_id.values():
            total += size(s) + size(s.ts) + size(s.vs) + size(s.labels)
            if s.cold is not None:
                c = s.cold
                total += size(c) + size(c.mint) + size(c.maxt) + size(c.n) + size(c.block) + size(c.data)
                total += sum(size(b) for b in c.data)
            total += sum(size(p) for p in s.labels)
        for name, values in self._postings.items():
            total += size(name) + size(values)
            for val, ids in values.items():
                total += size(val) + size(ids)
        # The ints used as series ids (small ints beyond 256 are separate objects).
        total += 28 * len(self._by_id)
        return total



def _literal_alternatives(m: Matcher) -> list[str] | None:
    """Return the literals of a ``=~"a|b|c"`` matcher, or ``None`` if it is a real regex.

    Prometheus's ``FastRegexMatcher`` set-matches optimisation (``model/labels/regexp.go``).
    """
    if m.op != "=~":
        return None
    parts = m.value.split("|")
    if any(not p or _REGEX_META.search(p) for p in parts):
        return None
    return parts
