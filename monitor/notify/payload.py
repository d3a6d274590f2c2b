"""The alert payload: the one dict shape every channel reads, produced once from the alert model.

The pipeline's edge on the way out: :func:`alert_payload` turns a :class:`~model.alert.Alert`
(float seconds) into the JSON-serialisable dict that a :class:`~monitor.notify.base.Message`
carries, the outbox stores and every channel (``slack``, ``pagerduty``, ``webhook``, ``email``,
the templates) reads::

    {"status": "firing" | "resolved", "labels": {..}, "annotations": {..},
     "starts_at": RFC 3339 | "", "ends_at": RFC 3339 | "", "generator_url": str,
     "fingerprint": 16 hex digits, "value": str}

Times are RFC 3339 UTC as Go's ``RFC3339Nano`` prints whole seconds (``2026-11-30T10:00:00Z``)
and milliseconds otherwise (``...T10:00:00.250Z``), as Alertmanager's webhook JSON does; the
text is part of the outbox dedup key (``monitor.notify.outbox_stage.transition_id``), so it must
not change between releases.

:func:`with_defaults` completes a hand-built dict (tests, examples, an escalation notice about an
alert no longer held) with the same keys; :func:`dedup_key` is the incident key of a message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from model.alert import Alert
from model.labels import Labels
from model.timestamps import rfc3339

__all__ = ["alert_payload", "with_defaults", "dedup_key", "payload_time"]


def payload_time(t: float | None) -> str:
    """Format Unix seconds for a payload (``""`` for ``None``): RFC 3339 UTC, the fraction
    (milliseconds) only when there is one."""
    if t is None:
        return ""
    text = rfc3339(t)
    return text[:-5] + "Z" if text.endswith(".000Z") else text


def alert_payload(alert: Alert, now: float) -> dict[str, Any]:
    """Return the payload of ``alert`` as it stands at ``now`` (see the module docstring).

    ``value`` is the rule's sample value, else the ``value`` annotation, else ``""``.
    """
    return {
        "status": alert.status(now),
        "labels": alert.labels.as_dict(),
        "annotations": dict(alert.annotations),
        "starts_at": payload_time(alert.starts_at),
        "ends_at": payload_time(alert.ends_at),
        "generator_url": alert.generator_url,
        "fingerprint": alert.fingerprint,
        "value": alert.value or alert.annotations.get("value", ""),
    }


def with_defaults(payload: Mapping[str, Any], status: str = "firing") -> dict[str, Any]:
    """Return ``payload`` with every payload key, filling those it leaves out (or sets to ``None``).

    :param status: the status of a dict without one (``resolved`` for resolved messages).
    The fingerprint defaults to the labels' (``model.labels.Labels.fingerprint``); ``value`` to
    the ``value`` annotation.
    """
    labels = dict(payload.get("labels") or {})
    annotations = dict(payload.get("annotations") or {})
    value = payload.get("value")
    return {
        "status": payload.get("status") or status,
        "labels": labels,
        "annotations": annotations,
        "starts_at": payload.get("starts_at") or "",
        "ends_at": payload.get("ends_at") or "",
        "generator_url": payload.get("generator_url") or "",
        "fingerprint": payload.get("fingerprint") or Labels.of(labels).fingerprint(),
        "value": str(value) if value not in (None, "") else annotations.get("value", ""),
    }


def dedup_key(fingerprints: Iterable[str], group_key: str = "") -> str:
    """Return the incident key of a message about ``fingerprints`` (PagerDuty ``dedup_key``).

    One alert: its fingerprint. Several: derived from the aggregation group's key when there is
    one (sha256, 32 hex digits — stable across releases, open incidents are keyed by it), else
    from the sorted fingerprints (blake2b-64, 16 hex digits).
    """
    fps = sorted(fingerprints)
    if len(fps) == 1:
        return fps[0]
    if group_key:
        return hashlib.sha256(group_key.encode()).hexdigest()[:32]
    return hashlib.blake2b("\n".join(fps).encode(), digest_size=8).hexdigest()
