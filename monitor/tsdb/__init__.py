"""monitor.tsdb: the in-memory sample store that probes and scrapes write and PromQL reads.

Timestamps are int milliseconds since the Unix epoch; values are float64. See
:mod:`monitor.tsdb.series` (identity, matchers, staleness) and :mod:`monitor.tsdb.store`.
"""

from .series import METRIC_NAME, STALE_NAN, Labels, Matcher, is_stale, nan_equal
from .store import Listener, SampleStore, SeriesSlice

__all__ = [
    "METRIC_NAME",
    "STALE_NAN",
    "Labels",
    "Listener",
    "Matcher",
    "SampleStore",
    "SeriesSlice",
    "is_stale",
    "nan_equal",
]
