"""Rule queries through a store's Prometheus HTTP query API: the vmalert datasource model.

With ``rules.datasource`` set, a rule group's expressions are not evaluated by the local engine
but sent to ``<url>/api/v1/query`` (``POST``, form ``query``/``time``, so long expressions fit:
the Prometheus HTTP API, ``docs/querying/api.md``). Everything else stays: the group's state
machine, ``ALERTS``/``ALERTS_FOR_STATE`` and recording results written to the local store (from
which ``remote_write`` carries them to the store), alerts handed to the same alerting,
escalation and notification path.

The rule state machine is synchronous (:meth:`monitor.rules.group.RuleGroup.eval` calls
``query(expr, t_ms)``); so before each evaluation :meth:`RemoteDatasource.query_fn` runs every
expression of the group at the evaluation time concurrently (at most :data:`MAX_CONCURRENT`
at once) and returns a query function that answers from those results. Consequences, as with
vmalert:

* a recording rule's result reaches the store by remote write, so a later rule reading it
  sees the previous evaluation's value (one interval late), never the same round's;
* a template's ``query "..."`` is learned at its first use (that rendering fails with an error
  in the annotation) and fetched with the group's expressions from then on.

Time: the query time is the evaluation time minus the group's ``query_offset`` minus the
datasource's ``query_offset`` (vmalert ``-rule.evalDelay``: the store's ingestion lag).

Partial responses (``"isPartial": true`` from a VictoriaMetrics cluster missing a storage node):
``abort`` fails the rule's evaluation (its alerts keep their state, the rule's health is ``err``);
``warn`` uses the result and logs a warning. Per group, default ``abort``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from model.labels import METRIC_NAME, Labels
from monitor.errors import RuleError
from monitor.promql.value import Sample, Vector

__all__ = ["RemoteDatasource", "MAX_CONCURRENT", "parse_result"]

log = logging.getLogger(__name__)

#: Queries of one group in flight at once.
MAX_CONCURRENT = 8
#: Response bytes read at most (a rule result larger than this is an error).
MAX_RESPONSE_BYTES = 64 << 20


def _sample(item: Mapping[str, Any], t_ms: int) -> Sample:
    metric = item.get("metric") or {}
    _ts, raw = item["value"]
    return Sample(Labels.of({str(k): str(v) for k, v in metric.items()}), t_ms, float(raw))


def parse_result(doc: Mapping[str, Any], t_ms: int) -> tuple[Vector, bool, list[str]]:
    """Turn a ``/api/v1/query`` response document into a vector.

    :param doc: the decoded JSON (``{"status", "data": {"resultType", "result"}, "isPartial"?,
        "warnings"?}``).
    :param t_ms: the evaluation time, ms (each sample's ``t``).
    :return: ``(vector, partial, warnings)``; a scalar becomes a one-sample vector without labels.
    :raises RuleError: an error status, or a result that is not a vector or scalar.
    """
    if doc.get("status") != "success":
        raise RuleError(f"remote query failed: {doc.get('errorType', 'error')}: {doc.get('error', '')}")
    data = doc.get("data") or {}
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "vector":
        vec = Vector(_sample(item, t_ms) for item in result or [])
    elif kind == "scalar" and isinstance(result, list) and len(result) == 2:
        vec = Vector([Sample(Labels(), t_ms, float(result[1]))])
    else:
        raise RuleError(f"rule result is not a vector or scalar (remote result type {kind})")
    return vec, bool(doc.get("isPartial")), [str(w) for w in doc.get("warnings") or []]


class RemoteDatasource:
    """Evaluate rule expressions through ``<url>/api/v1/query``.

    :param url: the API's base (``http://127.0.0.1:8428``).
    :param client: the HTTP client (owned by the caller).
    :param headers: extra request headers (tenant, authorization).
    :param timeout: seconds per query.
    :param query_offset: seconds every query is shifted back (ingestion lag).
    :param partial_response: ``abort`` or ``warn`` for groups not in ``group_partial_response``.
    :param group_partial_response: per group name.
    :param restore_for_state: whether the rule manager restores ``for`` timers from
        ``ALERTS_FOR_STATE`` (:meth:`alerts_for_state`) when it has no saved state.
    """

    def __init__(self, url: str, client: httpx.AsyncClient, *, headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0, query_offset: float = 0.0, partial_response: str = "abort",
                 group_partial_response: Mapping[str, str] | None = None, restore_for_state: bool = True) -> None:
        self.restore_for_state = restore_for_state
        self.url = url.rstrip("/") + "/api/v1/query"
        self.client = client
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.query_offset = query_offset
        self.partial_response = partial_response
        self.group_partial_response = dict(group_partial_response or {})
        self._learned: dict[tuple[str, str], set[str]] = {}
        #: Queries sent, and those that failed (HTTP, timeout, error status, partial aborted).
        self.queries_total = 0
        self.query_failures_total = 0

    async def query(self, expr: str, t_ms: int, *, partial: str = "abort") -> Vector:
        """Run one instant query at ``t_ms`` (ms).

        :param partial: ``abort`` (a partial result raises) or ``warn``.
        :raises RuleError: the request failed, the store answered an error, or a partial result
            under ``abort``.
        """
        self.queries_total += 1
        try:
            resp = await self.client.post(self.url, data={"query": expr, "time": f"{t_ms / 1000:.3f}"},
                                          headers=self.headers, timeout=self.timeout)
            if len(resp.content) > MAX_RESPONSE_BYTES:
                raise RuleError(f"remote query response over {MAX_RESPONSE_BYTES} bytes")
            try:
                doc = resp.json()
            except ValueError:
                raise RuleError(f"remote query failed: HTTP {resp.status_code}: {resp.text[:200]}") from None
            vec, is_partial, warnings = parse_result(doc, t_ms)
        except httpx.HTTPError as e:
            self.query_failures_total += 1
            raise RuleError(f"remote query failed: {type(e).__name__}: {e}") from None
        except RuleError:
            self.query_failures_total += 1
            raise
        if is_partial:
            if partial == "abort":
                self.query_failures_total += 1
                raise RuleError("remote query returned a partial response (partial_response: abort)")
            log.warning("remote query returned a partial response; used", extra={"expr": expr[:200]})
        for w in warnings:
            log.warning("remote query warning", extra={"expr": expr[:200], "warning": w[:200]})
        return vec

    def partial_policy(self, group: str) -> str:
        """Return ``abort`` or ``warn`` for the group named ``group``."""
        return self.group_partial_response.get(group, self.partial_response)

    async def query_fn(self, group: Any, now: float) -> Callable[[Any, int], Vector]:
        """Fetch every expression ``group`` will query at ``now`` (seconds); return its query function.

        :param group: a :class:`~monitor.rules.group.RuleGroup` (``rules``, ``key``, ``name``,
            ``query_offset``).
        :return: ``query(expr, t_ms) -> Vector`` answering from the fetched results; an
            expression's failure is raised when the rule asks for it (that rule fails alone).
        """
        t_ms = int(round(now * 1000)) - int(round((group.query_offset + self.query_offset) * 1000))
        by_parsed: dict[int, str] = {}
        exprs: set[str] = set()
        for r in group.rules:
            exprs.add(r.expr)
            if r.parsed is not None:
                by_parsed[id(r.parsed)] = r.expr
        learned = self._learned.setdefault(group.key, set())
        exprs |= learned
        policy = self.partial_policy(group.name)
        slots = asyncio.Semaphore(MAX_CONCURRENT)

        async def one(e: str) -> Vector | RuleError:
            async with slots:
                try:
                    return await self.query(e, t_ms, partial=policy)
                except RuleError as err:
                    return err

        order = sorted(exprs)
        results = dict(zip(order, await asyncio.gather(*(one(e) for e in order))))

        def query(expr: Any, _t_ms: int) -> Vector:
            key = expr if isinstance(expr, str) else by_parsed.get(id(expr), str(expr))
            got = results.get(key)
            if got is None:
                learned.add(key)
                raise RuleError("query not fetched yet from the remote datasource (fetched from the next evaluation)")
            if isinstance(got, RuleError):
                raise got
            return got

        return query

    async def alerts_for_state(self, t_ms: int, drop_labels: Iterable[str] = ()) -> list[tuple[Labels, float]]:
        """Return the ``ALERTS_FOR_STATE`` series the store holds at ``t_ms``: per alert, its labels
        (``__name__`` and ``drop_labels`` — the external labels remote write added — removed) and
        its ``active_at`` (Unix seconds, the sample's value).

        :raises RuleError: the query failed.
        """
        drop = {METRIC_NAME, *drop_labels}
        vec = await self.query("ALERTS_FOR_STATE", t_ms, partial="warn")
        return [(Labels.of({k: v for k, v in s.labels if k not in drop}), float(s.v)) for s in vec]
