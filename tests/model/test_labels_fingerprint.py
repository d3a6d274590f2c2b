"""``Labels.fingerprint``: the value never changes, and it is computed once per distinct label set
(issue 9: re-hashing every access was ~7 % of the CPU of a 5,000-alert intake)."""

from __future__ import annotations

import hashlib

from model import labels as labels_module
from model.labels import Labels


def _blake2b(lbl: Labels) -> str:
    h = hashlib.blake2b(digest_size=8)
    for k, v in lbl:
        h.update(k.encode() + b"\xff" + v.encode() + b"\xff")
    return h.hexdigest()


def test_fingerprint_is_the_blake2b_of_the_sorted_pairs():
    lbl = Labels.of({"severity": "critical", "alertname": "ApiDown", "instance": "é"})
    assert lbl.fingerprint() == _blake2b(lbl)
    # keys durable state: never changes
    assert Labels.of({"alertname": "ApiDown", "severity": "critical"}).fingerprint() == "584bbe2c88c80859"
    assert Labels.of({"b": "1", "a": "2"}).fingerprint() == Labels.of({"a": "2", "b": "1"}).fingerprint()
    assert Labels.of({"a": "1"}).fingerprint() != Labels.of({"a": "2"}).fingerprint()


def test_an_equal_label_set_built_again_is_not_hashed_again():
    cache = labels_module._fingerprint
    made = [Labels.of({"alertname": "Storm", "instance": f"host-{i}", "n": "fp-cache"}) for i in range(100)]
    first = [lbl.fingerprint() for lbl in made]
    before = cache.cache_info()
    again = [Labels.of({"n": "fp-cache", "instance": f"host-{i}", "alertname": "Storm"}) for i in range(100)]
    assert [lbl.fingerprint() for lbl in again] == first
    for lbl in made:
        lbl.fingerprint()
    after = cache.cache_info()
    assert after.hits - before.hits == 200
    assert after.misses == before.misses


def test_the_cache_is_bounded():
    assert labels_module._fingerprint.cache_info().maxsize == labels_module.FINGERPRINT_CACHE_SIZE


def test_an_alert_keeps_its_fingerprint_and_its_copies_get_the_new_one():
    from model.alert import Alert

    a = Alert.firing({"alertname": "ApiDown", "severity": "critical"}, starts_at=0)
    before = labels_module._fingerprint.cache_info()
    assert {a.fingerprint for _ in range(100)} == {"584bbe2c88c80859"}
    after = labels_module._fingerprint.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)  # read from the alert, no lookup
    marked = a.with_marks(silenced_by=("s1",))
    assert marked.fingerprint == a.fingerprint and marked == a.with_marks(silenced_by=("s1",))
    assert "_fingerprint" not in repr(a)
