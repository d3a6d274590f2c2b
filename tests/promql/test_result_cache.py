"""The result cache's name index agrees with a plain scan (``ResultCache.invalidate``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.promql.cache import ResultCache

NAMES = ["up", "a", "b", "c"]
keys = st.tuples(st.sampled_from(["q1", "q2", "q3", "q4", "q5"]), st.integers(0, 2))
name_sets = st.one_of(st.none(), st.frozensets(st.sampled_from(NAMES), max_size=3))
ops = st.lists(st.one_of(
    st.tuples(st.just("put"), keys, name_sets, st.integers(0, 4)),
    st.tuples(st.just("invalidate"), st.sets(st.sampled_from(NAMES), min_size=1, max_size=4)),
), max_size=60)


class Scan:
    """What the cache held before the index: one dict, scanned on every invalidation."""

    def __init__(self, limit: int) -> None:
        self.limit, self.entries = limit, {}

    def put(self, key, names, result) -> None:
        if len(result) > self.limit:
            return
        self.entries.pop(key, None)
        self.entries[key] = (names, result)
        while sum(len(r) for _, r in self.entries.values()) > self.limit:
            self.entries.pop(next(iter(self.entries)))

    def invalidate(self, names) -> None:
        for k in [k for k, (used, _) in self.entries.items() if used is None or not used.isdisjoint(names)]:
            del self.entries[k]


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 8))
def test_index_agrees_with_a_scan(sequence, limit):
    cache, model = ResultCache(limit), Scan(limit)
    for op in sequence:
        if op[0] == "put":
            _, key, names, n = op
            result = [object()] * n
            cache.put(key, names, result)
            model.put(key, names, result)
        else:
            cache.invalidate(op[1])
            model.invalidate(op[1])
        assert len(cache) == len(model.entries)
        assert cache.samples == sum(len(r) for _, r in model.entries.values())
        for key in model.entries:
            assert cache.get(key) is model.entries[key][1]
    cache.clear()
    assert len(cache) == 0 and cache.samples == 0
