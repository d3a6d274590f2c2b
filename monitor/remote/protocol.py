"""The Prometheus remote-write 1.0 wire format: a protobuf ``WriteRequest``, snappy block-compressed.

Source of the semantics: the Prometheus "Remote-Write 1.0" specification
(``prometheus.io/docs/specs/remote_write_spec/``) and ``prompb/remote.proto`` /
``prompb/types.proto``. The messages used here, as ``.proto``::

    syntax = "proto3";
    package prometheus;
    message WriteRequest { repeated TimeSeries timeseries = 1; }   // field 3 (metadata) unused
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: ms since the epoch

The message classes are built at import from a descriptor written in code (no generated
``_pb2`` module, no ``protoc`` at build time) with the ``protobuf`` package; the body is
compressed with snappy's *block* format (not the framed one) by ``cramjam``.

The spec's rules this module keeps: label names sorted, ``__name__`` included, no empty label
values (:class:`~model.labels.Labels` holds them so); the samples of one series in timestamp
order (the store's append order is); the staleness marker is sent as its own NaN bit pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from model.labels import Labels

__all__ = ["HEADERS", "WriteRequest", "encode", "decode", "compress", "decompress"]

#: The headers every request carries (the spec's "MUST"s; the User-Agent is added by the sender).
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def _message(file: Any, name: str, fields: Sequence[tuple[str, int, int, int, str]]) -> None:
    msg = file.message_type.add()
    msg.name = name
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add()
        f.name, f.number, f.type, f.label = fname, number, ftype, label
        if type_name:
            f.type_name = type_name


def _build() -> tuple[Any, Any]:
    fd = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="codebook_monitor/prompb.proto", package="prometheus",
                                              syntax="proto3")
    rep, opt = fd.LABEL_REPEATED, fd.LABEL_OPTIONAL
    _message(file, "Label", [("name", 1, fd.TYPE_STRING, opt, ""), ("value", 2, fd.TYPE_STRING, opt, "")])
    _message(file, "Sample", [("value", 1, fd.TYPE_DOUBLE, opt, ""), ("timestamp", 2, fd.TYPE_INT64, opt, "")])
    _message(file, "TimeSeries", [("labels", 1, fd.TYPE_MESSAGE, rep, ".prometheus.Label"),
                                  ("samples", 2, fd.TYPE_MESSAGE, rep, ".prometheus.Sample")])
    _message(file, "WriteRequest", [("timeseries", 1, fd.TYPE_MESSAGE, rep, ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    write_request = message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))
    return write_request, pool


#: The ``prometheus.WriteRequest`` message class.
WriteRequest, _POOL = _build()


def encode(series: Iterable[tuple[Labels, Sequence[int], Sequence[float]]]) -> bytes:
    """Serialize series as a ``WriteRequest`` (uncompressed protobuf bytes).

    :param series: ``(labels, timestamps_ms, values)`` per series; the samples of a series in
        timestamp order, each series once.
    :return: the protobuf encoding.
    """
    req = WriteRequest()
    add = req.timeseries.add
    for labels, ts, vs in series:
        s = add()
        s.labels.extend(_label_msgs(labels))
        samples = s.samples
        for t, v in zip(ts, vs):
            samples.add(value=v, timestamp=t)
    return bytes(req.SerializeToString())


_LABEL = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("prometheus.Label"))
#: Label messages by label set: a series is sent every few seconds, its labels built once.
_LABEL_CACHE: dict[Labels, list[Any]] = {}
#: Label sets cached at most (the cache is emptied when full: series churn cannot grow it).
LABEL_CACHE_SIZE = 200_000


def _label_msgs(labels: Labels) -> list[Any]:
    msgs = _LABEL_CACHE.get(labels)
    if msgs is None:
        if len(_LABEL_CACHE) >= LABEL_CACHE_SIZE:
            _LABEL_CACHE.clear()
        msgs = _LABEL_CACHE[labels] = [_LABEL(name=k, value=v) for k, v in labels]
    return msgs


def decode(body: bytes) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    """Parse an uncompressed ``WriteRequest`` (tests, the benchmark's receiver).

    :return: per series, its labels and its ``(timestamp_ms, value)`` samples.
    """
    req = WriteRequest()
    req.ParseFromString(body)
    return [({lb.name: lb.value for lb in s.labels}, [(int(x.timestamp), float(x.value)) for x in s.samples])
            for s in req.timeseries]


def compress(data: bytes) -> bytes:
    """Compress with snappy's block format (the spec's ``Content-Encoding: snappy``)."""
    return bytes(cramjam.snappy.compress_raw(data))


def decompress(data: bytes) -> bytes:
    """Undo :func:`compress`.

    :raises cramjam.DecompressionError: ``data`` is not a snappy block.
    """
    return bytes(cramjam.snappy.decompress_raw(data))
