"""``info(v [, {data-label selector}])``: add the data labels of info series to the series of ``v``.

Semantics of Prometheus 3.5 ``promql/info.go`` (``evalInfo``, experimental, behind
``promql-experimental-functions``):

* The info series are those of ``target_info`` unless the selector names others with
  ``__name__`` matchers; they are joined to a series of ``v`` on the identifying labels
  ``instance`` and ``job`` (those the series has), per info metric name.
* The selector's other matchers pick the info series (``{k8s_cluster_name=~".+"}``) and limit
  the labels added to the ones they name; without a selector every label of the info series
  is added. A label the series already has is kept as it is; two info series adding different
  values of one label are an error (``conflicting label``).
* A series without a matching info series is kept unchanged, unless a data-label matcher does
  not match the empty string: then it is dropped.
* Series of ``v`` that are themselves info series (their name matches the name matchers; by
  default ``target_info``) pass through unchanged.
* Info samples are found as an instant selector finds them (lookback, staleness); of two info
  series with one join key, the newer sample wins, equal timestamps are an error.

:class:`InfoPlan` is worked out from ``v`` and the selector, the evaluator selects the info
series it asks for, and :func:`combine` joins them.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.errors import QueryError
from monitor.promql.value import Sample, check_duplicates
from model.labels import METRIC_NAME, Labels
from model.matchers import Matcher

#: The default info metric (``targetInfo``).
TARGET_INFO = "target_info"
#: The labels an info series is joined on (``identifyingLabels``, hard-coded in Prometheus).
IDENTIFYING_LABELS = ("instance", "job")


class InfoPlan(NamedTuple):
    """What :func:`plan` decided for one evaluation of ``info``.

    :param ignored: per input sample, whether it is an info series itself (passed through).
    :param select: matchers of the info series to fetch, or ``None`` when no input series has an
        identifying label (nothing to join).
    :param wanted: per identifying label, the values the input series have (info series with
        other values are not needed).
    :param data: the selector's matchers by label name, ``__name__`` left out.
    """

    ignored: list[bool]
    select: list[Matcher] | None
    wanted: dict[str, set[str]]
    data: dict[str, list[Matcher]]


def plan(base: list[Sample], selector: list[Matcher] | None) -> InfoPlan:
    """Work out which info series ``info(base, selector)`` needs (``evalInfo``/``fetchInfoSeries``).

    :param base: the evaluated first argument.
    :param selector: the second argument's matchers, ``None`` when there is none.
    """
    data: dict[str, list[Matcher]] = {}
    if selector is None:
        name_matchers = [Matcher(METRIC_NAME, "=", TARGET_INFO)]
    else:
        for m in selector:
            data.setdefault(m.name, []).append(m)
        name_matchers = [m for m in selector if m.name == METRIC_NAME]
    ignored = [bool(name_matchers) and all(m.matches(s.labels.get(METRIC_NAME)) for m in name_matchers)
               for s in base]
    wanted: dict[str, set[str]] = {}
    for s, skip in zip(base, ignored):
        if skip:
            continue
        for name in IDENTIFYING_LABELS:
            v = s.labels.get(name)
            if v:
                wanted.setdefault(name, set()).add(v)
    select: list[Matcher] | None = None
    if wanted:
        select = [m for ms in data.values() for m in ms]
        if METRIC_NAME not in data:
            select.insert(0, Matcher(METRIC_NAME, "=", TARGET_INFO))
    data.pop(METRIC_NAME, None)
    return InfoPlan(ignored, select, wanted, data)


def _key(name: str, lb: Labels) -> tuple:
    return (name, *((k, lb.get(k)) for k in IDENTIFYING_LABELS if lb.get(k)))


def combine(base: list[Sample], info: list[tuple[Labels, int]], p: InfoPlan, t: int) -> list[Sample]:
    """Join ``base`` with the info series at ``t`` (``combineWithInfoVector``).

    :param info: the info series selected by ``p.select`` that have a sample at ``t``, with that
        sample's own timestamp (ms).
    :raises QueryError: two info series with one join key and one timestamp
        (``found duplicate series for info metric``), two info series setting one label to
        different values (``conflicting label``), or two results with one label set.
    """
    by_key: dict[tuple, tuple[Labels, int]] = {}
    for lb, ts in info:
        if any(lb.get(k) not in vals for k, vals in p.wanted.items()):
            continue  # Prometheus selects these away with a regex of the wanted values
        k = _key(lb.get(METRIC_NAME), lb)
        old = by_key.get(k)
        if old is not None and old[1] == ts:
            raise QueryError(f"found duplicate series for info metric: existing {old[0]} @ {old[1]}, "
                             f"new {lb} @ {ts}")
        if old is None or old[1] < ts:
            by_key[k] = (lb, ts)
    names = sorted({k[0] for k in by_key})
    data = p.data
    drop_unmatched = any(not m.matches("") for ms in data.values() for m in ms)
    out: list[Sample] = []
    for s, skip in zip(base, p.ignored):
        if skip:
            out.append(Sample(s.labels, t, s.v))
            continue
        have = dict(s.labels)
        added: dict[str, str] = {}
        seen = False
        for name in names:
            hit = by_key.get(_key(name, s.labels))
            if hit is None:
                continue
            seen = True
            for k, v in hit[0]:
                if k == METRIC_NAME or (data and k not in data):
                    continue
                if added.get(k, v) != v:
                    raise QueryError(f"conflicting label: {k}")
                if k not in have:
                    added[k] = v
        if not seen and drop_unmatched:
            continue
        out.append(Sample(Labels.of({**have, **added}) if added else s.labels, t, s.v))
    check_duplicates(out)
    return out
