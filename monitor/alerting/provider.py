"""The alerts the pipeline holds, written to the state store before anything acts on them.

After Alertmanager ``provider/mem`` (the alert store the dispatcher reads), made durable as
DESIGN.md asks ("every alert transition ... is written to the state store before it takes
effect"): :meth:`AlertProvider.persist` upserts the alert row first, and only a changed version
is written again (status, times, annotations, generator URL). This module is the store-row edge
of the alert model, in (:meth:`AlertProvider.restore`) and out (:func:`alert_row`):

``{"fingerprint", "labels", "annotations", "state": "firing" | "resolved", "starts_at",
"ends_at" (Unix seconds | None), "generator_url"}``

Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from model.alert import Alert

__all__ = ["AlertProvider", "alert_row", "alert_from_row"]


def alert_row(a: Alert, now: float) -> dict[str, Any]:
    """Return the state-store row of ``a`` at ``now``."""
    return {"fingerprint": a.fingerprint, "labels": a.labels.as_dict(), "annotations": dict(a.annotations),
            "state": a.status(now), "starts_at": a.starts_at, "ends_at": a.ends_at,
            "generator_url": a.generator_url}


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

    @staticmethod
    def _key(a: Alert, now: float) -> tuple:
        return (a.status(now), a.starts_at, a.ends_at, tuple(sorted(a.annotations.items())), a.generator_url)

    async def persist(self, a: Alert, now: float) -> None:
        """Write ``a`` to the store unless the store already holds this version."""
        key = self._key(a, now)
        if self._persisted.get(a.fingerprint) == key:
            return
        await self.store.upsert_alert(alert_row(a, now), now)
        self._persisted[a.fingerprint] = key

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
            self._persisted[a.fingerprint] = self._key(a, now)
        return alerts
