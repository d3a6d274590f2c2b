"""The ``rag`` probe: the backend's retrieval path end to end, one step at a time, with a canary.

One run:

1. ``embed`` — embeds the fixed ``canary_text`` through the OpenAI embeddings API with the
   official ``openai`` SDK (``AsyncOpenAI.embeddings.create``; on the wire ``POST
   {base_url}/embeddings`` answered by ``{"data": [{"embedding": [...]}], "usage":
   {"prompt_tokens": n}}``);
2. ``query`` — queries the Pinecone index with that vector through the official ``pinecone`` SDK
   (``AsyncIndex.query``; ``POST {host}/query`` answered by ``{"matches": [{"id", "score"}]}``),
   ``top_k`` matches in ``namespace``;
3. ``check`` — the known canary record ``canary_id`` must come back first with a score of at
   least ``min_score`` (the index's similarity metric, e.g. cosine: 1.0 for the same text).

The canary record is one you upsert once into the index (in its own namespace, so it never shows
in your users' results) with the embedding of ``canary_text``; a changed embedding model, a
re-created or emptied index, or a broken upsert path all show as a failed ``check``.

Each step's latency is ``probe_rag_step_duration_seconds{step}`` and its outcome
``probe_rag_step_success{step}``; ``probe_rag_duration_seconds`` is the end-to-end latency.
The embedding call is also measured under the OpenTelemetry GenAI names (:mod:`probes.genai`,
operation ``embeddings``). Both SDKs are told to make one attempt (no retries), with the probe's
timeout, and read at most ``body_size_limit`` bytes per answer.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from model.secrets import scrub_secrets
from probes import genai
from probes.base import (
    DEFAULT_BODY_SIZE_LIMIT, BodyTooLarge, ByteSize, HttpUrl, ProbeResult, ProbeSettings, one_line,
)
from probes.pinecone import bound_response_bodies, open_index

STEPS = ("embed", "query", "check")


class RagSettings(ProbeSettings):
    """Settings of the ``rag`` probe.

    Example::

        - name: rag
          kind: rag
          openai_api_key: ${OPENAI_API_KEY}
          embedding_model: text-embedding-3-small
          pinecone_api_key: ${PINECONE_API_KEY}
          pinecone_host: https://codebook-items-abc123.svc.aped-1234.pinecone.io
          namespace: canary
          canary_id: rag-canary
          canary_text: "codebook-monitor RAG canary: ..."
          min_score: 0.95

    :ivar openai_api_key: the OpenAI (or OpenAI-compatible) API key of the embeddings call.
    :ivar openai_base_url: API root including ``/v1`` (default ``https://api.openai.com/v1``).
    :ivar embedding_model: the embedding model the backend uses.
    :ivar dimensions: optional ``dimensions`` of the embeddings request (text-embedding-3 models).
    :ivar pinecone_api_key: the Pinecone API key.
    :ivar pinecone_host: the index's data-plane host URL.
    :ivar namespace: the namespace holding the canary record.
    :ivar canary_id: id of the canary record.
    :ivar canary_text: the text whose embedding the canary record holds.
    :ivar min_score: lowest acceptable similarity score of the canary (0..1 for cosine).
    :ivar top_k: matches requested (the canary must be the first).
    :ivar body_size_limit: bytes read at most per answer (default 10MiB, ``0`` no limit).
    """

    kind: Literal["rag"] = "rag"
    openai_api_key: SecretStr
    openai_base_url: HttpUrl | None = None
    embedding_model: str = "text-embedding-3-small"
    dimensions: int | None = Field(default=None, gt=0)
    pinecone_api_key: SecretStr
    pinecone_host: HttpUrl
    namespace: str = ""
    canary_id: str = Field(min_length=1)
    canary_text: str = Field(min_length=1)
    min_score: float = 0.9
    top_k: int = Field(default=3, ge=1, le=100)
    body_size_limit: ByteSize = DEFAULT_BODY_SIZE_LIMIT

    def target(self) -> str:
        """Return the Pinecone host: the end of the path."""
        return self.pinecone_host


class RagProbe:
    """Embed the canary text, query Pinecone with it, check the canary comes back first."""

    kind: ClassVar[str] = "rag"
    Settings: ClassVar[type[ProbeSettings]] = RagSettings
    HISTOGRAMS: ClassVar[frozenset[str]] = genai.HISTOGRAMS
    METRICS: ClassVar[dict[str, str]] = {
        "probe_rag_up": "Whether the whole RAG path worked and the canary came back first above min_score (1).",
        "probe_rag_step_success": "Whether a step of the RAG path (embed, query, check) succeeded (1) or not (0).",
        "probe_rag_step_duration_seconds": "Seconds a step of the RAG path (embed, query) took.",
        "probe_rag_duration_seconds": "Seconds the whole RAG path took (embed and query).",
        "probe_rag_canary_score": "Similarity score of the canary record in the query's matches.",
        "probe_rag_canary_rank": "Position of the canary record in the matches (1 = first, 0 = not returned).",
        **genai.METRICS,
    }

    def __init__(self, settings: RagSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        # http_client is not used: each SDK gets its own client, bounded to body_size_limit.
        self.settings = settings
        self._openai: Any = None
        self._openai_http: httpx.AsyncClient | None = None
        self._index: Any = None
        self._genai = genai.GenAiMetrics()

    def _open(self) -> None:
        from openai import AsyncOpenAI

        s = self.settings
        if self._openai is None:
            self._openai_http = httpx.AsyncClient(timeout=s.timeout)
            if s.body_size_limit:
                bound_response_bodies(self._openai_http, s.body_size_limit)
            self._openai = AsyncOpenAI(api_key=s.openai_api_key.get_secret_value(), base_url=s.openai_base_url,
                                       timeout=s.timeout, max_retries=0,
                                       # the SDK takes an httpx (not only httpx2) client: is_legacy_httpx_async_client
                                       http_client=self._openai_http)  # type: ignore[arg-type]
        if self._index is None:
            self._index, _ = open_index(s.pinecone_host, s.pinecone_api_key, s.timeout, s.body_size_limit)

    async def run(self) -> ProbeResult:
        """Run the three steps; see the module docstring. Fails at the first failing step."""
        s = self.settings
        self._open()
        result = ProbeResult(False, details={"namespace": s.namespace, "canary": s.canary_id})
        start = time.monotonic()
        try:
            vector = await self._embed(result)
            matches = await self._query(result, vector) if vector is not None else None
            if matches is not None:
                self._check(result, matches)
        finally:
            total = time.monotonic() - start
            result.add("probe_rag_duration_seconds", total)
            result.add("probe_rag_up", 1 if result.success else 0)
            self._genai.emit(result)
            result.details["latency_ms"] = round(total * 1000, 1)
        if result.error:
            result.error = scrub_secrets(result.error, s.openai_api_key, s.pinecone_api_key)
        return result

    def _step(self, result: ProbeResult, step: str, ok: bool, seconds: float | None = None,
              reason: str | None = None) -> None:
        result.add("probe_rag_step_success", 1 if ok else 0, step=step)
        if seconds is not None:
            result.add("probe_rag_step_duration_seconds", seconds, step=step)
            result.details[f"{step}_ms"] = round(seconds * 1000, 1)
        if not ok:
            result.error = f"{step}: {reason}"

    async def _embed(self, result: ProbeResult) -> list[float] | None:
        import openai

        s = self.settings
        extra: dict[str, Any] = {"dimensions": s.dimensions} if s.dimensions else {}
        start = time.monotonic()
        reason = error_type = None
        vector: list[float] | None = None
        tokens = None
        try:
            resp = await self._openai.embeddings.create(model=s.embedding_model, input=s.canary_text, **extra)
            vector = list(resp.data[0].embedding) if resp.data else None
            tokens = resp.usage.prompt_tokens if resp.usage else None
            if not vector:
                reason, error_type = "the answer holds no embedding", "empty"
        except openai.APIStatusError as exc:
            word = {401: "invalid API key", 403: "invalid API key", 429: "rate limited"}.get(exc.status_code)
            reason = f"{word or 'HTTP error'} (HTTP {exc.status_code}): {one_line(str(exc.message), 120)}"
            error_type = str(exc.status_code)
        except openai.APITimeoutError:
            reason, error_type = f"timeout after {s.timeout:g}s", "timeout"
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, BodyTooLarge):
                reason, error_type = str(cause), "body_too_large"
            else:
                reason, error_type = f"cannot connect: {one_line(str(cause or exc), 160)}", "connection"
        except (BodyTooLarge, ValueError) as exc:
            reason, error_type = one_line(str(exc)), type(exc).__name__
        seconds = time.monotonic() - start
        self._genai.record(operation="embeddings", provider="openai", model=s.embedding_model, seconds=seconds,
                           input_tokens=tokens if isinstance(tokens, int) else None, error_type=error_type)
        self._step(result, "embed", reason is None, seconds, reason)
        return vector if reason is None else None

    async def _query(self, result: ProbeResult, vector: list[float]) -> list[Any] | None:
        from pinecone.errors import ForbiddenError, PineconeError, PineconeTimeoutError, UnauthorizedError

        s = self.settings
        start = time.monotonic()
        reason = None
        matches: list[Any] | None = None
        try:
            resp = await self._index.query(vector=vector, top_k=s.top_k, namespace=s.namespace,
                                           include_values=False, include_metadata=False)
            matches = list(resp.matches or [])
        except (UnauthorizedError, ForbiddenError) as exc:
            reason = f"invalid API key (HTTP {exc.status_code})"
        except PineconeTimeoutError:
            reason = f"timeout after {s.timeout:g}s"
        except BodyTooLarge as exc:
            reason = str(exc)
        except PineconeError as exc:
            status = getattr(exc, "status_code", None)
            message = one_line(str(getattr(exc, "message", None) or exc), 160)
            reason = (f"HTTP {status}: " if status else f"{type(exc).__name__}: ") + message
        self._step(result, "query", reason is None, time.monotonic() - start, reason)
        return matches if reason is None else None

    def _check(self, result: ProbeResult, matches: list[Any]) -> None:
        s = self.settings
        ids = [m.id for m in matches]
        rank = ids.index(s.canary_id) + 1 if s.canary_id in ids else 0
        result.add("probe_rag_canary_rank", rank)
        reason = None
        if rank:
            score = float(matches[rank - 1].score or 0.0)
            result.add("probe_rag_canary_score", score)
            result.details["score"] = round(score, 4)
            if rank != 1:
                reason = f"canary {s.canary_id!r} ranked {rank}, after {ids[0]!r}"
            elif score < s.min_score:
                reason = f"canary score {score:.4f} below min_score {s.min_score:g}"
        else:
            reason = f"canary {s.canary_id!r} not in the top {s.top_k} matches" + (
                f" (first: {ids[0]!r})" if ids else " (no matches)")
        self._step(result, "check", reason is None, None, reason)
        result.success = reason is None

    async def close(self) -> None:
        """Close both SDK clients."""
        if self._openai is not None:
            await self._openai.close()
            self._openai = None
        if self._openai_http is not None:
            await self._openai_http.aclose()
            self._openai_http = None
        if self._index is not None:
            await self._index.close()
            self._index = None
