"""The sample store: appends, selection, listeners and per-series retention, optionally durable.

Every series keeps its recent samples (the head) in two parallel typed arrays
(:mod:`monitor.tsdb.index`): 16 bytes per sample plus the arrays' over-allocation (about 1/16) and
roughly a kilobyte per series for its labels and index entries: measured 19.9 bytes per sample
(RSS delta 20.7) for 10,000 series x 480 samples (2 h at a 15 s interval), see
``benchmarks/tsdb_bench.py``. No Python object is kept per sample. Samples older than ``head_ms``
(2 h) are moved by :meth:`SampleStore.gc` into closed chunks of ``chunk_samples`` (240), encoded
by :mod:`monitor.tsdb.chunks` (about 6 bytes a sample for full-precision values, under 1 for
constant ones) and decoded by reads; appends never touch them.

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

Retention is per series (:mod:`monitor.tsdb.retention`): a series takes the first retention rule
matching its labels when it is created (retention and resolution; a downsampled series keeps the
last sample of each resolution step), else ``retention_seconds`` at full resolution. It is *not*
automatic: the owner (``monitor/daemon``) calls :meth:`SampleStore.gc` periodically (every
minute is plenty) with the current time. Trimming is amortised: ``gc`` advances a per-series
start offset (O(log n)) and only compacts an array when its expired prefix reaches 1/8 of its
length.

Durability (optional): :meth:`~monitor.tsdb.persist.Durable.open` loads a directory's
checkpoint and blocks, replays its write-ahead log and logs from then on; ``flush`` / ``checkpoint`` / ``close`` are
the owner's to call (see :mod:`monitor.tsdb.persist` for the fsync policy). Without ``open`` the
store is in memory only.

Thread-safety: none, by design. The store is used from the daemon's single asyncio event loop
(probes, scrapes, the rule engine); no method awaits except :meth:`checkpoint`, which hands only
copies to worker threads, so each call is atomic with respect to other coroutines. Ad-hoc queries
evaluated in worker threads read it through :class:`monitor.promql.adhoc.LoopStore`, which runs
every read on the loop and takes the copies back (:meth:`series`, then :meth:`select_series` in
chunks), so appends need no lock. Do not call the store from another thread directly.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from model.labels import METRIC_NAME, Labels
from model.matchers import Matcher
from .chunks import CHUNK_OVERHEAD_BYTES, CHUNK_SAMPLES, COLD_BYTES, HEAD_MS, Cold, decode_timestamps, encode
from .index import _SAMPLE_BYTES, _Series
from .persist import Durable
from .retention import DEFAULT_KEEP, RetentionPolicy, RetentionRule
from .series import STALE_NAN, is_stale

__all__ = ["SampleStore", "SeriesSlice", "Listener"]

log = logging.getLogger(__name__)

#: Called with the set of metric names that received new samples (once per append call/batch);
#: a listener added with ``changed_only=True`` gets only the names whose new samples changed value.
Listener = Callable[[set[str]], None]

_DEFAULT_LOOKBACK_MS = 5 * 60 * 1000
#: Compact a series' arrays once the expired prefix is at least 1/_COMPACT_DIV of them.
_COMPACT_DIV = 8
#: Chunks one :meth:`SampleStore.gc` call closes at most (~30 us each: bounds its time on the loop).
GC_MAX_CHUNKS = 500
_NO_TIME = 1 << 62

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



def _same_value(a: float, b: float) -> bool:
    """Return whether two values are the same sample value (NaNs compared by staleness kind)."""
    if a == b:
        return True
    return a != a and b != b and is_stale(a) == is_stale(b)


class SampleStore(Durable):
    """Time series store with per-series retention, a series cap, matcher queries, optional WAL.

    :param retention_seconds: how long :meth:`gc` keeps samples of series no retention rule
        matches (seconds, default 2 h); ``None`` keeps everything. May be changed later: it
        applies to those series at the next :meth:`gc`.
    :param max_series: the most series held at once; appends that would create more are
        rejected and counted in :attr:`rejected_series_total`.
    :param retention_rules: longer (or shorter) retention and a resolution for the series they
        match (:class:`~monitor.tsdb.retention.RetentionRule`; first match wins).
    :param chunk_samples: samples per closed chunk (:mod:`monitor.tsdb.chunks`).
    :param head_ms: samples younger than this (ms, by :meth:`gc`'s clock) stay in the head.

    Counters (plain ints, read by ``monitor/metrics.py``): :attr:`out_of_order_total`,
    :attr:`rejected_series_total`, :attr:`appended_total`, :attr:`wal_errors_total`.

    >>> store = SampleStore()
    >>> up = Labels.of({"__name__": "up", "job": "api"})
    >>> store.append(up, 1_000, 1.0), store.append(up, 500, 0.0)
    (True, False)
    >>> [list(s.values) for s in store.select([Matcher("job", "=", "api")], 0, 2_000)]
    [[1.0]]
    """

    def __init__(self, retention_seconds: float | None = 7200, max_series: int = 200_000,
                 retention_rules: Sequence[RetentionRule] = (), *, chunk_samples: int = CHUNK_SAMPLES,
                 head_ms: int = HEAD_MS) -> None:
        super().__init__()
        self.retention_seconds = retention_seconds
        self.max_series = max_series
        self.chunk_samples = chunk_samples
        self.head_ms = head_ms
        self.retention = RetentionPolicy(retention_rules)
        self._listeners: list[Listener] = []
        self._change_listeners: list[Listener] = []

    def _policy(self, labels: Labels) -> tuple[int, int]:
        return self.retention.for_labels(labels)

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
        log = self._log
        if log is not None:
            log_sid, log_t, log_v = log[0].append, log[1].append, log[2].append
        try:
            for labels, t, v in samples:
                s = get(labels)
                # Fast path: an existing full-resolution series and a newer int timestamp
                # (every live series holds at least one sample, so ts[-1] exists).
                if s is not None and type(t) is int and t > s.ts[-1] and not s.res:
                    vs = s.vs
                    vs.append(v)  # first: it is the one that can raise (a non-number value)
                    s.ts.append(t)
                    if log is not None:
                        log_v(v)
                        log_t(t)
                        log_sid(s.sid)
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
        return self._add(s, t, v)

    def _add(self, s: _Series, t: int, v: float) -> bool | None:
        """Append to ``s``: ``True`` stored (or replaced the last sample of its resolution step),
        ``None`` no-op duplicate, ``False`` out of order."""
        ts = s.ts
        n = len(ts)
        if n > s.start:
            last = ts[-1]
            if t <= last:
                if t == last and _same_value(s.vs[-1], v):
                    return None
                self.out_of_order_total += 1
                return False
            res = s.res
            if res and t // res == last // res:
                # Same resolution step: the newer sample replaces the step's last one.
                ts[-1] = t
                s.vs[-1] = v
                self.appended_total += 1
                if self._log is not None:
                    self._log_sample(s.sid, t, v)
                return True
        elif s.cold is not None and t <= s.cold.maxt[-1]:  # an empty head (never left so by gc)
            self.out_of_order_total += 1
            return False
        ts.append(t)
        s.vs.append(v)
        self._sample_count += 1
        self._slots += 1
        self.appended_total += 1
        if self._log is not None:
            self._log_sample(s.sid, t, v)
        return True

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
            if s.cold is not None and mint < (ts[s.start] if len(ts) > s.start else _NO_TIME):
                sl = self._read(s, mint, maxt)
                if sl is not None:
                    append(sl)
                continue
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
            if s.cold is not None and mint < (ts[s.start] if len(ts) > s.start else _NO_TIME):
                sl = self._read(s, mint, maxt)
                if sl is not None:
                    out.append(sl)
                continue
            lo = bisect_left(ts, mint, s.start)
            hi = len(ts) if ts and ts[-1] <= maxt else bisect_right(ts, maxt, lo)
            if lo < hi:
                out.append(new(SeriesSlice, (s.labels, ts[lo:hi], s.vs[lo:hi])))
        return out

    @staticmethod
    def _read(s: _Series, mint: int, maxt: int) -> SeriesSlice | None:
        """Return the samples of ``s`` in ``[mint, maxt]`` from its closed chunks and its head."""
        assert s.cold is not None
        out_ts, out_vs = array("q"), array("d")
        s.cold.read(mint, maxt, out_ts, out_vs)
        ts = s.ts
        lo = bisect_left(ts, mint, s.start)
        hi = bisect_right(ts, maxt, lo)
        if lo < hi:
            out_ts += ts[lo:hi]
            out_vs += s.vs[lo:hi]
        return tuple.__new__(SeriesSlice, (s.labels, out_ts, out_vs)) if out_ts else None

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
                found = s.cold.at(t) if s.cold is not None else None
                if found is None:
                    continue
                st, v = found
            else:
                st, v = s.ts[i], s.vs[i]
            if st <= t - lookback_ms:
                continue
            if v != v and is_stale(v):
                continue
            out.append((s.labels, st, v))
        return out

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
    def sample_count(self) -> int:
        """The number of samples held (staleness markers included)."""
        return self._sample_count

    def gc(self, now_ms: int, max_chunks: int | None = GC_MAX_CHUNKS) -> int:
        """Drop each series' samples older than ``now_ms`` minus its retention, and series left
        empty; close chunks of head samples older than ``head_ms``.

        Call it periodically from outside (the daemon does, every minute). Samples with
        ``t >= now_ms - retention_ms`` are kept. Head arrays are compacted only once their
        expired prefix reaches 1/8 of their length, so the cost is amortised; whole closed
        chunks go at once, a partly expired one is trimmed at read. While a checkpoint runs no
        chunk is closed (its copy of the heads must stay whole).

        :param now_ms: the current time, int milliseconds.
        :param max_chunks: close at most this many chunks (``None``: all due); the rest wait for
            the next call.
        :return: the number of samples dropped.
        """
        dropped = 0
        empty: list[_Series] = []
        default = None if self.retention_seconds is None else int(self.retention_seconds * 1000)
        budget = 0 if self._checkpointing else (_NO_TIME if max_chunks is None else max_chunks)
        head_limit = now_ms - self.head_ms
        chunk = self.chunk_samples
        for s in self._by_id.values():
            ts = s.ts
            start = s.start
            if len(ts) == start:  # a series whose samples never came (a replay cut short)
                empty.append(s)
                continue
            keep = s.keep
            if keep == DEFAULT_KEEP:
                keep = -1 if default is None else default
            if keep >= 0:
                cutoff = now_ms - keep
                if s.cold is not None and s.cold.mint[0] < cutoff:
                    dropped += self._expire_chunks(s, s.cold, cutoff)
                if s.cold is None and ts[start] < cutoff:
                    i = bisect_left(ts, cutoff, start)
                    dropped += i - start
                    if i == len(ts):
                        empty.append(s)
                        continue
                    s.start = start = i
                    if i * _COMPACT_DIV >= len(ts):
                        del ts[:i]
                        del s.vs[:i]
                        s.start = start = 0
                        self._slots -= i
            if budget > 0 and len(ts) - start > chunk and ts[start + chunk - 1] < head_limit:
                budget -= self._close_chunks(s, head_limit, budget)
        for s in empty:
            self._drop(s)
        self._sample_count -= dropped
        return dropped

    def _expire_chunks(self, s: _Series, c: Cold, cutoff: int) -> int:
        """Drop the closed chunks of ``s`` older than ``cutoff`` (ms), trim the one it falls in;
        return the samples dropped."""
        k = bisect_left(c.maxt, cutoff)  # chunks [0, k) end before the cutoff
        dropped = sum(c.n[:k])
        if k:
            self._forget_chunks(c, k)
            c.drop_first(k)
        if not len(c):
            s.cold = None
            self._cold_bytes -= COLD_BYTES
        elif c.mint[0] < cutoff:
            cts = decode_timestamps(c.data[0])
            i = bisect_left(cts, cutoff)
            live = len(cts) - i
            dropped += c.n[0] - live
            c.n[0] = live
            c.mint[0] = cts[i]
        return dropped

    def _close_chunks(self, s: _Series, before: int, budget: int) -> int:
        """Move runs of ``chunk_samples`` head samples older than ``before`` (ms) into closed
        chunks, leaving at least one sample in the head; return the chunks closed."""
        ts, vs = s.ts, s.vs
        chunk = self.chunk_samples
        a = s.start
        made = 0
        c = s.cold
        if c is None:
            c = s.cold = Cold()
            self._cold_bytes += COLD_BYTES
        while made < budget and len(ts) - a > chunk and ts[a + chunk - 1] < before:
            b = a + chunk
            data = encode(ts[a:b], vs[a:b])
            c.add(data, ts[a], ts[b - 1], chunk)
            self._cold_bytes += len(data) + CHUNK_OVERHEAD_BYTES
            a = b
            made += 1
        del ts[:a]
        del vs[:a]
        self._slots -= a
        s.start = 0
        return made

    def clear(self) -> None:
        """Drop every series and sample (counters and listeners are kept; logged when durable)."""
        self._by_labels.clear()
        self._by_id.clear()
        self._postings.clear()
        self._rank, self._unranked = None, 0
        self._sample_count = 0
        self._slots = 0
        self._index_bytes = 0
        self._cold_bytes = 0
        for b in self._block_live:
            self._block_live[b] = 0
        self._log_clear()

    @property
    def estimated_memory_bytes(self) -> int:
        """A running estimate of the bytes held, cheap to read (``monitor_tsdb_memory_bytes``).

        Kept as samples and series come and go: 17 bytes per head sample (two 8-byte array
        slots and ~1/16 over-allocation, expired samples not yet compacted away included), the
        encoded bytes of closed chunks plus ~73 bytes a chunk, and per series its object, empty
        arrays, labels tuple, dict entries and postings entries, plus each distinct label name
        and value once with its postings set. Within a few percent of
        :meth:`memory_bytes`, which walks everything (O(series)).
        """
        return self._slots * _SAMPLE_BYTES + self._index_bytes + self._cold_bytes

