"""Where alerts enter the pipeline: rule alerts and request bodies -> :class:`~model.alert.Alert`.

- Rule alerts (:func:`from_rule_alert`): a ``monitor.rules.alerting.Alert`` that is firing or
  resolved becomes an :class:`Alert` (Prometheus ``rules/alerting.go`` ``sendAlerts``).

Two request shapes are accepted from a real Prometheus or Alertmanager:

- Alertmanager API v2 ``POST /api/v2/alerts`` (what Prometheus sends to an alertmanager): a JSON
  list of ``{labels, annotations, startsAt, endsAt, generatorURL}``. Handling follows
  ``api/v2/api.go`` ``postAlertsHandler`` and ``types.Alert.Validate``: empty label values are
  dropped; a missing/zero ``startsAt`` becomes ``endsAt`` if given, else ``now``; a missing
  ``endsAt`` becomes ``now + resolve_timeout`` (the alert resolves unless re-sent, ``timeout``
  set); then each alert is validated — labels required and non-empty, valid label names,
  ``endsAt`` not before ``startsAt`` — and the valid ones are kept (best effort, as Alertmanager).
- Alertmanager webhook payload, version 4 (``notify/webhook``, ``template.Data``):
  ``{version, groupKey, status, receiver, groupLabels, commonLabels, commonAnnotations,
  externalURL, alerts: [{status, labels, annotations, startsAt, endsAt, generatorURL,
  fingerprint}]}``. A firing alert has a zero ``endsAt`` (``0001-01-01T00:00:00Z``) and stays
  firing until a resolved message arrives.

Each error names the index and field: ``alerts[2].labels: at least one label pair required``.

Limits: at most :data:`MAX_ALERTS` alerts per request (:class:`IntakeTooLarge`, HTTP 413), and
label names, label values and annotation values of at most :data:`MAX_VALUE_LENGTH` characters
(an error on that alert, ``alerts[0].labels.name: ...``).
Times are RFC 3339 in the bodies (Go may send nanoseconds; they are truncated to microseconds)
and Unix seconds from here on (:func:`model.timestamps.parse_rfc3339`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model.alert import Alert
from model.labels import LABEL_NAME_RE, Labels
from model.timestamps import parse_rfc3339

__all__ = ["IntakeError", "IntakeResult", "IntakeTooLarge", "MAX_ALERTS", "MAX_VALUE_LENGTH",
           "from_rule_alert", "parse_v2_alerts", "parse_webhook"]

#: The most alerts one request may carry (Prometheus sends at most ``max_alerts`` per batch).
MAX_ALERTS = 10_000
#: The longest label name, label value or annotation value, in characters (64 KiB).
MAX_VALUE_LENGTH = 64 * 1024

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def from_rule_alert(a: Any, generator_url: str = "", external_labels: Mapping[str, str] | None = None
                    ) -> Alert | None:
    """Convert a ``monitor.rules.alerting.Alert`` (``None`` for a pending one).

    Prometheus ``cmd/prometheus/main.go`` ``sendAlerts``: ``StartsAt = FiredAt`` (when the alert
    started firing, not when it became pending), ``EndsAt = ResolvedAt`` for a resolved alert
    and ``ValidUntil`` for a firing one (``valid_until``, set by ``RuleGroup`` at each evaluation:
    the pipeline resolves it once that passes without a refresh; ``None`` when unset); the
    notifier then adds the ``external_labels`` an alert's own labels do not have
    (``notifier/notifier.go``). The rule's sample value travels as text (``%g``) for the messages.
    """
    if a.state == "pending":
        return None
    ends = a.resolved_at if a.state == "inactive" else getattr(a, "valid_until", None)
    if a.state == "inactive" and ends is None:
        ends = a.active_at
    fired = getattr(a, "fired_at", None)
    starts = a.active_at if fired is None else fired
    value = getattr(a, "value", None)
    text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
    labels = a.labels
    if external_labels:
        missing = {k: v for k, v in external_labels.items() if v and labels.get(k) == ""}
        if missing:
            labels = Labels.of({**missing, **labels.as_dict()})
    return Alert(labels, dict(a.annotations), starts, ends, generator_url, value=text)


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


class IntakeTooLarge(ValueError):
    """A request carries more than :data:`MAX_ALERTS` alerts (the API answers 413)."""



@dataclass(frozen=True, slots=True)
class IntakeError:
    """One invalid alert in a request body.

    :ivar index: position in the list, or ``-1`` for an error of the whole body.
    :ivar field: the field at fault (``labels``, ``startsAt``, ...), or ``""`` for the whole item.
    :ivar message: what is wrong.
    """

    index: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.index < 0:  # the whole body, not one alert
            return f"{self.field}: {self.message}" if self.field else self.message
        where = f"alerts[{self.index}]" + (f".{self.field}" if self.field else "")
        return f"{where}: {self.message}"


@dataclass(slots=True)
class IntakeResult:
    """The valid alerts of a request and the errors of the invalid ones."""

    alerts: list[Alert] = field(default_factory=list)
    errors: list[IntakeError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """``True`` when every alert was valid."""
        return not self.errors

    def error_text(self) -> str:
        """All errors, one per line (the API's 400 body)."""
        return "\n".join(str(e) for e in self.errors)


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def _str_map(item: Mapping[str, Any], key: str, *, required: bool) -> dict[str, str]:
    raw = item.get(key)
    if raw is None:
        if required:
            raise _Invalid(key, "at least one label pair required" if key == "labels" else f"{key} required")
        return {}
    if not isinstance(raw, Mapping):
        raise _Invalid(key, f"expected an object of strings, got {type(raw).__name__}")
    out: dict[str, str] = {}
    what = "label" if key == "labels" else "annotation"
    for k, v in raw.items():
        if isinstance(k, str) and len(k) > MAX_VALUE_LENGTH:
            raise _Invalid(key, f"{what} name of {len(k)} characters is longer than the limit of "
                                f"{MAX_VALUE_LENGTH}")
        if not isinstance(k, str) or not LABEL_NAME_RE.match(k):
            raise _Invalid(key, f'invalid {what} name "{k}"')
        if not isinstance(v, str):
            raise _Invalid(f"{key}.{k}", f"expected a string value, got {type(v).__name__}")
        if len(v) > MAX_VALUE_LENGTH:
            raise _Invalid(f"{key}.{k}", f"{what} value of {len(v)} characters is longer than the limit of "
                                         f"{MAX_VALUE_LENGTH}")
        out[k] = v
    return out


def _time(item: Mapping[str, Any], key: str) -> float | None:
    try:
        return parse_rfc3339(item.get(key))
    except ValueError as e:
        raise _Invalid(key, str(e)) from None


def _without(labels: dict[str, str], drop: frozenset[str]) -> dict[str, str]:
    """Return ``labels`` less the names in ``drop``; all of them if none would be left."""
    if not drop or drop.isdisjoint(labels):
        return labels
    kept = {k: v for k, v in labels.items() if k not in drop}
    return kept or labels


def _v2_alert(item: Any, now: float, resolve_timeout: float, drop: frozenset[str]) -> Alert:
    if not isinstance(item, Mapping):
        raise _Invalid("", f"expected an object, got {type(item).__name__}")
    labels = {k: v for k, v in _str_map(item, "labels", required=True).items() if v != ""}
    if not labels:
        raise _Invalid("labels", "at least one label pair required")
    labels = _without(labels, drop)
    annotations = _str_map(item, "annotations", required=False)
    starts_at, ends_at = _time(item, "startsAt"), _time(item, "endsAt")
    url = item.get("generatorURL") or ""
    if not isinstance(url, str):
        raise _Invalid("generatorURL", "expected a string")
    timeout = False
    if starts_at is None:
        starts_at = ends_at if ends_at is not None else now
    if ends_at is None:
        ends_at, timeout = now + resolve_timeout, True
    if ends_at < starts_at:
        raise _Invalid("endsAt", "start time must be before end time")
    return Alert(Labels.of(labels), annotations, starts_at, ends_at, url, now, timeout)


def parse_v2_alerts(body: Any, now: float, *, resolve_timeout: float = 300.0,
                    drop: Iterable[str] = ()) -> IntakeResult:
    """Parse the JSON body of ``POST /api/v2/alerts`` into alerts (best effort).

    :param body: the decoded JSON (a list).
    :param now: receive time (Unix seconds): default start, ``updated_at``.
    :param resolve_timeout: seconds after which an alert without ``endsAt`` resolves.
    :param drop: label names left out of every alert (``api.intake_drop_labels``: a Prometheus HA
        pair's ``replica`` label, say), before the alert and its fingerprint exist; an alert that
        would be left with no label keeps them.
    :return: valid alerts and per-item errors; a body that is not a list is one error at index -1
        (``expected a list of alerts, got an object``).
    :raises IntakeTooLarge: more than :data:`MAX_ALERTS` alerts.
    """
    t = float(now)
    result = IntakeResult()
    if not isinstance(body, list):
        result.errors.append(IntakeError(-1, "", f"expected a list of alerts, got {_json_type(body)}"))
        return result
    _check_count(body)
    names = frozenset(drop)
    for i, item in enumerate(body):
        try:
            result.alerts.append(_v2_alert(item, t, resolve_timeout, names))
        except _Invalid as e:
            result.errors.append(IntakeError(i, e.field, e.message))
    return result


@dataclass(slots=True)
class WebhookMessage:
    """A parsed Alertmanager webhook message (version 4)."""

    receiver: str
    status: str
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    external_url: str
    result: IntakeResult


def parse_webhook(payload: Any, now: float, *, drop: Iterable[str] = ()) -> WebhookMessage:
    """Parse an Alertmanager webhook payload (version 4) into alerts.

    Firing alerts get ``ends_at=None``; resolved ones keep their ``endsAt`` (``now`` if it is
    missing). An alert whose ``status`` disagrees with its times follows ``status``. Labels
    named in ``drop`` are left out as in :func:`parse_v2_alerts`.

    :raises ValueError: when the payload is not an object, or its version is not ``"4"``.
    :raises IntakeTooLarge: more than :data:`MAX_ALERTS` alerts.
    """
    t = float(now)
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a webhook object, got {type(payload).__name__}")
    version = str(payload.get("version", "4"))
    if version != "4":
        raise ValueError(f'unsupported webhook version "{version}" (expected "4")')
    items = payload.get("alerts")
    result = IntakeResult()
    if not isinstance(items, list):
        result.errors.append(IntakeError(-1, "alerts", f"expected a list of alerts, got {_json_type(items)}"))
        items = []
    _check_count(items)
    names = frozenset(drop)
    for i, item in enumerate(items):
        try:
            result.alerts.append(_webhook_alert(item, t, names))
        except _Invalid as e:
            result.errors.append(IntakeError(i, e.field, e.message))
    return WebhookMessage(
        receiver=str(payload.get("receiver", "")), status=str(payload.get("status", "")),
        group_key=str(payload.get("groupKey", "")),
        group_labels=_group_map(payload, "groupLabels", result),
        common_labels=_group_map(payload, "commonLabels", result),
        external_url=str(payload.get("externalURL", "")), result=result)


def _group_map(payload: Mapping[str, Any], key: str, result: IntakeResult) -> dict[str, str]:
    """Return a message-level label map; a malformed one is an error of the body (alerts are kept)."""
    raw = payload.get(key) or {}
    if isinstance(raw, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return dict(raw)
    result.errors.append(IntakeError(-1, key, f"expected an object of strings, got {_json_type(raw)}"))
    return {}


def _check_count(items: list[Any]) -> None:
    if len(items) > MAX_ALERTS:
        raise IntakeTooLarge(f"{len(items)} alerts in one request; the limit is {MAX_ALERTS} "
                             "(send them in smaller batches)")


def _webhook_alert(item: Any, now: float, drop: frozenset[str]) -> Alert:
    if not isinstance(item, Mapping):
        raise _Invalid("", f"expected an object, got {type(item).__name__}")
    status = item.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise _Invalid("status", f'expected "firing" or "resolved", got "{status}"')
    labels = {k: v for k, v in _str_map(item, "labels", required=True).items() if v != ""}
    if not labels:
        raise _Invalid("labels", "at least one label pair required")
    labels = _without(labels, drop)
    annotations = _str_map(item, "annotations", required=False)
    starts_at, ends_at = _time(item, "startsAt"), _time(item, "endsAt")
    starts_at = now if starts_at is None else starts_at
    if status == "firing":
        ends_at = None
    else:
        ends_at = now if ends_at is None else ends_at
        if ends_at < starts_at:
            raise _Invalid("endsAt", "start time must be before end time")
    return Alert(Labels.of(labels), annotations, starts_at, ends_at, str(item.get("generatorURL") or ""), now)
