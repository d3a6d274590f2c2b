"""The JSON of a query result in Prometheus's HTTP API (``web/api/v1/api.go``): the ``data``
object (``resultType`` + ``result``), values as ``[<unix seconds>, "<value>"]`` with the value
formatted as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``.

Here rather than in :mod:`monitor.api.query` so a query worker process
(:mod:`monitor.promql.worker`) renders results without importing the HTTP API (30 MB of it).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from monitor.promql.value import Matrix, Scalar, Series, String, Vector
from model.labels import Labels

__all__ = ["STREAM_SAMPLES", "format_sample_value", "result_chunks", "result_json"]

#: Samples of a vector per chunk of a streamed result (a matrix goes a series per chunk).
STREAM_SAMPLES = 512


def format_sample_value(v: float) -> str:
    """Format a value as Prometheus's API does (``strconv.FormatFloat(v, 'f', -1, 64)``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return format(Decimal(repr(v)), "f")


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def result_json(value: Any) -> dict[str, Any]:
    """Encode a PromQL result as Prometheus's ``data`` object (``resultType`` + ``result``)."""
    if isinstance(value, Vector):
        return {"resultType": "vector", "result": [
            {"metric": _metric(s.labels), "value": [s.t / 1000, format_sample_value(s.v)]} for s in value]}
    if isinstance(value, Matrix):
        return {"resultType": "matrix", "result": [
            {"metric": _metric(s.labels), "values": [[t / 1000, format_sample_value(v)] for t, v in s.points]}
            for s in value]}
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [value.t / 1000, format_sample_value(value.v)]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [value.t / 1000, value.v]}
    raise TypeError(f"unexpected result {type(value).__name__}")


def _dumps(obj: Any) -> str:
    # Starlette's JSONResponse.render settings.
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def result_chunks(value: Any) -> list[bytes]:
    """Encode the success envelope of a query result in pieces, consuming ``value``.

    The same JSON as ``{"status": "success", "data": result_json(value)}``, encoded a series
    (matrix) or :data:`STREAM_SAMPLES` samples (vector) at a time, each piece freed once encoded.
    The query pool runs this in its worker (``render=``): a result of millions of points
    encoded or freed in one C call would hold the GIL, and so the event loop, for seconds, and
    the bytes it returns are nothing the garbage collector has to walk.
    """
    if not isinstance(value, (Vector, Matrix)):
        return [('{"status":"success","data":' + _dumps(result_json(value)) + "}").encode("utf-8")]
    kind = "vector" if isinstance(value, Vector) else "matrix"
    out = [('{"status":"success","data":{"resultType":"' + kind + '","result":[').encode("utf-8")]
    value.reverse()  # pop() from the end, in order
    per_chunk = STREAM_SAMPLES if kind == "vector" else 1
    sep = ""
    while value:
        items = [value.pop() for _ in range(min(per_chunk, len(value)))]
        out.append((sep + ",".join(_dumps(_item_json(item)) for item in items)).encode("utf-8"))
        sep = ","
        del items
    out.append(b"]}}")
    return out


def _item_json(item: Any) -> dict[str, Any]:
    if isinstance(item, Series):
        return {"metric": _metric(item.labels),
                "values": [[t / 1000, format_sample_value(v)] for t, v in item.points]}
    return {"metric": _metric(item.labels), "value": [item.t / 1000, format_sample_value(item.v)]}
