"""The alerts the pipeline holds, written to the state store before anything acts on them.

After Alertmanager ``provider/mem`` (the alert store the dispatcher reads), made durable as
DESIGN.md asks ("every alert transition ... is written to the state store before it takes
effect"): :meth:`AlertProvider.persist` upserts the alert row first, and only a changed version
is written again (status, times, annotations, generator URL). This module is the store-row edge
of the alert model, in (:meth:`AlertProvider.restore`) and out (:func:`alert_row`):

``{"fingerprint", "labels", "annotations", "state": "firing" | "resolved", "starts_at",
"ends_at" (Unix seconds | None), "generator_url", "source"}``

``source`` is the identity of whoever raised the alert (:func:`source_identity`): ``rules``,
``token:<name>`` (an intake token) or ``client:<address>`` (open intake). It is kept while the
alert fires, so the pipeline can refuse a resolve from another intake source.

Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from model.alert import Alert

__all__ = ["AlertProvider", "alert_row", "alert_from_row", "source_identity"]


def source_identity(source: str) -> str:
    """Return who an ingest ``source`` is: the token name, else the client address.

    ``api:prometheus@10.0.0.5`` and ``webhook:prometheus@10.0.0.6`` -> ``token:prometheus``;
    ``api:10.0.0.5`` (open intake, no token) -> ``client:10.0.0.5``; ``rules`` -> ``rules``.
    """
    kind, sep, rest = source.partition(":")
    if not sep:
        return source
    if "@" in rest:
        return "token:" + rest.rsplit("@", 1)[0]
    return "client:" + rest if kind in ("api", "webhook") else source


def alert_row(a: Alert, now: float, source: str = "") -> dict[str, Any]:
    """Return the state-store row of ``a`` at ``now`` (``source``: who raised it)."""
    return {"fingerprint": a.fingerprint, "labels": a.labels.as_dict(), "annotations": dict(a.annotations),
            "state": a.status(now), "starts_at": a.starts_at, "ends_at": a.ends_at,
            "generator_url": a.generator_url, "source": source}


def alert_from_row(row: Mapping[str, Any]) -> Alert:
    """Return the alert of a state-store row."""
    return Alert(row["labels"], row.get("annotations") or {}, row["starts_at"], row.get("ends_at"),
                 row.get("generator_url") or "")


class AlertProvider:
    """The latest version of every alert, by fingerprint, and what the store holds of each.

    :param store: the state store (``upsert_alert``, ``list_alerts``).

    Example::

        provider = AlertProvider(store)
        await provider.restore(now)          # after a restart: the firing alerts
        await provider.persist(alert, now)   # durable first ...
        provider.put(alert)                  # ... then held
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.current: dict[str, Alert] = {}
        self._persisted: dict[str, tuple] = {}
        #: Who raised each alert (:func:`source_identity`; ``""``: unknown, e.g. a row written
        #: before sources were recorded).
        self.sources: dict[str, str] = {}

    def _key(self, a: Alert, now: float) -> tuple:
        return (a.status(now), a.starts_at, a.ends_at, tuple(sorted(a.annotations.items())), a.generator_url,
                self.sources.get(a.fingerprint, ""))

    def source_of(self, fingerprint: str) -> str:
        """Return who raised the alert (``""`` when unknown)."""
        return self.sources.get(fingerprint, "")

    def set_source(self, fingerprint: str, source: str) -> None:
        """Record who raised the alert (written with its next :meth:`persist`)."""
        self.sources[fingerprint] = source

    async def persist(self, a: Alert, now: float) -> None:
        """Write ``a`` to the store unless the store already holds this version."""
        await self.persist_many([a], now)

    async def persist_many(self, alerts: list[Alert], now: float) -> None:
        """Write the versions of ``alerts`` the store does not hold yet, in one transaction."""
        todo = []
        for a in alerts:
            key = self._key(a, now)
            if self._persisted.get(a.fingerprint) != key:
                todo.append((a, key))
        if not todo:
            return
        if len(todo) == 1:
            a = todo[0][0]
            await self.store.upsert_alert(alert_row(a, now, self.source_of(a.fingerprint)), now)
        else:
            await self.store.upsert_alerts([alert_row(a, now, self.source_of(a.fingerprint)) for a, _ in todo], now)
        for a, key in todo:
            self._persisted[a.fingerprint] = key

    def unwritten(self, fingerprints: Iterable[str]) -> None:
        """Forget that these alerts' versions were written (their transaction rolled back): the
        next :meth:`persist_many` writes them again."""
        for fp in fingerprints:
            self._persisted.pop(fp, None)

    def persisted_status(self, fingerprint: str) -> str:
        """Return ``firing`` / ``resolved`` as last written, or ``""``."""
        return self._persisted.get(fingerprint, ("",))[0]

    def put(self, a: Alert) -> None:
        """Hold ``a`` as the latest version of its alert."""
        self.current[a.fingerprint] = a

    def get(self, fingerprint: str) -> Alert | None:
        """Return the latest version of an alert, or ``None``."""
        return self.current.get(fingerprint)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.current

    def items(self) -> Iterator[tuple[str, Alert]]:
        """``(fingerprint, alert)`` pairs (a snapshot: the caller may :meth:`forget` meanwhile)."""
        return iter(list(self.current.items()))

    def forget(self, fingerprint: str) -> None:
        """Stop holding an alert (its store row stays)."""
        self.current.pop(fingerprint, None)
        self.sources.pop(fingerprint, None)

    async def restore(self, now: float, resolved_since: float | None = None) -> list[Alert]:
        """Hold the firing alerts of the store again (restart recovery) and return them.

        :param resolved_since: also hold the alerts resolved at or after this time (Unix
            seconds), as before the restart: a resolution recorded but not yet announced is
            still announced, and the walk it ended is ended.
        """
        alerts = []
        rows = await self.store.list_alerts("firing")
        if resolved_since is not None:
            rows += [r for r in await self.store.list_alerts("resolved")
                     if r.get("ends_at") is not None and float(r["ends_at"]) >= resolved_since]
        for row in rows:
            a = alert_from_row(row)
            alerts.append(a)
            self.current[a.fingerprint] = a
            self.sources[a.fingerprint] = row.get("source") or ""
            # As stored: a row stored firing whose endsAt passed while down is written resolved
            # by the next tick (AlertPipeline.tick).
            self._persisted[a.fingerprint] = (row.get("state") or a.status(now),) + self._key(a, now)[1:]
        return alerts
