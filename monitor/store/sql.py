"""The :class:`~monitor.store.base.Store` implementation shared by SQLite and PostgreSQL.

Queries are written once with ``$1``-style parameters (asyncpg's); the SQLite backend turns
them into ``?1`` (SQLite's numbered parameters), so both engines run the same text. Backends
supply :meth:`SQLStore._begin` (a transaction yielding a :class:`Conn`) and the dialect name.

Every method runs in a transaction of its own (a method that is one statement runs it alone: it
commits by itself), unless the calling task has opened a batch with :meth:`SQLStore.transaction`:
then every call of that task joins the batch's transaction (one commit for a whole group flush
instead of one per statement; all or none).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Protocol, overload

from monitor.errors import NotFoundError, StoreError
from monitor.store import migrations
from monitor.store.incidents import IncidentQueries
from monitor.store.overrides import OverrideQueries
from monitor.store.subscribers import SubscriberQueries
from monitor.store.uptime import UptimeQueries

Row = dict[str, Any]
ACK_ACTIONS = ("ack", "unack", "resolve")


class Conn(Protocol):
    """The calls the shared queries need from a backend connection."""

    async def execute(self, sql: str, *args: Any) -> None:
        """Run ``sql`` with positional ``args`` (``$1``, ``$2``...), discarding any result."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run ``sql`` and return every result row as a dict keyed by column name."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Run ``sql`` and return its first result row, or ``None`` when there is none."""

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        """Run ``sql`` once per argument tuple (in the same transaction), discarding results."""


def _one(row: Row | None) -> Row:
    """Return the row of a statement that always returns one (``INSERT ... RETURNING``, ``COUNT``).

    :raises StoreError: the backend returned none (a broken backend, never a normal outcome).
    """
    if row is None:
        raise StoreError("the state store returned no row where one was expected")
    return row


def ts(value: Any) -> float | None:
    """Return unix seconds for a float/int/datetime, ``None`` for ``None``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def dumps(value: Any) -> str:
    """Encode JSON compactly (``None`` -> ``"null"``)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


@overload
def _decode(row: Row, *columns: str) -> Row: ...
@overload
def _decode(row: None, *columns: str) -> None: ...
def _decode(row: Row | None, *columns: str) -> Row | None:
    """Decode the JSON text ``columns`` of a row in place (SQLite stores JSON as text)."""
    if row is None:
        return None
    for c in columns:
        if c in row and isinstance(row[c], str):
            row[c] = json.loads(row[c])
    return row


def chain_of(payload: Any) -> str:
    """Return the delivery chain of an outbox payload: its incident key and recipient.

    Rows of one chain (and receiver, integration) are delivered in ``id`` order; ``""`` (no
    incident key) orders nothing.
    """
    if not isinstance(payload, dict) or not payload.get("dedup_key"):
        return ""
    return f"{payload['dedup_key']}|{payload.get('recipient') or ''}"


class _Batch:
    """One open :meth:`SQLStore.transaction`: its connection and its after-commit callbacks."""

    __slots__ = ("conn", "callbacks")

    def __init__(self) -> None:
        self.conn: Any = None
        self.callbacks: list[Callable[[], None]] = []


@asynccontextmanager
async def _joined(conn: Conn) -> AsyncIterator[Conn]:
    """Yield the open batch's connection: no BEGIN/COMMIT of its own."""
    yield conn


class SQLStore(OverrideQueries, IncidentQueries, UptimeQueries, SubscriberQueries, ABC):
    """Shared queries; subclasses connect. See :class:`monitor.store.base.Store` for contracts."""

    dialect: str = ""

    @abstractmethod
    def _begin(self) -> AbstractAsyncContextManager[Conn]:
        """Return a context manager running one transaction (the backend's)."""

    @property
    def _batches(self) -> dict[asyncio.Task[Any], _Batch]:
        """The open batches (:meth:`transaction`), by the task that opened each."""
        batches = self.__dict__.get("_open_batches")
        if batches is None:
            batches = self.__dict__["_open_batches"] = {}
        return batches

    def _batch(self) -> _Batch | None:
        task = asyncio.current_task()
        return self._batches.get(task) if task is not None else None

    def _tx(self) -> AbstractAsyncContextManager[Conn]:
        """Return the transaction a method runs in: the calling task's batch, else a new one."""
        batch = self._batch()
        return _joined(batch.conn) if batch is not None else self._begin()

    def _stmt(self) -> AbstractAsyncContextManager[Conn]:
        """Return the context of a method that is one statement: the calling task's batch, else
        the statement alone (it commits by itself: no BEGIN/COMMIT round trips)."""
        batch = self._batch()
        return _joined(batch.conn) if batch is not None else self._autocommit()

    def _autocommit(self) -> AbstractAsyncContextManager[Conn]:
        """Return a context for one statement that commits by itself (backends override; by
        default a transaction of its own)."""
        return self._begin()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once what the calling task wrote is committed: at once outside a
        batch, after the batch's commit inside one (never when it rolls back). Wakes a worker
        only when the rows it is to read are visible to it."""
        batch = self._batch()
        if batch is None:
            callback()
        else:
            batch.callbacks.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run every store call of the calling task inside one transaction (all or none).

        Nested use joins the outer batch. Only the calling task joins: a task it creates runs its
        calls in transactions of their own. With SQLite the batch holds the one connection, so
        other tasks' calls wait until it commits: keep batches short (a flush's writes).

        :raises StoreError: the commit (or a statement) failed; nothing of the batch is kept.
        """
        task = asyncio.current_task()
        if task is None or task in self._batches:
            yield
            return
        batch = _Batch()
        async with self._begin() as conn:
            batch.conn = conn
            self._batches[task] = batch
            try:
                yield
            finally:
                del self._batches[task]
        for callback in dict.fromkeys(batch.callbacks):  # each once, in order
            callback()

    async def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> "SQLStore":
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- migrations -------------------------------------------------------------------------
    async def _migrate(self, now: float) -> None:
        async with self._tx() as c:
            await c.execute(migrations.CREATE_MIGRATIONS_TABLE)
            rows = await c.fetch("SELECT version FROM schema_migrations")
            done = {r["version"] for r in rows}
            for version, description, sql in migrations.MIGRATIONS:
                if version in done:
                    continue
                for stmt in migrations.render(sql, self.dialect):
                    await c.execute(stmt)
                await c.execute("INSERT INTO schema_migrations (version, description, applied_at) "
                                "VALUES ($1, $2, $3)", version, description, float(now))

    async def schema_version(self) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row["v"] or 0) if row else 0

    # -- alerts -----------------------------------------------------------------------------
    _UPSERT_ALERT = (
        "INSERT INTO alerts (fingerprint, labels, annotations, state, starts_at, ends_at, "
        "generator_url, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, "
        "annotations = excluded.annotations, state = excluded.state, "
        "starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
        "generator_url = excluded.generator_url, source = excluded.source, updated_at = excluded.updated_at")

    @classmethod
    def _alert_args(cls, alert: Row, now: float) -> tuple[Any, ...]:
        return (alert["fingerprint"], dumps(dict(alert.get("labels") or {})),
                dumps(dict(alert.get("annotations") or {})), alert.get("state", "firing"),
                ts(alert.get("starts_at")), ts(alert.get("ends_at")),
                alert.get("generator_url") or "", alert.get("source") or "", ts(now))

    async def upsert_alert(self, alert: Row, now: float) -> None:
        async with self._stmt() as c:
            await c.execute(self._UPSERT_ALERT, *self._alert_args(alert, now))

    async def upsert_alerts(self, alerts: list[Row], now: float) -> None:
        if not alerts:
            return
        async with self._tx() as c:
            await c.executemany(self._UPSERT_ALERT, [self._alert_args(a, now) for a in alerts])

    async def get_alert(self, fingerprint: str) -> Row | None:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT * FROM alerts WHERE fingerprint = $1", fingerprint)
        return _decode(row, "labels", "annotations")

    async def list_alerts(self, state: str | None = None) -> list[Row]:
        async with self._stmt() as c:
            if state is None:
                rows = await c.fetch("SELECT * FROM alerts ORDER BY starts_at, fingerprint")
            else:
                rows = await c.fetch("SELECT * FROM alerts WHERE state = $1 ORDER BY starts_at, fingerprint",
                                     state)
        return [_decode(r, "labels", "annotations") for r in rows]

    # -- acknowledgements -------------------------------------------------------------------
    async def record_ack(self, fingerprint: str, action: str, actor: str, at: Any, *, source: str = "",
                         expires_at: Any = None, comment: str = "") -> Row:
        if action not in ACK_ACTIONS:
            raise ValueError(f"unknown ack action {action!r} (one of {', '.join(ACK_ACTIONS)})")
        at_s, exp_s = ts(at), ts(expires_at)
        async with self._tx() as c:
            row = await c.fetchrow(
                "INSERT INTO acknowledgements (fingerprint, action, actor, at, source, expires_at, comment) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                fingerprint, action, actor, at_s, source, exp_s, comment)
            if action == "ack":
                await c.execute("UPDATE alerts SET acked_by = $2, acked_at = $3, ack_expires_at = $4, "
                                "ack_source = $5, updated_at = $3 WHERE fingerprint = $1",
                                fingerprint, actor, at_s, exp_s, source)
            elif action == "unack":
                await c.execute("UPDATE alerts SET acked_by = NULL, acked_at = NULL, ack_expires_at = NULL, "
                                "ack_source = NULL, updated_at = $2 WHERE fingerprint = $1", fingerprint, at_s)
            else:
                await c.execute("UPDATE alerts SET resolved_by = $2, resolved_at = $3, state = 'resolved', "
                                "ends_at = COALESCE(ends_at, $3), updated_at = $3 WHERE fingerprint = $1",
                                fingerprint, actor, at_s)
        return dict(_one(row))

    async def list_acks(self, fingerprint: str) -> list[Row]:
        async with self._stmt() as c:
            return await c.fetch("SELECT * FROM acknowledgements WHERE fingerprint = $1 ORDER BY at, id",
                                 fingerprint)

    # -- escalation -------------------------------------------------------------------------
    async def save_escalation(self, fingerprint: str, snapshot: Any, state: Any, now: Any) -> None:
        async with self._stmt() as c:
            await c.execute(
                "INSERT INTO escalations (fingerprint, snapshot, state, updated_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (fingerprint) DO UPDATE SET snapshot = excluded.snapshot, "
                "state = excluded.state, updated_at = excluded.updated_at",
                fingerprint, dumps(snapshot), dumps(state), ts(now))

    async def load_escalation(self, fingerprint: str) -> Row | None:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT * FROM escalations WHERE fingerprint = $1", fingerprint)
        return _decode(row, "snapshot", "state")

    async def list_escalations(self) -> list[Row]:
        async with self._stmt() as c:
            rows = await c.fetch("SELECT * FROM escalations ORDER BY fingerprint")
        return [_decode(r, "snapshot", "state") for r in rows]

    async def delete_escalation(self, fingerprint: str) -> None:
        async with self._stmt() as c:
            await c.execute("DELETE FROM escalations WHERE fingerprint = $1", fingerprint)

    async def append_timeline(self, fingerprint: str, at: Any, event: str, detail: Any = None) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("INSERT INTO timeline (fingerprint, at, event, detail) "
                                   "VALUES ($1, $2, $3, $4) RETURNING id",
                                   fingerprint, ts(at), event, dumps(detail if detail is not None else {}))
        return int(_one(row)["id"])

    async def append_timelines(self, entries: list[tuple[str, Any, str, Any]]) -> None:
        if not entries:
            return
        async with self._tx() as c:
            await c.executemany("INSERT INTO timeline (fingerprint, at, event, detail) VALUES ($1, $2, $3, $4)",
                                [(fp, ts(at), event, dumps(detail if detail is not None else {}))
                                 for fp, at, event, detail in entries])

    async def list_timeline(self, fingerprint: str) -> list[Row]:
        async with self._stmt() as c:
            rows = await c.fetch("SELECT * FROM timeline WHERE fingerprint = $1 ORDER BY id", fingerprint)
        return [_decode(r, "detail") for r in rows]

    # -- silences ---------------------------------------------------------------------------
    async def create_silence(self, matchers: Any, starts_at: Any, ends_at: Any, created_by: str, now: Any,
                             *, comment: str = "", silence_id: str | None = None) -> str:
        sid = silence_id or str(uuid.uuid4())
        async with self._stmt() as c:
            await c.execute("INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, "
                            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                            sid, dumps(matchers), ts(starts_at), ts(ends_at), created_by, comment, ts(now))
        return sid

    async def get_silence(self, silence_id: str) -> Row:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT * FROM silences WHERE id = $1", silence_id)
        if row is None:
            raise NotFoundError("silence", silence_id)
        return _decode(row, "matchers")

    async def list_silences(self, active_at: Any = None) -> list[Row]:
        async with self._stmt() as c:
            if active_at is None:
                rows = await c.fetch("SELECT * FROM silences ORDER BY starts_at, id")
            else:
                rows = await c.fetch("SELECT * FROM silences WHERE starts_at <= $1 AND ends_at > $1 "
                                     "ORDER BY starts_at, id", ts(active_at))
        return [_decode(r, "matchers") for r in rows]

    async def expire_silence(self, silence_id: str, now: Any) -> None:
        async with self._stmt() as c:
            row = await c.fetchrow("UPDATE silences SET ends_at = CASE WHEN ends_at > $2 THEN $2 ELSE ends_at END, "
                                   "updated_at = $2 WHERE id = $1 RETURNING id", silence_id, ts(now))
        if row is None:
            raise NotFoundError("silence", silence_id)

    # -- audit ------------------------------------------------------------------------------
    async def audit(self, actor: str, action: str, at: Any, *, target: str = "", source: str = "",
                    detail: Any = None) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("INSERT INTO audit_log (at, actor, action, target, source, detail) "
                                   "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                                   ts(at), actor, action, target, source,
                                   dumps(detail if detail is not None else {}))
        return int(_one(row)["id"])

    async def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[Row]:
        async with self._stmt() as c:
            if target is None:
                rows = await c.fetch("SELECT * FROM audit_log ORDER BY at DESC, id DESC LIMIT $1", int(limit))
            else:
                rows = await c.fetch("SELECT * FROM audit_log WHERE target = $1 ORDER BY at DESC, id DESC "
                                     "LIMIT $2", target, int(limit))
        return [_decode(r, "detail") for r in rows]

    # -- rule alert state -------------------------------------------------------------------
    async def load_rule_alerts(self) -> list[Row]:
        async with self._stmt() as c:
            rows = await c.fetch("SELECT * FROM rule_alerts ORDER BY key")
        out = []
        for r in rows:
            r = _decode(r, "labels", "data")
            extra = r.pop("data") or {}
            out.append({**extra, **r})
        return out

    async def save_rule_alerts(self, rows: list[Row]) -> None:
        core = ("key", "active_at", "fired_at", "state", "labels")
        async with self._tx() as c:
            await c.execute("DELETE FROM rule_alerts")
            for r in rows:
                extra = {k: v for k, v in r.items() if k not in core}
                await c.execute("INSERT INTO rule_alerts (key, active_at, fired_at, state, labels, data) "
                                "VALUES ($1, $2, $3, $4, $5, $6)",
                                r["key"], ts(r.get("active_at")), ts(r.get("fired_at")), str(r["state"]),
                                dumps(dict(r.get("labels") or {})), dumps(extra))

    # -- outbox -----------------------------------------------------------------------------
    async def enqueue(self, dedup_key: str, receiver: str, integration: str, payload: Any,
                      not_after: Any, now: Any) -> bool:
        async with self._stmt() as c:
            row = await c.fetchrow(
                "INSERT INTO outbox (dedup_key, receiver, integration, payload, created_at, not_after, "
                "next_attempt_at, chain) VALUES ($1, $2, $3, $4, $5, $6, $5, $7) "
                "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                dedup_key, receiver, integration, dumps(payload), ts(now), ts(not_after), chain_of(payload))
        return row is not None

    _CLAIM_LOCK = ""  # PostgreSQL adds FOR UPDATE SKIP LOCKED

    async def release_claims(self) -> int:
        async with self._stmt() as c:
            rows = await c.fetch("UPDATE outbox SET claimed_until = NULL WHERE status = 'pending' "
                                 "AND claimed_until IS NOT NULL RETURNING id")
        return len(rows)

    async def claim_due(self, now: Any, limit: int = 50, lease: float = 60.0) -> list[Row]:
        now_s = float(ts(now) or 0.0)
        async with self._stmt() as c:
            rows = await c.fetch(
                "UPDATE outbox SET claimed_until = $3 WHERE id IN (SELECT o.id FROM outbox o "
                "WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND o.not_after >= $1 "
                "AND (o.claimed_until IS NULL OR o.claimed_until <= $1) "
                # only the head of each chain: a row never overtakes an earlier pending one
                "AND (o.chain = '' OR NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' "
                "AND e.receiver = o.receiver AND e.integration = o.integration AND e.chain = o.chain "
                "AND e.id < o.id)) "
                f"ORDER BY o.next_attempt_at, o.id LIMIT $2 {self._CLAIM_LOCK}) RETURNING *",
                now_s, int(limit), now_s + float(lease))
        rows = [_decode(r, "payload", "response") for r in rows]
        return sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"]))

    async def mark_sent(self, outbox_id: int, now: Any, response_meta: Any = None) -> None:
        async with self._stmt() as c:
            await c.execute("UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, "
                            "claimed_until = NULL, response = $3 WHERE id = $1",
                            int(outbox_id), ts(now), dumps(response_meta))

    async def mark_sent_many(self, rows: list[tuple[int, Any, Any]]) -> None:
        if not rows:
            return
        async with self._tx() as c:
            await c.executemany("UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, "
                                "claimed_until = NULL, response = $3 WHERE id = $1",
                                [(int(i), ts(now), dumps(meta)) for i, now, meta in rows])

    async def mark_failed(self, outbox_id: int, now: Any, error: str, next_attempt_at: Any) -> None:
        async with self._stmt() as c:
            if next_attempt_at is None:
                await c.execute("UPDATE outbox SET status = 'failed', attempts = attempts + 1, "
                                "claimed_until = NULL, last_error = $2 WHERE id = $1", int(outbox_id), error)
            else:
                await c.execute("UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL, "
                                "last_error = $2, next_attempt_at = $3 WHERE id = $1",
                                int(outbox_id), error, ts(next_attempt_at))

    async def expire(self, now: Any) -> list[Row]:
        async with self._stmt() as c:
            rows = await c.fetch("UPDATE outbox SET status = 'expired', claimed_until = NULL "
                                 "WHERE status = 'pending' AND not_after < $1 RETURNING *", ts(now))
        return sorted((_decode(r, "payload", "response") for r in rows), key=lambda r: r["id"])

    async def depth(self) -> int:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
        return int(_one(row)["n"])

    async def list_outbox(self, status: str | None = None) -> list[Row]:
        async with self._stmt() as c:
            if status is None:
                rows = await c.fetch("SELECT * FROM outbox ORDER BY id")
            else:
                rows = await c.fetch("SELECT * FROM outbox WHERE status = $1 ORDER BY id", status)
        return [_decode(r, "payload", "response") for r in rows]

    async def outbox_backlog(self) -> Row:
        async with self._stmt() as c:
            row = _one(await c.fetchrow(
                "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest, COALESCE(MAX(attempts), 0) AS attempts "
                "FROM outbox WHERE status = 'pending'"))
        return {"pending": int(row["pending"]), "oldest_created_at": ts(row["oldest"]),
                "max_attempts": int(row["attempts"])}

    # -- delivery references and kv ---------------------------------------------------------
    async def put_message_ref(self, ref_key: str, integration: str, recipient: str, meta: Any,
                              now: Any) -> None:
        async with self._stmt() as c:
            await c.execute(
                "INSERT INTO message_refs (ref_key, integration, recipient, meta, updated_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ref_key, integration, recipient) "
                "DO UPDATE SET meta = excluded.meta, updated_at = excluded.updated_at",
                ref_key, integration, recipient or "", dumps(meta), ts(now))

    async def put_message_refs(self, refs: list[tuple[str, str, str, Any, Any]]) -> None:
        if not refs:
            return
        async with self._tx() as c:
            await c.executemany(
                "INSERT INTO message_refs (ref_key, integration, recipient, meta, updated_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ref_key, integration, recipient) "
                "DO UPDATE SET meta = excluded.meta, updated_at = excluded.updated_at",
                [(k, i, r or "", dumps(m), ts(now)) for k, i, r, m, now in refs])

    async def get_message_ref(self, ref_key: str, integration: str, recipient: str) -> Any | None:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT meta FROM message_refs WHERE ref_key = $1 AND integration = $2 "
                                   "AND recipient = $3", ref_key, integration, recipient or "")
        return None if row is None else json.loads(row["meta"])

    async def kv_get(self, key: str) -> Any | None:
        async with self._stmt() as c:
            row = await c.fetchrow("SELECT value FROM kv WHERE key = $1", key)
        return None if row is None else json.loads(row["value"])

    async def kv_scan(self, prefix: str) -> dict[str, Any]:
        async with self._stmt() as c:
            rows = await c.fetch("SELECT key, value FROM kv WHERE substr(key, 1, $2) = $1 ORDER BY key",
                                 prefix, len(prefix))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    async def kv_set(self, key: str, value: Any, now: Any) -> None:
        async with self._stmt() as c:
            await c.execute("INSERT INTO kv (key, value, updated_at) VALUES ($1, $2, $3) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                            "updated_at = excluded.updated_at", key, dumps(value), ts(now))

    async def kv_set_many(self, items: list[tuple[str, Any]], now: Any) -> None:
        if not items:
            return
        async with self._tx() as c:
            await c.executemany("INSERT INTO kv (key, value, updated_at) VALUES ($1, $2, $3) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                                "updated_at = excluded.updated_at", [(k, dumps(v), ts(now)) for k, v in items])

    async def claim_once(self, namespace: str, key: str, now: Any, ttl: float) -> bool:
        if not namespace or ":" in namespace:
            raise ValueError(f"bad claim namespace {namespace!r}")
        t = float(ts(now) or 0.0)
        # ';' sorts right after ':', so [ns:, ns;) is exactly the namespace (no LIKE wildcards).
        async with self._tx() as c:
            await c.execute("DELETE FROM kv WHERE key >= $1 AND key < $2 AND updated_at <= $3",
                            f"{namespace}:", f"{namespace};", t - ttl)
            row = await c.fetchrow("INSERT INTO kv (key, value, updated_at) VALUES ($1, $2, $3) "
                                   "ON CONFLICT (key) DO NOTHING RETURNING key",
                                   f"{namespace}:{key}", dumps({"expires_at": t + ttl}), t)
        return row is not None

