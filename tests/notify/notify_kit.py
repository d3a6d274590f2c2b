"""The notifier conformance kit: every channel test runs these checks.

* :func:`check_status_classes`: the retry decision for every status class (2xx, 400, 401, 404,
  429 with ``Retry-After``, 500, 503) against a real local server, error replies echoing the
  request back so a leaked secret would show;
* :func:`check_timeout` and :func:`check_refused`: network failures are retryable;
* :func:`assert_no_secret`: no secret value in any error text;
* :func:`assert_golden`: a built payload equals ``golden/<name>.json`` (``UPDATE_GOLDEN=1``
  rewrites the files);
* :func:`firing_message` / :func:`resolved_message`: the shared sample;
* :class:`QuietNotifier` / :func:`quiet_integrations`: integrations that send nothing, for the
  stages that only write the outbox.

After Alertmanager ``notify/test/test.go`` (``RetryTests``, ``AssertNotifyLeaksNoSecret``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pytest

from monitor.errors import NotifyError
from monitor.notify.base import Integration, Message, Notifier, NotifyResult
from tests.support.notify_servers import FakeHTTP, Recorded, Reply, echo
from tests.support.probe_servers import closed_port

GOLDEN = Path(__file__).with_name("golden")
T_START = "2026-11-29T14:00:00Z"

#: status -> expected ``retryable`` (``None``: success).
ERROR_STATUSES = {400: False, 401: False, 404: False, 429: True, 500: True, 503: True}


def sample_alerts(status: str = "firing") -> list[dict[str, Any]]:
    """Two alert-likes of one group, as the alerting module hands them over."""
    ends = "2026-11-29T14:30:00Z" if status == "resolved" else None
    return [
        {"labels": {"alertname": "ApiHighErrorRate", "severity": "critical", "service": "api",
                    "instance": "api-1:8000", "job": "codebook-api"},
         "annotations": {"summary": "API 5xx ratio above 5%", "description": "5xx ratio is 12% over 5m",
                         "runbook_url": "https://runbooks.example/api-errors", "value": "0.12"},
         "starts_at": T_START, "ends_at": ends, "status": status, "fingerprint": "3f2a9c0e11d4b7a1",
         "generator_url": "http://monitor.example/graph?g0.expr=api_error_ratio"},
        {"labels": {"alertname": "ApiHighErrorRate", "severity": "critical", "service": "api",
                    "instance": "api-2:8000", "job": "codebook-api"},
         "annotations": {"summary": "API 5xx ratio above 5%", "description": "5xx ratio is 9% over 5m",
                         "runbook_url": "https://runbooks.example/api-errors", "value": "0.09"},
         "starts_at": T_START, "ends_at": ends, "status": status, "fingerprint": "7b01de55c2aa9f30",
         "generator_url": "http://monitor.example/graph?g0.expr=api_error_ratio"},
    ]


def firing_message(**kw: Any) -> Message:
    """The shared firing message (receiver ``ops``, two alerts, signed links)."""
    kw.setdefault("group_key", '{}:{alertname="ApiHighErrorRate"}')
    kw.setdefault("group_labels", {"alertname": "ApiHighErrorRate"})
    kw.setdefault("external_url", "http://monitor.example")
    kw.setdefault("ack_url", "http://monitor.example/api/v1/links?token=abc.ack.1.sig")
    kw.setdefault("priority", "P0")
    return Message.build("firing", "ops", sample_alerts("firing"), **kw)


def resolved_message(**kw: Any) -> Message:
    """The shared resolved message (same group as :func:`firing_message`)."""
    kw.setdefault("group_key", '{}:{alertname="ApiHighErrorRate"}')
    kw.setdefault("group_labels", {"alertname": "ApiHighErrorRate"})
    kw.setdefault("external_url", "http://monitor.example")
    kw.setdefault("priority", "P0")
    return Message.build("resolved", "ops", sample_alerts("resolved"), **kw)


class QuietNotifier:
    """A notifier that sends nothing (the stages under test only write the outbox)."""

    def __init__(self, send_resolved: bool = True) -> None:
        self.send_resolved = send_resolved

    async def notify(self, message: Message) -> NotifyResult:
        return NotifyResult()

    def secrets(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        pass


def quiet_integrations(**receivers: list[str]) -> dict[str, list[Integration]]:
    """``{receiver: [Integration(name, receiver, QuietNotifier())]}`` from ``receiver=["slack[0]", ...]``."""
    return {r: [Integration(name, r, QuietNotifier()) for name in names] for r, names in receivers.items()}


def assert_no_secret(text: str, secrets: list[str]) -> None:
    """Fail if any secret (or any 8-character piece of one beyond its prefix) is in ``text``."""
    for s in secrets:
        assert s not in text, f"secret leaked into {text!r}"
        for i in range(4, max(4, len(s) - 8)):
            assert s[i:i + 8] not in text, f"part of a secret leaked into {text!r}"


def assert_golden(name: str, data: Any) -> None:
    """Compare ``data`` with ``golden/<name>.json`` (``UPDATE_GOLDEN=1`` writes it)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if not os.environ.get("UPDATE_GOLDEN"):
            pytest.fail(f"golden file {path.name} was missing and has been written; re-run")
    assert json.loads(text) == json.loads(path.read_text()), f"payload differs from {path}"


@dataclass
class ChannelCase:
    """How to point one channel at a :class:`FakeHTTP` and what it must keep secret.

    :param make: ``(server base url, timeout seconds) -> notifier``.
    :param path: the request path a send hits.
    :param default: the vendor-speaking success handler.
    :param ok_statuses: the 2xx codes this vendor answers success with.
    :param secrets: values that must never appear in an error.
    """

    kind: str
    make: Callable[[str, float], Notifier]
    path: str
    default: Callable[[Recorded], Reply]
    secrets: list[str]
    ok_statuses: tuple[int, ...] = (200,)
    errors: list[str] = field(default_factory=list)


async def _expect_error(notifier: Notifier, message: Message, case: ChannelCase) -> NotifyError:
    with pytest.raises(NotifyError) as info:
        await notifier.notify(message)
    text = str(info.value)
    case.errors.append(text)
    assert_no_secret(text, case.secrets)
    return info.value


async def check_status_classes(case: ChannelCase, message: Message) -> None:
    """Every status class gets the right decision; 429's ``Retry-After`` is honoured."""
    async with FakeHTTP(case.default) as srv:
        notifier = case.make(srv.url, 5.0)
        try:
            for ok in case.ok_statuses:
                srv.script(case.path, lambda req, ok=ok: replace(case.default(req), status=ok))
                result = await notifier.notify(message)
                assert not result.skipped
            for status, retryable in ERROR_STATUSES.items():
                headers = {"Retry-After": "7"} if status == 429 else {}
                srv.script(case.path, echo(status, **headers))
                err = await _expect_error(notifier, message, case)
                assert err.retryable is retryable, f"status {status}: {err}"
                assert str(status) in str(err)
                if status == 429:
                    assert err.retry_after == pytest.approx(7.0)
            # Retry-After as an HTTP date (RFC 9110): honoured too.
            srv.script(case.path, echo(503, **{"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
            err = await _expect_error(notifier, message, case)
            assert err.retryable and err.retry_after is not None and err.retry_after > 3600
            assert srv.on(case.path), "the notifier never reached the server"
        finally:
            await notifier.aclose()


async def check_timeout(case: ChannelCase, message: Message) -> None:
    """A server slower than the timeout gives a retryable error."""
    async with FakeHTTP(case.default) as srv:
        srv.script(case.path, lambda req: replace(case.default(req), delay=3.0))
        notifier = case.make(srv.url, 0.3)
        try:
            err = await _expect_error(notifier, message, case)
            assert err.retryable, str(err)
        finally:
            await notifier.aclose()


async def check_refused(case: ChannelCase, message: Message) -> None:
    """Nothing listening gives a retryable error."""
    notifier = case.make(f"http://127.0.0.1:{closed_port()}", 2.0)
    try:
        err = await _expect_error(notifier, message, case)
        assert err.retryable, str(err)
    finally:
        await notifier.aclose()


async def run_kit(case: ChannelCase, message: Message) -> None:
    """All network checks of the kit for one channel."""
    await check_status_classes(case, message)
    await check_timeout(case, message)
    await check_refused(case, message)
    for text in case.errors:
        assert_no_secret(text, case.secrets)
