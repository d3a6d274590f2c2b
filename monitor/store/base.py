r"""The state-store protocol: what survives a restart.

Every alert transition, acknowledgement, escalation step and outgoing notification is written
here *before* it takes effect (DESIGN.md, "Durable state"). Two backends implement it with one
schema (:mod:`monitor.store.migrations`): :class:`~monitor.store.sqlite.SQLiteStore` (default,
one file, WAL) and :class:`~monitor.store.postgres.PostgresStore` (two replicas, one leader by
advisory lock). ``tests/store`` runs one suite against both.

Conventions for every method:

* times are **unix seconds** (``float``); a ``datetime`` is accepted wherever a time is passed
  in and is converted; times come back as ``float`` (or ``None``);
* JSON values (labels, matchers, snapshots, payloads) go in as plain Python data and come back
  equal (dict key order aside);
* rows come back as plain ``dict``\ s with the column names as keys;
* failures of the database raise :class:`~monitor.errors.StoreError`; looking up an id that
  does not exist where one is required raises :class:`~monitor.errors.NotFoundError`.

Usage::

    store = await open_store(state_config)          # migrates to the latest version
    if await store.enqueue("fp1/firing/1/ops/slack[0]", "ops", "slack[0]", payload,
                           not_after=now + 3600, now=now):
        ...                                         # first time for this transition
    await store.close()
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


@runtime_checkable
class Store(Protocol):
    """Durable state of the daemon (alerts, acks, escalations, silences, audit, outbox)."""

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and apply pending migrations (idempotent; safe on every start)."""

    async def close(self) -> None:
        """Release connections (idempotent). Leadership, if held, is released."""

    async def schema_version(self) -> int:
        """Return the highest applied migration version (0 on an empty database)."""

    # -- batching ---------------------------------------------------------------------------
    def transaction(self) -> Any:
        """Return an async context manager in which every call of the calling task joins one
        transaction (all or none; nested use joins the outer one). A group flush writes its
        transition numbers, outbox rows and notification-log entries this way: one commit.

        :raises StoreError: the commit failed (nothing of the batch is kept).
        """

    def after_commit(self, callback: Any) -> None:
        """Call ``callback()`` once the calling task's writes are committed: at once outside a
        :meth:`transaction`, after its commit inside one, never if it rolls back."""

    # -- alerts -----------------------------------------------------------------------------
    async def upsert_alert(self, alert: Row, now: float) -> None:
        """Insert or update an alert by ``alert["fingerprint"]``.

        :param alert: ``{"fingerprint", "labels", "annotations"?, "state"
            (pending|firing|resolved), "starts_at"?, "ends_at"?, "generator_url"?, "source"?}``
            (``source``: who raised it, e.g. ``rules``, ``token:prometheus``, ``client:10.0.0.5``);
            acknowledgement columns are left untouched (see :meth:`record_ack`).
        :param now: written to ``updated_at``.
        """

    async def upsert_alerts(self, alerts: list[Row], now: float) -> None:
        """:meth:`upsert_alert` for every row of ``alerts``, in one transaction (all or none).

        Intake batches write their alerts this way (one commit per chunk, not per alert).
        """

    async def get_alert(self, fingerprint: str) -> Row | None:
        """Return the alert row (with ``acked_by``, ``acked_at``, ``ack_expires_at``,
        ``ack_source``, ``resolved_by``, ``resolved_at``) or ``None``."""

    async def list_alerts(self, state: str | None = None) -> list[Row]:
        """Return alerts, optionally only those in ``state``, ordered by ``starts_at``."""

    # -- acknowledgements -------------------------------------------------------------------
    async def record_ack(self, fingerprint: str, action: str, actor: str, at: float, *,
                         source: str = "", expires_at: float | None = None, comment: str = "") -> Row:
        """Record an ``ack`` / ``unack`` / ``resolve`` by ``actor`` and reflect it on the alert.

        ``ack`` sets the alert's ``acked_*`` columns (``expires_at`` = when the ack lapses and
        escalation re-triggers, or ``None``); ``unack`` clears them; ``resolve`` sets
        ``resolved_by``/``resolved_at`` and ``state='resolved'``. The history row is kept even
        when no alert row exists (the caller decides whether that is an error).

        :param source: where it came from: ``api``, ``cli``, ``slack``, ``link``, with an
            address or user id when known (``"slack:U123"``, ``"api:10.0.0.5"``).
        :return: the stored history row.
        :raises ValueError: unknown ``action``.
        """

    async def list_acks(self, fingerprint: str) -> list[Row]:
        """Return the ack/unack/resolve history of an alert, oldest first."""

    # -- escalation -------------------------------------------------------------------------
    async def save_escalation(self, fingerprint: str, snapshot: Any, state: Any, now: float) -> None:
        """Store (replace) the frozen policy ``snapshot`` and walk ``state`` of an alert."""

    async def load_escalation(self, fingerprint: str) -> Row | None:
        """Return ``{"fingerprint", "snapshot", "state", "updated_at"}`` or ``None``."""

    async def list_escalations(self) -> list[Row]:
        """Return every stored escalation (to resume deadlines after a restart)."""

    async def delete_escalation(self, fingerprint: str) -> None:
        """Forget an escalation (its timeline stays)."""

    async def append_timeline(self, fingerprint: str, at: float, event: str, detail: Any = None) -> int:
        """Append one entry to an alert's timeline; return its id.

        :param event: e.g. ``"step 1 triggered"``, ``"step 2 failed: no_one_on_call"``, ``"acked"``.
        :param detail: JSON data (who, channel, level...).
        """

    async def append_timelines(self, entries: list[tuple[str, float, str, Any]]) -> None:
        """:meth:`append_timeline` for every ``(fingerprint, at, event, detail)``, in one
        statement, in order (ids are not returned)."""

    async def list_timeline(self, fingerprint: str) -> list[Row]:
        """Return ``[{"id", "fingerprint", "at", "event", "detail"}]`` in append order."""

    # -- silences ---------------------------------------------------------------------------
    async def create_silence(self, matchers: Any, starts_at: float, ends_at: float, created_by: str,
                             now: float, *, comment: str = "", silence_id: str | None = None) -> str:
        """Store a silence; return its id (a new UUID unless ``silence_id`` is given).

        :param matchers: JSON matchers, e.g. ``[{"name": "service", "value": "api",
            "isRegex": false, "isEqual": true}]`` (Alertmanager v2 API shape).
        """

    async def get_silence(self, silence_id: str) -> Row:
        """Return one silence. :raises NotFoundError: unknown id."""

    async def list_silences(self, active_at: float | None = None) -> list[Row]:
        """Return all silences, or only those with ``starts_at <= active_at < ends_at``."""

    async def expire_silence(self, silence_id: str, now: float) -> None:
        """End a silence now (``ends_at = min(ends_at, now)``). :raises NotFoundError: unknown id."""

    # -- audit ------------------------------------------------------------------------------
    async def audit(self, actor: str, action: str, at: float, *, target: str = "", source: str = "",
                    detail: Any = None) -> int:
        """Append an audit entry (who did what to which target, when, from where); return its id."""

    async def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[Row]:
        """Return the newest ``limit`` audit entries (optionally for one target), newest first."""

    # -- rule alert state (rule manager: restore ``for`` timers) -----------------------------
    async def load_rule_alerts(self) -> list[Row]:
        """Return every saved row ``{"key", "active_at", "fired_at", "state", "labels", ...}``.

        Extra keys given to :meth:`save_rule_alerts` come back as they went in.
        """

    async def save_rule_alerts(self, rows: list[Row]) -> None:
        """Replace the whole saved set with ``rows`` in one transaction.

        :param rows: ``{"key": str, "active_at": float | None, "fired_at": float | None,
            "state": str, "labels": dict, ...extra JSON keys}``.
        """

    # -- outbox -----------------------------------------------------------------------------
    async def enqueue(self, dedup_key: str, receiver: str, integration: str, payload: Any,
                      not_after: float, now: float) -> bool:
        """Write one notification to send; due immediately.

        :param dedup_key: names one alert transition through one integration (e.g.
            ``"<fingerprint>:firing:<starts_at>:<receiver>/<integration>"``).
        :param payload: JSON data (the :meth:`monitor.notify.base.Message.to_dict` form).
        :param not_after: give up (status ``expired``) after this time.
        :return: ``True`` if written, ``False`` if ``dedup_key`` exists already — so one
            transition never pages twice, even across restarts and replicas.
        """

    async def claim_due(self, now: float, limit: int = 50, lease: float = 60.0) -> list[Row]:
        """Claim up to ``limit`` pending rows with ``next_attempt_at <= now <= not_after``.

        A claim hides the row from other claims for ``lease`` seconds; a worker that dies
        mid-send leaves it to be claimed again after the lease (at-least-once).
        :return: rows ``{"id", "dedup_key", "receiver", "integration", "payload", "status",
            "attempts", "created_at", "not_after", "next_attempt_at", "last_error"}``,
            oldest due first.
        """

    async def release_claims(self) -> int:
        """Release every claim on pending rows (a new leader's first act: the claims are those of
        a process that died or stepped down, whose leases would otherwise hold the rows — and every
        later row of their chains — for up to ``lease`` seconds). A row whose send had finished but
        was not yet marked is sent again: delivery is at-least-once across a crash in that gap.

        :return: how many claims were released.
        """

    async def mark_sent(self, outbox_id: int, now: float, response_meta: Any = None) -> None:
        """Mark a row delivered (``status='sent'``, ``attempts += 1``) with channel facts."""

    async def mark_sent_many(self, rows: list[tuple[int, float, Any]]) -> None:
        """:meth:`mark_sent` for every ``(outbox_id, now, response_meta)``, in one statement."""

    async def mark_failed(self, outbox_id: int, now: float, error: str,
                          next_attempt_at: float | None) -> None:
        """Record a failed attempt (``attempts += 1``, ``last_error``).

        :param next_attempt_at: when to try again; ``None`` for a permanent failure
            (``status='failed'``). The caller redacts secrets from ``error``.
        """

    async def expire(self, now: float) -> list[Row]:
        """Mark pending rows past ``not_after`` as ``expired``; return them (for metrics)."""

    async def depth(self) -> int:
        """Return the number of pending rows."""

    async def list_outbox(self, status: str | None = None) -> list[Row]:
        """Return outbox rows (optionally one status), oldest first."""

    async def outbox_backlog(self) -> Row:
        """Summarise the undelivered notifications, for ``/health`` and the heartbeat (read-only).

        Rows are written when they are due (:meth:`enqueue`), so the oldest pending row's
        ``created_at`` is how long the longest-waiting notification has waited.

        :return: ``{"pending": int, "oldest_created_at": float | None, "max_attempts": int}``
            over the rows with ``status='pending'`` that are not maintenance or status-page
            notices (kind ``maintenance``: not the paging path): how many, the ``created_at`` of the oldest
            (unix seconds; ``None`` when there is none) and the most failed attempts of any.
        """

    # -- delivery references and key-value ----------------------------------------------------
    async def put_message_ref(self, ref_key: str, integration: str, recipient: str, meta: Any,
                              now: float) -> None:
        """Remember where a message went (Slack ``{"channel", "ts"}``) for later updates.

        :param ref_key: :attr:`monitor.notify.base.Message.ref_key` (the incident key).
        :param integration: ``"<receiver>/<integration name>"``.
        """

    async def put_message_refs(self, refs: list[tuple[str, str, str, Any, float]]) -> None:
        """:meth:`put_message_ref` for every ``(ref_key, integration, recipient, meta, now)``, in
        one statement."""

    async def get_message_ref(self, ref_key: str, integration: str, recipient: str) -> Any | None:
        """Return the stored reference, or ``None``."""

    async def kv_get(self, key: str) -> Any | None:
        """Return a stored JSON value, or ``None``."""

    async def kv_scan(self, prefix: str) -> dict[str, Any]:
        """Return every ``{key: value}`` whose key starts with ``prefix`` (restart recovery)."""

    async def kv_set(self, key: str, value: Any, now: float) -> None:
        """Store a JSON value under ``key`` (replacing)."""

    async def kv_set_many(self, items: list[tuple[str, Any]], now: float) -> None:
        """:meth:`kv_set` for every ``(key, value)`` pair, in one statement (a later pair for
        the same key wins)."""

    async def claim_once(self, namespace: str, key: str, now: float, ttl: float) -> bool:
        """Claim ``key`` once for ``ttl`` seconds: the first caller wins, across restarts and replicas.

        Kept in the ``kv`` table as ``<namespace>:<key>``, with the claim time as ``updated_at``.
        Claims of ``namespace`` older than ``ttl`` are deleted on each call (so every caller of
        one namespace must pass the same ``ttl``). Used for the Slack replay cache
        (namespace ``slack-replay``, key = the request signature).

        :param namespace: a fixed name for one kind of claim (letters, digits, ``-``; no ``:``).
        :param now: the claim time (unix seconds).
        :param ttl: seconds a claim lasts.
        :return: ``True`` if ``key`` was not claimed within ``ttl`` seconds before ``now`` (it is
            now), ``False`` if it was (a replay).
        :raises ValueError: ``namespace`` is empty or holds ``:``.
        """

    # -- leadership -------------------------------------------------------------------------
    async def try_acquire_leadership(self) -> bool:
        """Return ``True`` if this process is (now) the leader.

        PostgreSQL: ``pg_try_advisory_lock`` held on a dedicated connection (released when it
        closes, so a dead leader frees the lock). SQLite: a ``flock`` on ``<file>.leader``.
        """

    async def release_leadership(self) -> None:
        """Give up leadership (idempotent)."""
