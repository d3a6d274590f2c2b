"""The probe protocol, its settings base, its result, and the harness that runs one probe.

A probe performs one check of one target and returns a :class:`ProbeResult`. Everything
common to every probe lives in :func:`run_probe`: the timeout, the duration measurement, the
``probe_success`` and ``probe_duration_seconds`` samples, and turning a crash into a failed
result with a reason. After blackbox_exporter ``prober/handler.go``.

``probes`` knows nothing of ``monitor``: a probe takes its own settings and returns a result.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from model.duration import PositiveDuration

def _http_url(v: Any) -> str:
    import httpx

    text = str(v)
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:  # the parser's only error for a string argument
        raise ValueError(f'expected an http(s) URL, got "{text}": {exc}') from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f'expected an http(s) URL such as https://api.example.com, got "{text}"')
    return text


#: A pydantic field type: an ``http://`` or ``https://`` URL with a host, checked by httpx's parser.
HttpUrl = Annotated[str, BeforeValidator(_http_url)]

class ProbeSettings(BaseModel):
    """Settings common to every probe; each probe kind subclasses this with its own fields.

    :ivar name: unique probe name; becomes the ``probe`` label.
    :ivar kind: the probe kind (key of ``probes.PROBES``).
    :ivar interval: seconds between runs.
    :ivar timeout: seconds before a run is abandoned as failed (must be <= interval).
    :ivar labels: extra labels put on every sample of this probe.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: str
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 10.0
    labels: dict[str, str] = Field(default_factory=dict)

    def target(self) -> str:
        """Return the target this probe checks, for the ``target`` label (URL, host:port, path...)."""
        return self.name


@dataclass(slots=True)
class Sample:
    """One measurement from a probe: metric name, labels (beyond ``probe``/``target``), value."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(slots=True)
class ProbeResult:
    """The outcome of one probe run.

    :ivar success: whether the check passed.
    :ivar duration_seconds: wall-clock duration of the run, set by the harness.
    :ivar samples: detail samples (e.g. ``probe_http_status_code``); the harness adds
        ``probe_success`` and ``probe_duration_seconds``.
    :ivar error: the reason for a failure, one line, no secrets; ``None`` on success.
    :ivar logs: free-form lines kept for the debug endpoint.
    :ivar details: key figures for the CLI table (``{"status": 200, "vectors": 1200}``).
    :ivar finished_at: Unix seconds when the run ended, set by the harness.
    """

    success: bool
    duration_seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    finished_at: float = 0.0

    def add(self, name: str, value: float, /, **labels: str) -> None:
        """Append a detail sample (``name`` and ``value`` are positional, so labels may use those words)."""
        self.samples.append(Sample(name, labels, float(value)))


class Probe(Protocol):
    """One probe kind. Implementations are plain classes registered in ``probes.PROBES``.

    Example::

        class DiskProbe:
            kind = "disk"
            Settings = DiskSettings
            def __init__(self, settings: DiskSettings, **resources): ...
            async def run(self) -> ProbeResult: ...
            async def close(self) -> None: ...

    ``resources`` are shared objects injected by the daemon (e.g. ``http_client`` an
    ``httpx.AsyncClient``); a probe must work when they are absent by creating its own.
    ``run`` may raise anything: the harness turns an exception into a failed result.
    """

    kind: ClassVar[str]
    Settings: ClassVar[type[ProbeSettings]]

    def __init__(self, settings: ProbeSettings, **resources: Any) -> None:
        """Build the probe from its own ``Settings`` instance and the shared ``resources``."""

    async def run(self) -> ProbeResult:
        """Perform one check of the target and return its outcome (the harness adds timing)."""

    async def close(self) -> None:
        """Release what the probe opened itself (clients it created, not injected resources)."""


def _exc_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


async def run_probe(probe: Probe, timeout: float, *, clock=time.monotonic, wall=time.time) -> ProbeResult:
    """Run one probe under a timeout and complete its result.

    Adds ``probe_success`` (1/0) and ``probe_duration_seconds`` samples, sets
    ``duration_seconds`` and ``finished_at``. A timeout gives ``error="timeout after Xs"``;
    any exception gives a failed result whose error names the exception type and message.
    Never raises (except ``asyncio.CancelledError`` when the caller is cancelled).

    :param probe: the probe instance.
    :param timeout: seconds before the run is cancelled.
    :return: the completed :class:`ProbeResult`.
    """
    start = clock()
    try:
        result = await asyncio.wait_for(probe.run(), timeout)
    except asyncio.TimeoutError:
        result = ProbeResult(False, error=f"timeout after {timeout:g}s")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crashing probe is a failed probe, never a dead daemon
        result = ProbeResult(False, error=_exc_line(exc))
    result.duration_seconds = clock() - start
    result.finished_at = wall()
    if not result.success and not result.error:
        result.error = "failed"
    result.samples.append(Sample("probe_success", {}, 1.0 if result.success else 0.0))
    result.samples.append(Sample("probe_duration_seconds", {}, result.duration_seconds))
    return result


def one_line(text: str, limit: int = 200) -> str:
    """Collapse ``text`` to a single line of at most ``limit`` characters (for error reasons)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def transport_reason(exc: BaseException) -> str:
    """Return a one-line reason for an httpx transport error, preferring the OS error beneath it.

    httpx reports a refused connection as ``All connection attempts failed``; the ``OSError``
    in its cause chain carries ``errno`` ECONNREFUSED, reported here as ``Connection refused``
    (resolver errors keep their own text, e.g. ``Name or service not known``).
    """
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):  # errno here is OpenSSL's, not the OS's
            return one_line(str(seen.reason or seen).replace("_", " ").lower())
        if isinstance(seen, OSError) and isinstance(seen.errno, int):
            # errno > 0: a socket error ("Connection refused"); < 0: a resolver error (gaierror)
            return os.strerror(seen.errno) if seen.errno > 0 else one_line(seen.strerror or str(seen))
        seen = seen.__cause__ or seen.__context__
    return one_line(str(exc) or type(exc).__name__)
