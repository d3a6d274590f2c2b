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
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from probes.base import ProbeResult, ProbeSettings, one_line
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
    """

    kind: Literal["pinecone"] = "pinecone"
    api_key: SecretStr
    host: str = Field(min_length=1)
    index: str = Field(min_length=1)

    def target(self) -> str:
        """Return the index name."""
        return self.index


class PineconeProbe:
    """Read ``describe_index_stats`` of one index through the pinecone SDK."""

    kind: ClassVar[str] = "pinecone"
    Settings: ClassVar[type[ProbeSettings]] = PineconeSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_pinecone_up": "Whether describe_index_stats answered successfully (1) or not (0).",
        "probe_pinecone_auth_ok": "Whether the API key was accepted (0 on HTTP 401/403); "
                                  "absent when the server was not reached.",
        "probe_pinecone_request_duration_seconds": "Seconds the describe_index_stats call took.",
        "probe_pinecone_vector_count": "Total vectors in the index across namespaces.",
        "probe_pinecone_index_fullness_ratio": "How full the index is, 0..1, as reported by Pinecone.",
        "probe_pinecone_dimension": "Dimension of the index's dense vectors.",
        "probe_pinecone_namespaces": "Number of namespaces in the index.",
    }

    def __init__(self, settings: PineconeSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        # http_client is not used: the SDK owns its transport (headers, API version).
        self.settings = settings
        self._index: Any = None

    def _open(self) -> Any:
        from pinecone import AsyncIndex, RetryConfig

        with warnings.catch_warnings():
            # a plain-http host outside loopback warns; the config owner chose it
            warnings.simplefilter("ignore", RuntimeWarning)
            index = AsyncIndex(host=self.settings.host, api_key=self.settings.api_key.get_secret_value(),
                               timeout=self.settings.timeout, source_tag="codebook_monitor")
        http = getattr(index, "_http", None)
        config = getattr(http, "_config", None)
        if http is not None and dataclasses.is_dataclass(config) and not isinstance(config, type) \
                and hasattr(config, "retry_config"):
            # The SDK has no public knob for retries; one probe run must be one request.
            http._config = dataclasses.replace(  # noqa: SLF001 - vendor SDK workaround: disable retries
                config, retry_config=RetryConfig(max_retries=0))
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
            result.add("probe_pinecone_vector_count", stats.total_vector_count or 0)
            result.add("probe_pinecone_index_fullness_ratio", stats.index_fullness or 0.0)
            if stats.dimension is not None:
                result.add("probe_pinecone_dimension", stats.dimension)
            result.add("probe_pinecone_namespaces", len(stats.namespaces or {}))
            result.details.update(vectors=stats.total_vector_count, fullness=stats.index_fullness,
                                  dimension=stats.dimension)
        result.add("probe_pinecone_up", 1 if result.success else 0)
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
