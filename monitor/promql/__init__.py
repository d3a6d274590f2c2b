"""PromQL evaluation over the in-memory sample store.

Public API::

    from monitor.promql import Engine, parse_expr, selected_metric_names
    engine = Engine(store)                      # lookback 5 m, max_series 10,000
    engine.instant_query("up == 0", t_ms)       # Vector | Scalar | String | Matrix
    engine.range_query("rate(x[5m])", start_ms, end_ms, step_ms)   # Matrix

Errors are :class:`monitor.errors.QueryError` with a readable message.
"""

from monitor.promql.engine import Engine
from monitor.promql.nodes import parse_expr, selected_metric_names
from monitor.promql.value import Matrix, Sample, Scalar, Series, String, Vector

__all__ = ["Engine", "Matrix", "Sample", "Scalar", "Series", "String", "Vector", "parse_expr",
           "selected_metric_names"]
