"""The ``pinecone`` probe: index statistics through the official pinecone SDK (v10, asyncio client).

One run calls ``AsyncIndex.describe_index_stats()`` — on the wire ``POST
{host}/describe_index_stats`` with the ``Api-Key`` and ``X-Pinecone-Api-Version`` headers,
answered by ``{"namespaces": {"ns": {"vectorCount": n}}, "dimension": 1536,
"indexFullness": 0.1, "totalVectorCount": 1200}`` — and exports the vector count, fullness
and dimension.

Outcomes are told apart: 401/403 (``UnauthorizedError``/``ForbiddenError``) is ``invalid API
key`` with ``probe_pinecone_auth_ok 0``; a refused connection, a timeout or a 5xx is an outage
(``probe_pinecone_up 0``, ``probe_pinecone_auth_ok`` not exported since the key was not
judged).

The SDK's httpx transport retries connection errors and 408/429/5xx up to 3 times with
backoff (``pinecone/_internal/http_client.py`` ``_AsyncRetryTransport``). A probe makes one
attempt, as blackbox_exporter does, so the reason of a failure is reported rather than turned
into a timeout; ``AsyncIndex`` has no public retry knob, so the probe sets
``retry_config=RetryConfig(max_retries=0)`` on the index's HTTP config before its first request
(the client is built lazily from it). The SDK's own request timeout is set to the probe's
timeout, and the asyncio client never blocks the event loop.

The SDK reads every answer whole. So that a broken or hostile host cannot make it read more than
``body_size_limit`` bytes (blackbox_exporter's setting), the probe builds the SDK's httpx client
itself and adds a response hook (public httpx API) that replaces the body stream with one that
decodes it and stops at the limit; the probe then fails with ``body exceeds body_size_limit
10MiB``.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from probes.base import (
    DEFAULT_BODY_SIZE_LIMIT, BodyTooLarge, ByteSize, ProbeResult, ProbeSettings, iter_body, one_line,
)
from model.secrets import scrub_secrets


class PineconeSettings(ProbeSettings):
    """Settings of the ``pinecone`` probe.

    Example::

        - name: vectors
          kind: pinecone
          api_key: ${PINECONE_API_KEY}
          index: codebook-items
          host: https://codebook-items-abc123.svc.aped-1234.pinecone.io

    :ivar api_key: the Pinecone API key.
    :ivar host: the index's data-plane host URL (``https://...``; ``http://127.0.0.1:port`` for
        a local server).
    :ivar index: the index name (a label and a reminder; the host is what is contacted).
    :ivar body_size_limit: bytes of an answer read at most (uncompressed; default 10MiB, ``0`` no
        limit); a larger body fails the probe, read no further.
    """

    kind: Literal["pinecone"] = "pinecone"
    api_key: SecretStr
    host: str = Field(min_length=1)
    index: str = Field(min_length=1)
    body_size_limit: ByteSize = DEFAULT_BODY_SIZE_LIMIT

    def target(self) -> str:
        """Return the index name."""
        return self.index


class _BoundedStream(httpx.AsyncByteStream):
    """A response's body, decoded, that fails past ``limit`` bytes (:func:`probes.base.iter_body`).

    :param raw: a response holding the original stream and headers (so it decodes the body).
    """

    def __init__(self, raw: httpx.Response, limit: int) -> None:
        self._raw: httpx.Response | None = raw
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._raw is not None, "the body was already read"
        async for chunk in iter_body(self._raw, self._limit):
            yield chunk

    async def aclose(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None  # no cycle left through the original response
            await raw.aclose()


def bound_response_bodies(client: httpx.AsyncClient, limit: int) -> None:
    """Make every response ``client`` reads fail with :class:`BodyTooLarge` past ``limit`` bytes.

    A response hook runs before httpx reads the body: it moves the body stream (and the headers
    that describe its encoding) into a :class:`_BoundedStream`, which decodes and counts it.
    """
    async def hook(response: httpx.Response) -> None:
        raw = httpx.Response(response.status_code, headers=response.headers.copy(), stream=response.stream,
                             request=response.request)
        response.stream = _BoundedStream(raw, limit)
        if "content-encoding" in response.headers:  # decoded by the bounded stream already
            del response.headers["content-encoding"]
            response.headers.pop("content-length", None)

    hooks = client.event_hooks
    client.event_hooks = {"request": hooks["request"], "response": [*hooks["response"], hook]}


def open_index(host: str, api_key: SecretStr, timeout: float, body_size_limit: int) -> tuple[Any, bool]:
    """Open the pinecone SDK's ``AsyncIndex`` on ``host`` for one-attempt probing.

    Retries are turned off and the SDK's httpx client is built now and bounded to
    ``body_size_limit`` bytes per answer (see the module docstring).

    :return: ``(index, bounded)``; ``bounded`` is False when an SDK update moved its httpx client
        (the limit is then not enforced).
    """
    from pinecone import AsyncIndex, RetryConfig

    with warnings.catch_warnings():
        # a plain-http host outside loopback warns; the config owner chose it
        warnings.simplefilter("ignore", RuntimeWarning)
        index = AsyncIndex(host=host, api_key=api_key.get_secret_value(), timeout=timeout,
                           source_tag="codebook_monitor")
    http = getattr(index, "_http", None)
    config = getattr(http, "_config", None)
    if http is not None and dataclasses.is_dataclass(config) and not isinstance(config, type) \
            and hasattr(config, "retry_config"):
        # The SDK has no public knob for retries; one probe run must be one request.
        http._config = dataclasses.replace(  # noqa: SLF001 - vendor SDK workaround: disable retries
            config, retry_config=RetryConfig(max_retries=0))
    # The SDK builds its httpx client lazily; build it now (after the retry patch) to bound
    # what it reads. A test fails if an SDK update moves it.
    ensure = getattr(http, "_ensure_client", None)
    client = ensure() if callable(ensure) else None
    if isinstance(client, httpx.AsyncClient):
        if body_size_limit:
            bound_response_bodies(client, body_size_limit)
        return index, True
    return index, False


class PineconeProbe:
    """Read ``describe_index_stats`` of one index through the pinecone SDK."""

    kind: ClassVar[str] = "pinecone"
    Settings: ClassVar[type[ProbeSettings]] = PineconeSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_pinecone_up": "Whether describe_index_stats answered successfully (1) or not (0).",
        "probe_pinecone_auth_ok": "Whether the API key was accepted (0 on HTTP 401/403); "
                                  "absent when the server was not reached.",
        "probe_pinecone_request_duration_seconds": "Seconds the describe_index_stats call took.",
        "probe_pinecone_vectors": "Total vectors in the index across namespaces.",
        "probe_pinecone_index_fullness_ratio": "How full the index is, 0..1, as reported by Pinecone.",
        "probe_pinecone_dimension": "Dimension of the index's dense vectors.",
        "probe_pinecone_namespaces": "Number of namespaces in the index.",
    }

    def __init__(self, settings: PineconeSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        # http_client is not used: the SDK owns its transport (headers, API version).
        self.settings = settings
        self._index: Any = None
        self._bounded = False

    def _open(self) -> Any:
        index, self._bounded = open_index(self.settings.host, self.settings.api_key, self.settings.timeout,
                                          self.settings.body_size_limit)
        return index

    async def run(self) -> ProbeResult:
        """Call ``describe_index_stats`` once and export its figures; see the module docstring."""
        from pinecone.errors import (
            ForbiddenError,
            PineconeConnectionError,
            PineconeError,
            PineconeTimeoutError,
            ServiceError,
            UnauthorizedError,
        )

        s = self.settings
        if self._index is None:
            self._index = self._open()
        result = ProbeResult(False, details={"index": s.index})
        start = time.monotonic()
        reason: str | None = None
        stats = None
        try:
            stats = await self._index.describe_index_stats(timeout=s.timeout)
        except BodyTooLarge as exc:
            reason = f"error: {exc}"
        except (UnauthorizedError, ForbiddenError) as exc:
            result.add("probe_pinecone_auth_ok", 0)
            reason = f"invalid API key (HTTP {exc.status_code})"
        except ServiceError as exc:
            reason = f"outage: HTTP {exc.status_code} {self._message(exc)}".rstrip()
        except PineconeTimeoutError:
            reason = f"outage: timeout after {s.timeout:g}s"
        except PineconeConnectionError as exc:
            reason = f"outage: cannot connect: {self._message(exc)}"
        except PineconeError as exc:
            status = getattr(exc, "status_code", None)
            reason = f"error: {type(exc).__name__}" + (f" HTTP {status}" if status else "") + f": {self._message(exc)}"
        seconds = time.monotonic() - start
        result.add("probe_pinecone_request_duration_seconds", seconds)
        result.details["latency_ms"] = round(seconds * 1000, 1)
        if stats is not None:
            result.success = True
            result.add("probe_pinecone_auth_ok", 1)
            result.add("probe_pinecone_vectors", stats.total_vector_count or 0)
            result.add("probe_pinecone_index_fullness_ratio", stats.index_fullness or 0.0)
            if stats.dimension is not None:
                result.add("probe_pinecone_dimension", stats.dimension)
            result.add("probe_pinecone_namespaces", len(stats.namespaces or {}))
            result.details.update(vectors=stats.total_vector_count, fullness=stats.index_fullness,
                                  dimension=stats.dimension)
        result.add("probe_pinecone_up", 1 if result.success else 0)
        if not self._bounded:
            result.logs.append("body_size_limit not enforced: the pinecone SDK's httpx client was not found")
        if reason:
            result.error = scrub_secrets(reason, s.api_key)
        return result

    def _message(self, exc: BaseException) -> str:
        text = str(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
        if "<" in text and ">" in text:  # a proxy's HTML error page: keep its words, not its markup
            text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.S | re.I)
        return scrub_secrets(one_line(text, 160), self.settings.api_key)

    async def close(self) -> None:
        """Close the SDK's index client (its connection pool)."""
        if self._index is not None:
            await self._index.close()
            self._index = None
