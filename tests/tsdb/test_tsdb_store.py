"""SampleStore semantics: appends, rejections, the series cap, matcher selection, retention."""

from __future__ import annotations

import math

import pytest

from monitor.tsdb import STALE_NAN, SampleStore, is_stale
from model.labels import Labels
from model.matchers import Matcher


def L(name: str, **labels: str) -> Labels:  # noqa: N802 (reads like Labels in the tables below)
    return Labels.of(labels, __name__=name)


@pytest.fixture
def store() -> SampleStore:
    return SampleStore()


# ---------------------------------------------------------------- appends


def test_append_in_order_and_select_returns_arrays(store):
    up = L("up", job="api")
    assert store.append(up, 1000, 1)
    assert store.append(up, 2000, 0)
    [sl] = store.select([Matcher("__name__", "=", "up")], 0, 10_000)
    assert sl.labels == up
    assert list(sl.timestamps) == [1000, 2000]
    assert list(sl.values) == [1.0, 0.0]
    assert store.series_count == 1 and store.sample_count == 2


def test_out_of_order_rejected_and_counted(store):
    s = L("x")
    assert store.append(s, 2000, 1)
    assert not store.append(s, 1000, 2)
    assert store.out_of_order_total == 1
    assert store.sample_count == 1


def test_duplicate_timestamp_same_value_is_noop_different_value_rejected(store):
    s = L("x")
    assert store.append(s, 1000, 1.5)
    assert store.append(s, 1000, 1.5)
    assert store.sample_count == 1
    assert store.out_of_order_total == 0
    assert not store.append(s, 1000, 2.5)
    assert store.out_of_order_total == 1
    # NaN at the same timestamp as NaN is the same value; a staleness marker is not.
    assert store.append(s, 2000, math.nan)
    assert store.append(s, 2000, math.nan)
    assert not store.append(s, 2000, STALE_NAN)


def test_appends_are_independent_per_series(store):
    assert store.append(L("x", a="1"), 2000, 1)
    assert store.append(L("x", a="2"), 1000, 1)
    assert store.series_count == 2


def test_max_series_cap_rejects_new_series_and_counts(store):
    small = SampleStore(max_series=2)
    assert small.append(L("a"), 1, 1)
    assert small.append(L("b"), 1, 1)
    assert not small.append(L("c"), 1, 1)
    assert not small.append(L("c"), 2, 1)
    assert small.rejected_series_total == 2
    # existing series still accept samples
    assert small.append(L("a"), 2, 1)
    assert small.series_count == 2


def test_append_batch_counts_accepted_and_notifies_once(store):
    calls: list[set[str]] = []
    store.add_listener(calls.append)
    n = store.append_batch([
        (L("up", job="a"), 1000, 1),
        (L("up", job="b"), 1000, 1),
        (L("rps", job="a"), 1000, 3),
        (L("rps", job="a"), 500, 3),  # out of order
    ])
    assert n == 3
    assert calls == [{"up", "rps"}]
    store.append(L("cpu"), 1000, 1)
    assert calls[-1] == {"cpu"}
    assert len(calls) == 2


def test_listener_not_called_without_new_samples_and_failures_isolated(store):
    calls: list[set[str]] = []

    def broken(names):
        raise RuntimeError("boom")

    store.add_listener(broken)
    store.add_listener(calls.append)
    store.append(L("x"), 1000, 1)
    store.append(L("x"), 1000, 1)  # identical duplicate: nothing new
    store.append(L("x"), 500, 1)  # rejected
    assert calls == [{"x"}]
    store.remove_listener(calls.append)
    store.append(L("x"), 2000, 1)
    assert calls == [{"x"}]


# ---------------------------------------------------------------- staleness


def test_mark_stale_appends_marker_to_existing_series_only(store):
    s = L("up", job="api")
    assert not store.mark_stale(s, 1000)  # no such series: no series is created
    assert store.series_count == 0
    store.append(s, 1000, 1)
    assert store.mark_stale(s, 2000)
    assert store.mark_stale(s, 3000)  # already stale: no second marker
    [sl] = store.select([], 0, 10_000)
    assert list(sl.timestamps) == [1000, 2000]
    assert is_stale(sl.values[1])
    assert store.instant([], 2500) == []
    assert store.append(s, 4000, 1)
    assert store.instant([], 4000) == [(s, 4000, 1.0)]


def test_stale_marker_in_batch_does_not_create_series(store):
    assert store.append_batch([(L("gone"), 1000, STALE_NAN)]) == 0
    assert store.series_count == 0


def test_instant_lookback_is_left_open(store):
    s = L("x")
    store.append(s, 0, 1)
    store.append(s, 60_000, 2)
    assert store.instant([], 60_000) == [(s, 60_000, 2.0)]
    assert store.instant([], 59_999) == [(s, 0, 1.0)]
    assert store.instant([], 299_999) == [(s, 60_000, 2.0)]
    assert store.instant([], 360_000) == []  # (t - 5m, t] excludes 60_000
    assert store.instant([], 359_999) == [(s, 60_000, 2.0)]
    assert store.instant([], 10_000, lookback_ms=5_000) == []


# ---------------------------------------------------------------- selection


@pytest.fixture
def populated() -> SampleStore:
    st = SampleStore()
    for job in ("api", "db", "worker"):
        for code in ("200", "500"):
            lbl = L("http_requests_total", job=job, code=code)
            for i in range(10):
                st.append(lbl, i * 15_000, float(i))
    st.append(L("up", job="api"), 0, 1)
    st.append(L("up"), 0, 1)  # no job label
    return st


def jobs_codes(slices):
    return [(s.labels.name, s.labels.get("job"), s.labels.get("code")) for s in slices]


@pytest.mark.parametrize("matchers,expected", [
    ([Matcher("job", "=", "api")],
     [("http_requests_total", "api", "200"), ("http_requests_total", "api", "500"), ("up", "api", "")]),
    ([Matcher("__name__", "=", "http_requests_total"), Matcher("code", "!=", "200")],
     [("http_requests_total", j, "500") for j in ("api", "db", "worker")]),
    ([Matcher("__name__", "=", "http_requests_total"), Matcher("job", "=~", "d.|w.*")],
     [("http_requests_total", "db", "200"), ("http_requests_total", "db", "500"),
      ("http_requests_total", "worker", "200"), ("http_requests_total", "worker", "500")]),
    ([Matcher("job", "=~", "api|db"), Matcher("code", "=", "500")],
     [("http_requests_total", "api", "500"), ("http_requests_total", "db", "500")]),
    ([Matcher("__name__", "=~", "http_.*"), Matcher("job", "!~", "api|db")],
     [("http_requests_total", "worker", "200"), ("http_requests_total", "worker", "500")]),
    # A missing label has the value "": job="" selects the series without job,
    # job!="api" includes it, job=~".+" excludes it.
    ([Matcher("job", "=", "")], [("up", "", "")]),
    ([Matcher("__name__", "=", "up"), Matcher("job", "!=", "api")], [("up", "", "")]),
    ([Matcher("__name__", "=", "up"), Matcher("job", "=~", ".+")], [("up", "api", "")]),
    ([Matcher("__name__", "=", "up"), Matcher("job", "=~", "")], [("up", "", "")]),
    # Regexes are fully anchored.
    ([Matcher("job", "=~", "ap")], []),
    ([Matcher("job", "=", "nope")], []),
    ([Matcher("nolabel", "=~", "x.*")], []),
])
def test_select_by_each_matcher_op(populated, matchers, expected):
    slices = populated.select(matchers, 0, 1_000_000)
    assert sorted(jobs_codes(slices)) == sorted(expected)
    assert [s.labels for s in slices] == sorted(s.labels for s in slices)
    series = populated.series(matchers)
    assert series == [s.labels for s in slices]


def test_select_range_bounds_are_inclusive(populated):
    m = [Matcher("job", "=", "db"), Matcher("code", "=", "200")]
    [sl] = populated.select(m, 15_000, 45_000)
    assert list(sl.timestamps) == [15_000, 30_000, 45_000]
    assert list(sl.values) == [1.0, 2.0, 3.0]
    [sl] = populated.select(m, 15_001, 44_999)
    assert list(sl.timestamps) == [30_000]
    assert populated.select(m, 15_001, 29_999) == []  # no samples in range: omitted
    assert populated.select(m, 200_000, 300_000) == []


def test_select_slices_are_copies_safe_while_appending(populated):
    m = [Matcher("job", "=", "db"), Matcher("code", "=", "200")]
    [sl] = populated.select(m, 0, 1_000_000)
    populated.append(sl.labels, 1_000_000, 42)
    assert len(sl.timestamps) == 10


def test_label_names_and_values(populated):
    assert populated.label_names() == ["__name__", "code", "job"]
    assert populated.label_values("job") == ["api", "db", "worker"]
    assert populated.label_values("__name__") == ["http_requests_total", "up"]
    assert populated.label_values("missing") == []
    assert populated.label_values("job", [Matcher("code", "=", "500")]) == ["api", "db", "worker"]
    assert populated.label_names([Matcher("__name__", "=", "up")]) == ["__name__", "job"]


# ---------------------------------------------------------------- retention


def test_gc_drops_old_samples_and_empty_series():
    st = SampleStore(retention_seconds=60)
    old, live = L("old"), L("live")
    st.append(old, 0, 1)
    for t in range(0, 120_001, 15_000):
        st.append(live, t, t)
    assert st.gc(120_000) == 1 + 4  # keeps t >= 60_000
    assert st.series(()) == [live]
    assert st.label_values("__name__") == ["live"]
    [sl] = st.select([], 0, 200_000)
    assert list(sl.timestamps) == [60_000, 75_000, 90_000, 105_000, 120_000]
    assert st.sample_count == 5
    # appends after gc still enforce order against the live samples
    assert not st.append(live, 100_000, 1)
    assert st.append(live, 135_000, 1)
    assert st.gc(10_000_000) == 6
    assert st.series_count == 0 and st.sample_count == 0
    assert st.label_names() == []


def test_gc_amortised_compaction_keeps_results_right():
    st = SampleStore(retention_seconds=3600)
    s = L("x")
    for i in range(1000):
        st.append(s, i * 1000, i)
    for now in range(3_600_000, 3_600_000 + 900_000, 10_000):
        st.gc(now)
        cutoff = now - 3_600_000
        [sl] = st.select([], 0, 10**9)
        assert sl.timestamps[0] == max(cutoff, 0) + (-max(cutoff, 0)) % 1000
        assert st.sample_count == len(sl.timestamps)
        assert st.instant([], 999_000) == [(s, 999_000, 999.0)]


def test_gc_without_retention_keeps_everything():
    st = SampleStore(retention_seconds=None)
    st.append(L("x"), 0, 1)
    assert st.gc(10**12) == 0
    assert st.sample_count == 1


def test_clear_and_memory_bytes(populated):
    assert populated.memory_bytes() > 60 * 16
    populated.clear()
    assert populated.series_count == 0 and populated.sample_count == 0
    assert populated.select([], 0, 10**9) == []
    assert populated.append(L("up", job="api"), 0, 1)  # a cleared store accepts old timestamps


def test_append_batch_accepts_float_timestamps_and_keeps_arrays_aligned(store):
    s = L("x")
    assert store.append_batch([(s, 1000, 1), (s, 2000.0, 2), (s, 3000, 3)]) == 3
    with pytest.raises((TypeError, ValueError)):
        store.append_batch([(s, 4000, 4.0), (s, 5000, "not a number")])
    [sl] = store.select([], 0, 10_000)
    assert list(sl.timestamps) == [1000, 2000, 3000, 4000]
    assert list(sl.values) == [1.0, 2.0, 3.0, 4.0]
    assert store.sample_count == 4


def test_select_instant_series_stay_label_sorted_as_series_come_and_go():
    """select/instant/series return label order (the store sorts by a cached rank that is
    rebuilt when series are created or dropped)."""
    store = SampleStore(retention_seconds=60)
    names = ["m", "a", "z", "k"]
    for i in range(40):
        store.append(L(names[i % 4], i=str(i % 10), j=str(i)), 1000 + i, float(i))
    everything = [Matcher("__name__", "=~", ".+")]

    def check() -> None:
        few = store.select([Matcher("j", "=~", "1|3|2")], 0, 10**9)  # while the rank is stale
        assert [sl.labels for sl in few] == sorted(sl.labels for sl in few)
        got = [sl.labels for sl in store.select(everything, 0, 10**9)]  # rebuilds the rank
        assert got == sorted(got) == store.series()
        assert got == [x[0] for x in store.instant(everything, 10**6, lookback_ms=10**7)]
        few = store.select([Matcher("j", "=~", "1|3|2")], 0, 10**9)
        assert [sl.labels for sl in few] == sorted(sl.labels for sl in few)

    check()
    store.append(L("b", i="x"), 2000, 1.0)  # a new series invalidates the rank
    check()
    assert store.gc(61_020) > 0  # drops the series whose samples are all older than 1020 ms
    check()
    store.append(L("0first"), 62_000, 1.0)
    check()
    assert [sl.labels for sl in store.select(everything, 0, 10**9)][0] == L("0first")
