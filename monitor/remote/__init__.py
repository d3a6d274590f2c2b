"""Beyond one machine: samples out by Prometheus remote write, rules over a remote store's query API.

:mod:`~monitor.remote.protocol` (the wire format), :mod:`~monitor.remote.queue` (the on-disk
queue), :mod:`~monitor.remote.write` (the sender and its metrics),
:mod:`~monitor.remote.datasource` (rule queries through ``/api/v1/query``). Fed by the sample
store's tee (:meth:`monitor.tsdb.store.SampleStore.set_tee`); wired by ``monitor/daemon``.
"""
