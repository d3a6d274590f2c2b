"""Silence administration: create, expire, list and restore silences, persisted and audited.

Implements :class:`monitor.alerting.ports.SilenceAdmin` with Alertmanager's v2 API semantics
(``api/v2/api.go`` ``postSilencesHandler``, ``deleteSilenceHandler``): a silence is validated
(:mod:`monitor.alerting.silence`), written to the state store with an audit entry, and set in
the :class:`~monitor.alerting.silence.Silences` the mute stages read — under the pipeline's
lock, so a flush never sees half a change. Replacing a silence (``silence_id`` given) expires
the old one and creates a new one, as Alertmanager does when a silence's matchers change.

Store rows (``{"id", "matchers": [v2 matcher], "starts_at", "ends_at", "created_by", "comment",
"updated_at"}``, Unix seconds) are read back by :meth:`SilenceAdmin.restore` after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.alerting.pipeline import AlertPipeline
from monitor.alerting.silence import Silence, SilenceError, Silences, matcher_from_api
from monitor.errors import NotFoundError

__all__ = ["SilenceAdmin", "silence_from_row"]


def silence_from_row(row: Mapping[str, Any]) -> Silence:
    """Return the silence of a state-store row."""
    return Silence(row["id"], tuple(matcher_from_api(m) for m in row["matchers"]), row["starts_at"],
                   row["ends_at"], row.get("created_by") or "", row.get("comment") or "",
                   row.get("updated_at") or row["starts_at"])


class SilenceAdmin:
    """Silences for people (the API, the CLI): see the module docstring.

    :param store: the state store (``create_silence``, ``expire_silence``, ``list_silences``, ``audit``).
    :param silences: the silences the mute stages read.
    :param pipeline: the running pipeline (its lock; its alert gauges are refreshed on change).
    :param clock: Unix-seconds clock.
    """

    def __init__(self, store: Any, silences: Silences, pipeline: AlertPipeline, *,
                 clock: Callable[[], float] = time.time, logger: logging.Logger | Any | None = None) -> None:
        self.store = store
        self.silences = silences
        self.pipeline = pipeline
        self.clock = clock
        self.log = logger or logging.getLogger("monitor.alerting")

    async def restore(self, now: float) -> int:
        """Set every stored silence again (restart recovery; call under the pipeline's lock);
        return how many there are at ``now``."""
        for row in await self.store.list_silences():
            try:
                self.silences.set(silence_from_row(row))
            except (KeyError, ValueError) as exc:
                self.log.error("unreadable stored silence skipped", extra={"silence": row.get("id"),
                                                                           "error": str(exc)})
        return len(self.silences.list(now))

    async def create_silence(self, matchers: Sequence[Mapping[str, Any]] | str, starts_at: float, ends_at: float,
                             created_by: str, comment: str = "", *, actor: str = "", source: str = "",
                             now: float | None = None, silence_id: str | None = None) -> str:
        """Validate and store a silence; return its id (Alertmanager ``PostSilences``).

        :param matchers: v2 API matchers ``[{name, value, isRegex, isEqual}]`` or a string
            ``{alertname="X", service=~"api|db"}``.
        :param silence_id: replace an existing silence (it is expired and a new one created).
        :raises SilenceError: invalid silence. :raises NotFoundError: unknown ``silence_id``.
        """
        now = self.clock() if now is None else now
        if isinstance(matchers, str):
            parsed = Silence.create("new", matchers, starts_at, ends_at, created_by, comment).matchers
        else:
            try:
                parsed = tuple(matcher_from_api(m) for m in matchers)
            except (KeyError, TypeError, ValueError) as exc:
                raise SilenceError(f"invalid matchers: {exc}") from None
        Silence.create("new", parsed, starts_at, ends_at, created_by, comment)  # validate
        if ends_at <= now:
            raise SilenceError("end time can't be in the past")
        api = [{"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"), "isEqual": m.op in ("=", "=~")}
               for m in parsed]
        async with self.pipeline.lock:
            if silence_id:
                old = self.silences.get(silence_id)
                if old is None:
                    raise NotFoundError("silence", silence_id)
                if old.state(now) != "expired":
                    await self.store.expire_silence(silence_id, now)
                    self.silences.expire(silence_id, now)
            sid = await self.store.create_silence(api, starts_at, ends_at, created_by, now, comment=comment)
            self.silences.set(Silence(sid, parsed, starts_at, ends_at, created_by, comment, now))
            await self.store.audit(actor or created_by, "silence.create", now, target=sid, source=source,
                                   detail={"matchers": api, "starts_at": starts_at, "ends_at": ends_at,
                                           "comment": comment})
            self.pipeline.refresh_gauges(now)
        self.log.info("silence created", extra={"silence": sid, "actor": actor or created_by, "source": source})
        return sid

    async def expire_silence(self, silence_id: str, actor: str, source: str = "", now: float | None = None) -> None:
        """Expire a silence now. :raises NotFoundError: unknown id. :raises SilenceError: already expired."""
        now = self.clock() if now is None else now
        async with self.pipeline.lock:
            if self.silences.get(silence_id) is None:
                raise NotFoundError("silence", silence_id)
            self.silences.expire(silence_id, now)
            await self.store.expire_silence(silence_id, now)
            await self.store.audit(actor, "silence.expire", now, target=silence_id, source=source)
            self.pipeline.refresh_gauges(now)
        self.log.info("silence expired", extra={"silence": silence_id, "actor": actor, "source": source})

    def list_silences(self, now: float | None = None) -> list[dict[str, Any]]:
        """Return every silence in the v2 API ``gettableSilence`` shape."""
        now = self.clock() if now is None else now
        return [s.to_api(now) for s in self.silences.list(now)]

    def get_silence(self, silence_id: str, now: float | None = None) -> dict[str, Any]:
        """Return one silence (v2 shape). :raises NotFoundError: unknown id."""
        s = self.silences.get(silence_id)
        if s is None:
            raise NotFoundError("silence", silence_id)
        return s.to_api(self.clock() if now is None else now)
