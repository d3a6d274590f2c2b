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
import re
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from model.duration import PositiveDuration
from model.secrets import shown_url

if TYPE_CHECKING:
    import httpx

def _http_url(v: Any) -> str:
    import httpx

    text = str(v)
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:  # the parser's only error for a string argument
        raise ValueError(f"expected an http(s) URL, got {shown_url(text)}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"expected an http(s) URL such as https://api.example.com, got {shown_url(text)}")
    return text


#: A pydantic field type: an ``http://`` or ``https://`` URL with a host, checked by httpx's parser.
HttpUrl = Annotated[str, BeforeValidator(_http_url)]

# --------------------------------------------------------------------------------------------
# Sizes and bounded bodies
# --------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
#: Default ``body_size_limit`` of every probe that reads an HTTP body: 10 MiB. A health document,
#: a model list or index statistics are kilobytes; ten megabytes is far above any honest answer
#: and small enough that a broken or hostile endpoint cannot grow the daemon by more.
DEFAULT_BODY_SIZE_LIMIT = 10 << 20


def parse_size(value: Any) -> int:
    """Parse a byte size: a number of bytes or ``512KiB``, ``10MiB``, ``1GiB`` (``KB``/``MB``/``GB``
    mean the same powers of 1024, as in Prometheus's and blackbox_exporter's ``body_size_limit``).

    :return: bytes (int, >= 0); ``0`` means no limit wherever a limit is configured.
    :raises ValueError: ``expected a size such as 10MiB, got "<value>"``.
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a size such as 10MiB, got "{value}"')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f'expected a size such as 10MiB, got "{value}"')
        return value
    m = _SIZE_RE.match(str(value).strip())
    if not m:
        raise ValueError(f'expected a size such as 10MiB, got "{value}"')
    unit = (m.group(2) or "").upper()[:1]
    return int(float(m.group(1)) * _SIZE_UNITS["" if unit == "B" else unit])


def format_size(n: int) -> str:
    """Format bytes in the largest binary unit that divides them: ``10485760`` -> ``10MiB``."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


#: A pydantic field type: a byte size (``10MiB`` or a number of bytes), validated to int bytes.
ByteSize = Annotated[int, BeforeValidator(parse_size)]


class BodyTooLarge(Exception):
    """A response body is larger than its ``body_size_limit``: raised before the rest is read.

    :ivar limit: the limit in bytes.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"body exceeds body_size_limit {format_size(limit)}")
        self.limit = limit


def _declared_too_large(resp: httpx.Response, limit: int) -> bool:
    """Whether an uncompressed response declares (``Content-Length``) more than ``limit`` bytes."""
    declared = resp.headers.get("content-length", "")
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    return encoding in ("", "identity") and declared.isdigit() and int(declared) > limit


#: Most bytes one step of inflating a compressed body produces, so a small compressed read that
#: inflates to gigabytes (a "zip bomb") is counted, and refused, 64 KiB at a time.
_INFLATE_STEP = 64 * 1024


async def _inflate(raw: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """Decode a ``gzip`` or ``deflate`` body in steps of at most :data:`_INFLATE_STEP` bytes.

    ``deflate`` is tried as zlib data, then as raw deflate data, as httpx's ``DeflateDecoder``.

    :raises httpx.DecodingError: the body is not what its ``Content-Encoding`` says.
    """
    import httpx

    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS)
    first = True
    async for data in raw:
        while True:
            try:
                out = inflater.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                if not (first and encoding == "deflate"):
                    raise httpx.DecodingError(f"cannot decode the {encoding} body: {exc}") from None
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                first = False
                continue
            first = False
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and len(out) < _INFLATE_STEP:
                break
    out = inflater.flush()
    if out:
        yield out


async def iter_body(resp: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """Yield a streamed response's decoded body, failing once it passes ``limit`` bytes.

    As blackbox_exporter's and Prometheus's ``body_size_limit``: the uncompressed size counts,
    reading stops at the limit and the rest is never read (a body that declares a larger
    ``Content-Length`` is refused before its first byte). ``gzip`` and ``deflate`` bodies are
    inflated here a step at a time, so a small compressed body that inflates to gigabytes is
    refused at the limit too; another encoding (``br``, ``zstd``, when their packages are
    installed) is decoded by httpx and may pass the limit by one decoded network read.

    :param resp: a response from ``client.send(request, stream=True)`` (or ``client.stream``).
    :param limit: the most bytes accepted; ``0`` means no limit.
    :raises BodyTooLarge: the body is (or declares to be) larger than ``limit``.
    """
    if limit and _declared_too_large(resp, limit):
        raise BodyTooLarge(limit)
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        source = resp.aiter_raw()
    elif encoding in ("gzip", "x-gzip", "deflate"):
        source = _inflate(resp.aiter_raw(), encoding)
    else:
        source = resp.aiter_bytes()
    size = 0
    async for chunk in source:
        size += len(chunk)
        if limit and size > limit:
            raise BodyTooLarge(limit)
        yield chunk


async def read_body(resp: httpx.Response, limit: int) -> bytes:
    """Return a streamed response's decoded body, at most ``limit`` bytes (see :func:`iter_body`).

    :raises BodyTooLarge: the body is larger than ``limit`` (``0``: no limit).
    """
    return b"".join([chunk async for chunk in iter_body(resp, limit)])


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
