"""monitor.tsdb: the in-memory sample store that probes and scrapes write and PromQL reads.

Timestamps are int milliseconds since the Unix epoch; values are float64. Series are
identified by :class:`model.labels.Labels`; see :mod:`monitor.tsdb.series` (staleness) and
:mod:`monitor.tsdb.store`.
"""

from .series import STALE_NAN, is_stale, nan_equal
from .store import Listener, SampleStore, SeriesSlice

__all__ = ["STALE_NAN", "Listener", "SampleStore", "SeriesSlice", "is_stale", "nan_equal"]
