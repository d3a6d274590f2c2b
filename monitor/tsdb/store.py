"""The in-memory sample store: compact per-series arrays, a postings index, retention.

Every series (a :class:`~model.labels.Labels` set, the metric name included as
``__name__``) keeps its samples in two parallel typed arrays: ``array('q')`` of timestamps
(int **milliseconds** since the Unix epoch) and ``array('d')`` of float64 values. That is
16 bytes per sample plus the arrays' over-allocation (about 1/16) and roughly a kilobyte per
series for its labels and index entries: measured 19.9 bytes per sample (RSS delta 20.7) for
10,000 series x 480 samples (2 h at a 15 s interval), see ``benchmarks/tsdb_bench.py``.
No Python object is kept per sample.

Series are found through an inverted index, as in Prometheus's head block
(``tsdb/index/postings.go``, ``tsdb/querier.go`` ``PostingsForMatchers``): label name ->
label value -> set of series ids. An equality matcher is one dict lookup; a regex matcher
is evaluated once per distinct *value* of its label (not once per series); matchers that
also match the empty string (``!=``, ``!~``, ``=~".*"``, ``=""``) are applied as filters on
the candidates found by the others.

Semantics follow the Prometheus head appender (``tsdb/head_append.go``):

- samples of a series must arrive in timestamp order; an older timestamp is rejected
  (``ErrOutOfOrderSample``), as is a second sample at the same timestamp with a different
  value (``ErrDuplicateSampleForTimestamp``) — both are counted in ``out_of_order_total``.
  The same timestamp with a bit-identical value is accepted as a no-op.
- the staleness marker :data:`~monitor.tsdb.series.STALE_NAN` is stored like any value
  (``model/value/value.go``); readers (the PromQL engine) interpret it. A marker never
  creates a series.
- a new series beyond ``max_series`` is rejected (``rejected_series_total``), like
  Prometheus's ``sample_limit`` / ``storage.tsdb.max-series`` style caps.

Retention is *not* automatic: the owner (``monitor/daemon``) calls :meth:`SampleStore.gc`
periodically (every minute is plenty) with the current time. Trimming is amortised: ``gc``
advances a per-series start offset (O(log n)) and only compacts an array when its expired
prefix reaches 1/8 of its length.

Thread-safety: none, by design. The store is used from the daemon's single asyncio event loop
(probes, scrapes, the rule engine); no method awaits, so each call is atomic with respect to
other coroutines. Ad-hoc queries evaluated in worker threads read it through
:class:`monitor.promql.adhoc.LoopStore`, which runs every read on the loop and takes the copies
back (:meth:`series`, then :meth:`select_series` in chunks), so appends need no lock. Do not
call the store from another thread directly.
"""

from __future__ import annotations

import logging
import re
import sys
from array import array
from bisect import bisect_left, bisect_right
from operator import attrgetter
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from model.labels import METRIC_NAME, Labels
from .series import STALE_NAN, is_stale
from model.matchers import Matcher

__all__ = ["SampleStore", "SeriesSlice", "Listener"]

log = logging.getLogger(__name__)

#: Called with the set of metric names that received new samples (once per append call/batch);
#: a listener added with ``changed_only=True`` gets only the names whose new samples changed value.
Listener = Callable[[set[str]], None]

_DEFAULT_LOOKBACK_MS = 5 * 60 * 1000
#: Compact a series' arrays once the expired prefix is at least 1/_COMPACT_DIV of them.
_COMPACT_DIV = 8
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


class SeriesSlice(NamedTuple):
    """The samples of one series in a time range.

    :ivar labels: the series' label set.
    :ivar timestamps: int milliseconds, ascending; an ``array('q')`` *copy* (safe to keep).
    :ivar values: float64 values, same length; an ``array('d')`` copy. Staleness markers are
        included as stored (test with :func:`~monitor.tsdb.series.is_stale`).
    """

    labels: Labels
    timestamps: Sequence[int]
    values: Sequence[float]


class _Series:
    """One series: labels, parallel arrays, and the offset of its first live sample."""

    __slots__ = ("sid", "labels", "ts", "vs", "start")

    def __init__(self, sid: int, labels: Labels) -> None:
        self.sid = sid
        self.labels = labels
        self.ts = array("q")
        self.vs = array("d")
        self.start = 0

    def __len__(self) -> int:
        return len(self.ts) - self.start


#: one series beyond its samples and labels: the object, two empty arrays, the labels tuple,
#: the id, and its entries in the two series dicts.
_SERIES_BYTES = (sys.getsizeof(_Series(0, Labels())) + 2 * sys.getsizeof(array("q")) + sys.getsizeof(())
                 + 28 + 2 * _ENTRY_BYTES)


def _intern_labels(labels: Labels) -> Labels:
    """Return ``labels`` with interned names and values, so many series share their strings."""
    intern = sys.intern
    return tuple.__new__(Labels, tuple((intern(k), intern(v)) for k, v in labels))


def _same_value(a: float, b: float) -> bool:
    """Return whether two values are the same sample value (NaNs compared by staleness kind)."""
    if a == b:
        return True
    return a != a and b != b and is_stale(a) == is_stale(b)


class SampleStore:
    """In-memory time series store with retention, a series cap and matcher queries.

    :param retention_seconds: how long :meth:`gc` keeps samples (seconds, default 2 h);
        ``None`` keeps everything.
    :param max_series: the most series held at once; appends that would create more are
        rejected and counted in :attr:`rejected_series_total`.

    Counters (plain ints, read by ``monitor/metrics.py``): :attr:`out_of_order_total`,
    :attr:`rejected_series_total`, :attr:`appended_total`.

    >>> store = SampleStore()
    >>> up = Labels.of({"__name__": "up", "job": "api"})
    >>> store.append(up, 1_000, 1.0), store.append(up, 500, 0.0)
    (True, False)
    >>> [list(s.values) for s in store.select([Matcher("job", "=", "api")], 0, 2_000)]
    [[1.0]]
    """

    def __init__(self, retention_seconds: float | None = 7200, max_series: int = 200_000) -> None:
        self.retention_seconds = retention_seconds
        self.max_series = max_series
        self._by_labels: dict[Labels, _Series] = {}
        self._by_id: dict[int, _Series] = {}
        self._postings: dict[str, dict[str, set[int]]] = {}
        self._next_id = 0
        # Series id -> position in label order (see _sorted_ids); None when series came or
        # went since, with _unranked series sorted by their labels meanwhile.
        self._rank: dict[int, int] | None = None
        self._unranked = 0
        self._listeners: list[Listener] = []
        self._change_listeners: list[Listener] = []
        self._sample_count = 0
        # Running totals behind estimated_memory_bytes: array slots held (expired ones not yet
        # compacted away included) and the bytes of series objects, labels and the index.
        self._slots = 0
        self._index_bytes = 0
        self.out_of_order_total = 0
        self.rejected_series_total = 0
        self.appended_total = 0

    # ------------------------------------------------------------------ appending

    def append(self, labels: Labels, t: int, v: float) -> bool:
        """Append one sample and notify listeners if it was new.

        :param labels: the series (``__name__`` included).
        :param t: timestamp, int milliseconds since the epoch.
        :param v: value (float64); :data:`~monitor.tsdb.series.STALE_NAN` marks staleness.
        :return: ``True`` when stored (or an identical duplicate), ``False`` when rejected:
            out of order, a different value at the last timestamp, a new series beyond
            ``max_series``, or a staleness marker for a series that does not exist.
        """
        s = self._by_labels.get(labels)
        prev = s.vs[-1] if s is not None and len(s) else None
        ok = self._append(labels, int(t), float(v))
        if ok is True and (self._listeners or self._change_listeners):
            names = {labels.name}
            # NaN != NaN: a sample after a staleness marker (or a NaN) counts as a change.
            self._notify(names, names if prev is None or prev != float(v) else set())
        return ok is not False

    def append_batch(self, samples: Iterable[tuple[Labels, int, float]]) -> int:
        """Append many samples, then notify listeners once (change listeners too, if any changed).

        :param samples: ``(labels, t_ms, value)`` triples, any order across series.
        :return: the number of samples accepted (identical duplicates count as accepted).
        """
        names: set[str] = set()
        changed: set[str] = set()
        accepted = 0
        new = 0
        app = self._append
        get = self._by_labels.get
        try:
            for labels, t, v in samples:
                s = get(labels)
                # Fast path: an existing series and a newer int timestamp (every live series
                # holds at least one sample, so ts[-1] exists).
                if s is not None and type(t) is int and t > s.ts[-1]:
                    vs = s.vs
                    vs.append(v)  # first: it is the one that can raise (a non-number value)
                    s.ts.append(t)
                    new += 1
                    accepted += 1
                    # Sorted labels usually start with ("__name__", name).
                    name = labels[0][1] if labels and labels[0][0] == METRIC_NAME else labels.name
                    names.add(name)
                    if vs[-1] != vs[-2]:  # NaN != NaN: after a staleness marker, a change
                        changed.add(name)
                    continue
                prev = s.vs[-1] if s is not None and len(s) else None
                ok = app(labels, int(t), float(v))
                if ok is True:
                    accepted += 1
                    names.add(labels.name)
                    if prev is None or prev != float(v):
                        changed.add(labels.name)
                elif ok is None:
                    accepted += 1
        finally:  # keep the counters and listeners right even if a bad sample raised
            self._sample_count += new
            self._slots += new
            self.appended_total += new
            if names and (self._listeners or self._change_listeners):
                self._notify(names, changed)
        return accepted

    def mark_stale(self, labels: Labels, t: int) -> bool:
        """Append a staleness marker to an existing series (Prometheus ``scrape/scrape.go``).

        Used when a scraped series disappears or a probe is removed. Nothing happens if the
        series does not exist or its last sample is already a marker.

        :return: ``True`` if a marker is now the series' last sample at or before ``t``.
        """
        s = self._by_labels.get(labels)
        if s is None or len(s) == 0:
            return False
        if is_stale(s.vs[-1]) and s.ts[-1] <= t:
            return True
        return self.append(labels, t, STALE_NAN)

    def _append(self, labels: Labels, t: int, v: float) -> bool | None:
        """Append without notifying: ``True`` new sample, ``None`` no-op duplicate, ``False`` rejected."""
        s = self._by_labels.get(labels)
        if s is None:
            if v != v and is_stale(v):
                return False
            if len(self._by_labels) >= self.max_series:
                self.rejected_series_total += 1
                return False
            s = self._create(labels)
        ts = s.ts
        if len(ts) > s.start:
            last = ts[-1]
            if t <= last:
                if t == last and _same_value(s.vs[-1], v):
                    return None
                self.out_of_order_total += 1
                return False
        ts.append(t)
        s.vs.append(v)
        self._sample_count += 1
        self._slots += 1
        self.appended_total += 1
        return True

    def _create(self, labels: Labels) -> _Series:
        labels = _intern_labels(labels)
        sid = self._next_id
        self._next_id += 1
        s = _Series(sid, labels)
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

    def _drop(self, s: _Series) -> None:
        del self._by_labels[s.labels]
        del self._by_id[s.sid]
        self._rank, self._unranked = None, 0
        self._slots -= len(s.ts)
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

    def add_listener(self, fn: Listener, *, changed_only: bool = False) -> None:
        """Call ``fn(metric_names)`` after every append call or batch that stored new samples.

        Listeners run synchronously inside the append; they should only schedule work (the
        rule engine wakes the groups that read those metrics). An exception in a listener is
        logged and does not affect the append or the other listeners.

        :param changed_only: call ``fn`` only with the names of series whose new sample differs
            from the series' previous one (a new series, a value after a staleness marker, a
            staleness marker and any NaN count as changes), and only when there are any.
        """
        (self._change_listeners if changed_only else self._listeners).append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn`` (no error if it was not registered)."""
        for listeners in (self._listeners, self._change_listeners):
            try:
                listeners.remove(fn)
            except ValueError:
                pass

    def _notify(self, names: set[str], changed: set[str]) -> None:
        calls = [(fn, names) for fn in self._listeners]
        if changed:
            calls += [(fn, changed) for fn in self._change_listeners]
        for fn, arg in calls:
            try:
                fn(set(arg))
            except Exception:  # noqa: BLE001 - a listener must never break ingestion
                log.exception("sample store listener %r failed", fn)

    # ------------------------------------------------------------------ selecting

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

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[SeriesSlice]:
        """Return the samples with ``mint <= t <= maxt`` (ms, both inclusive) of matching series.

        :param matchers: all must match (a missing label has the value ``""``); an empty
            list selects every series.
        :return: one :class:`SeriesSlice` per series with at least one sample in range,
            sorted by labels. Timestamps/values are array copies, so the caller may keep them
            while the store keeps appending (a memoryview would block the arrays' growth).
        """
        by_id = self._by_id
        out: list[SeriesSlice] = []
        append = out.append
        new = tuple.__new__
        for sid in self._sorted_ids(self._ids_for(matchers)):
            s = by_id[sid]
            ts = s.ts
            lo = bisect_left(ts, mint, s.start)
            # The usual query ends at or after the last sample: one binary search, not two.
            hi = len(ts) if ts and ts[-1] <= maxt else bisect_right(ts, maxt, lo)
            if lo < hi:
                append(new(SeriesSlice, (s.labels, ts[lo:hi], s.vs[lo:hi])))
        return out

    def select_series(self, labels: Sequence[Labels], mint: int, maxt: int) -> list[SeriesSlice]:
        """Return the samples with ``mint <= t <= maxt`` (ms, inclusive) of the given series.

        The second half of :meth:`select`, for readers that take a selection in chunks
        (:class:`monitor.promql.adhoc.LoopStore`: ``series(matchers)``, then this per chunk).

        :param labels: series as returned by :meth:`series`; unknown ones are skipped.
        :return: one :class:`SeriesSlice` per series with samples in range, in the given order.
        """
        get = self._by_labels.get
        out: list[SeriesSlice] = []
        new = tuple.__new__
        for lb in labels:
            s = get(lb)
            if s is None:
                continue
            ts = s.ts
            lo = bisect_left(ts, mint, s.start)
            hi = len(ts) if ts and ts[-1] <= maxt else bisect_right(ts, maxt, lo)
            if lo < hi:
                out.append(new(SeriesSlice, (s.labels, ts[lo:hi], s.vs[lo:hi])))
        return out

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

    def instant(self, matchers: Sequence[Matcher], t: int,
                lookback_ms: int = _DEFAULT_LOOKBACK_MS) -> list[tuple[Labels, int, float]]:
        """Return the latest sample at or before ``t`` within the lookback, per series.

        Prometheus 3 instant-vector selection (``promql/engine.go`` ``vectorSelectorSingle``):
        the window is ``(t - lookback, t]``; a series whose latest sample in it is a staleness
        marker is omitted.

        :return: ``(labels, sample_t_ms, value)`` sorted by labels.
        """
        out: list[tuple[Labels, int, float]] = []
        by_id = self._by_id
        for sid in self._sorted_ids(self._ids_for(matchers)):
            s = by_id[sid]
            i = bisect_right(s.ts, t, s.start) - 1
            if i < s.start:
                continue
            st = s.ts[i]
            if st <= t - lookback_ms:
                continue
            v = s.vs[i]
            if v != v and is_stale(v):
                continue
            out.append((s.labels, st, v))
        return out

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

    def sample_interval(self, names: Iterable[str], max_series: int = 10_000) -> float | None:
        """Return the shortest spacing between the last two samples of any series named ``names``.

        For a probed or scraped series that is its probe or scrape interval, so this is the
        shortest input interval of a rule group reading those metrics (the rule manager spaces
        data-triggered evaluations by it). Series whose last sample is a staleness marker are
        skipped.

        :param names: metric names (``__name__`` values).
        :param max_series: look at no more series than this (bounds the cost; O(series read)).
        :return: seconds, or ``None`` when no such series has two live samples.
        """
        values = self._postings.get(METRIC_NAME)
        if not values:
            return None
        by_id = self._by_id
        best: int | None = None
        budget = max_series
        for name in names:
            for sid in values.get(name, ()):
                if budget <= 0:
                    break
                budget -= 1
                s = by_id[sid]
                ts = s.ts
                if len(ts) - s.start < 2 or is_stale(s.vs[-1]):
                    continue
                gap = ts[-1] - ts[-2]
                if gap > 0 and (best is None or gap < best):
                    best = gap
        return None if best is None else best / 1000.0

    def stored_labels(self, labels: Labels) -> Labels | None:
        """Return the store's own (interned) copy of a series' label set, or ``None`` if the
        series is not held: a caller that appends to the same series again and again keeps this
        copy rather than one of its own (one label set in memory per series)."""
        s = self._by_labels.get(labels)
        return s.labels if s is not None else None

    def last_timestamp(self, labels: Labels) -> int | None:
        """Return the timestamp (ms) of the series' last sample, or ``None`` if unknown."""
        s = self._by_labels.get(labels)
        return s.ts[-1] if s is not None and len(s) else None

    # ------------------------------------------------------------------ sizes and upkeep

    @property
    def series_count(self) -> int:
        """The number of series held."""
        return len(self._by_labels)

    @property
    def sample_count(self) -> int:
        """The number of samples held (staleness markers included)."""
        return self._sample_count

    def gc(self, now_ms: int) -> int:
        """Drop samples older than ``now_ms - retention`` and the series left empty.

        Call it periodically from outside (the daemon does, every minute). Samples with
        ``t >= now_ms - retention_ms`` are kept. Arrays are compacted only once their
        expired prefix reaches 1/8 of their length, so the cost is amortised.

        :param now_ms: the current time, int milliseconds.
        :return: the number of samples dropped.
        """
        if self.retention_seconds is None:
            return 0
        cutoff = int(now_ms - self.retention_seconds * 1000)
        dropped = 0
        empty: list[_Series] = []
        for s in self._by_id.values():
            ts = s.ts
            if ts[s.start] >= cutoff:  # the common case: nothing expired
                continue
            i = bisect_left(ts, cutoff, s.start)
            dropped += i - s.start
            if i == len(ts):
                empty.append(s)
                continue
            s.start = i
            if i * _COMPACT_DIV >= len(ts):
                del ts[:i]
                del s.vs[:i]
                s.start = 0
                self._slots -= i
        for s in empty:
            self._drop(s)
        self._sample_count -= dropped
        return dropped

    def clear(self) -> None:
        """Drop every series and sample (counters and listeners are kept)."""
        self._by_labels.clear()
        self._by_id.clear()
        self._postings.clear()
        self._rank, self._unranked = None, 0
        self._sample_count = 0
        self._slots = 0
        self._index_bytes = 0

    @property
    def estimated_memory_bytes(self) -> int:
        """A running estimate of the bytes held, cheap to read (``monitor_tsdb_memory_bytes``).

        Kept as samples and series come and go: 17 bytes per stored sample (two 8-byte array
        slots and ~1/16 over-allocation, expired samples not yet compacted away included), and per
        series its object, empty arrays, labels tuple, dict entries and postings entries, plus
        each distinct label name and value once with its postings set. Within a few percent of
        :meth:`memory_bytes`, which walks everything (O(series)).
        """
        return self._slots * _SAMPLE_BYTES + self._index_bytes

    def memory_bytes(self) -> int:
        """Estimate the bytes held: arrays (allocated capacity), series objects, labels, index.

        Label strings are interned and shared between series, so each distinct string is
        counted once (through the postings index); dict/set overheads use ``sys.getsizeof``.
        """
        size = sys.getsizeof
        total = size(self._by_labels) + size(self._by_id) + size(self._postings)
        for s in self._by_id.values():
            total += size(s) + size(s.ts) + size(s.vs) + size(s.labels)
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
