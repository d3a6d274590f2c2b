"""Stand-ins for the backend's vendors, so the demo's Pinecone and LLM probes have something to watch.

Served by the sample backend next to its own routes, in the vendors' real wire shapes:

- ``GET /v1/models`` — OpenAI-compatible (``Authorization: Bearer KEY``) or Anthropic
  (``x-api-key: KEY`` with ``anthropic-version``) model list, chosen by the headers sent. As
  the real ones, it carries no rate-limit headers.
- ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic) — a one-word
  completion with ``usage``, and the providers' rate-limit headers: OpenAI's
  ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a Go duration, ``59.9s``,
  ``120ms``) and Anthropic's ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
  {limit,remaining,reset}`` (reset as RFC 3339). A window of one minute per provider and key,
  drawn down by each request's tokens (:class:`RateWindow`).
- ``POST /v1/embeddings`` — OpenAI's embeddings (``float`` or ``base64`` encoding, as the
  openai SDK asks), a deterministic unit vector per text (:func:`embed`), with the headers too.
- ``POST /describe_index_stats`` — Pinecone's data-plane index stats (``Api-Key: KEY``), so
  ``Pinecone(api_key=...).Index(host="http://127.0.0.1:PORT").describe_index_stats()`` works.
- ``POST /query`` — Pinecone's query by vector over :data:`RAG_RECORDS` (the canary record
  ``rag-canary`` holds the embedding of :data:`RAG_CANARY_TEXT`), cosine scores, best first.

Any non-empty key is accepted except one starting with ``invalid`` (answered 401, as a revoked
key would be). Faults: ``vendor_status`` forces a status (e.g. ``{"llm": 429}``), and an
unhealthy ``llm`` / ``pinecone`` check answers 503.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
import time
from datetime import datetime, timezone
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples.faults import Faults

OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")
ANTHROPIC_MODELS = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)
PINECONE_DIMENSION = 1536
PINECONE_NAMESPACES = {"acme": 48_210, "globex": 21_034, "initech": 5_377}

_ANTHROPIC_ERRORS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {401: "invalid_api_key", 403: "unsupported_country_region_territory", 429: "rate_limit_exceeded"}

#: Per-minute limits of the stand-ins: (requests, tokens); Anthropic splits tokens into input/output.
OPENAI_LIMITS = (500, 200_000)
ANTHROPIC_LIMITS = (50, 50_000, 40_000, 10_000)  # requests, tokens, input-tokens, output-tokens
RAG_CANARY_TEXT = "codebook-monitor RAG canary: interview transcripts coded for onboarding friction"
RAG_NAMESPACE = "canary"


def embed(text: str, dimension: int = PINECONE_DIMENSION) -> list[float]:
    """Return the stand-in's embedding of ``text``: a unit vector seeded by the text's SHA-256,
    so the same text always gets the same vector and two different texts are nearly orthogonal."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimension)]
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


#: The stand-in index's records in namespace :data:`RAG_NAMESPACE`: the canary and a few others.
RAG_RECORDS: dict[str, tuple[str, dict[str, Any]]] = {
    "rag-canary": (RAG_CANARY_TEXT, {"kind": "canary"}),
    **{f"item-{i}": (f"sample codebook item {i}", {"kind": "item"}) for i in range(1, 6)},
}


def go_duration(seconds: float) -> str:
    """Format seconds as Go's ``time.Duration.String`` does for the sizes OpenAI sends:
    ``120ms``, ``6.5s``, ``1m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class RateWindow:
    """A provider's one-minute rate-limit window per API key: counts requests and tokens.

    :param limits: the per-minute limits, in the provider's resource order.
    :param clock: Unix time (injectable).
    """

    def __init__(self, limits: tuple[int, ...], clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._used: dict[str, tuple[float, list[int]]] = {}

    def draw(self, key: str, amounts: tuple[int, ...]) -> tuple[list[int], float]:
        """Count one request's ``amounts``; return ``(remaining per resource, window end time)``."""
        now = self._clock()
        start, used = self._used.get(key, (now, [0] * len(self.limits)))
        if now - start >= 60:
            start, used = now, [0] * len(self.limits)
        used = [u + a for u, a in zip(used, amounts)]
        self._used[key] = (start, used)
        return [max(lim - u, 0) for lim, u in zip(self.limits, used)], start + 60

    def openai_headers(self, key: str, tokens: int) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers after one request of ``tokens``."""
        (req, tok), end = self.draw(key, (1, tokens))
        left = max(end - self._clock(), 0.0)
        return {"x-ratelimit-limit-requests": str(self.limits[0]), "x-ratelimit-limit-tokens": str(self.limits[1]),
                "x-ratelimit-remaining-requests": str(req), "x-ratelimit-remaining-tokens": str(tok),
                "x-ratelimit-reset-requests": go_duration(left / max(self.limits[0], 1)),
                "x-ratelimit-reset-tokens": go_duration(left)}

    def anthropic_headers(self, key: str, input_tokens: int, output_tokens: int) -> dict[str, str]:
        """Anthropic's ``anthropic-ratelimit-*`` headers after one request."""
        remaining, end = self.draw(key, (1, input_tokens + output_tokens, input_tokens, output_tokens))
        reset = datetime.fromtimestamp(math.ceil(end), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {}
        for name, limit, left in zip(("requests", "tokens", "input-tokens", "output-tokens"), self.limits, remaining):
            headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(left)
            headers[f"anthropic-ratelimit-{name}-reset"] = reset
        return headers


def _forced_status(faults: Faults, vendor: str, check: str) -> int | None:
    """Return the status a vendor must answer with under the current faults, or None."""
    if vendor in faults.vendor_status:
        return faults.vendor_status[vendor]
    if faults.check_states()[check] == "unhealthy":
        return 503
    return None


def _llm_error(anthropic: bool, status: int, message: str) -> JSONResponse:
    """Build an error body in the provider's own shape."""
    if anthropic:
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status)
    code = _OPENAI_ERRORS.get(status)
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": code}}
    headers = {"retry-after": "20"} if status == 429 else None
    return JSONResponse(body, status, headers=headers)


def _llm_key(request: Request) -> tuple[bool, str]:
    """Return ``(anthropic?, API key)`` from the request's auth headers."""
    anthropic = "x-api-key" in request.headers or "anthropic-version" in request.headers
    if anthropic:
        return True, request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    return False, auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _count_tokens(text: str) -> int:
    """Count tokens as a stand-in tokenizer would: about four characters a token, at least one."""
    return max(1, math.ceil(len(text) / 4))


def vendor_routes(get_faults: Callable[[], Faults], clock: Callable[[], float] = time.time) -> list[Route]:
    """Return the stand-in vendor routes, reading the current faults through ``get_faults``.

    :param clock: Unix time of the rate-limit windows (injectable).
    """
    openai_window = RateWindow(OPENAI_LIMITS, clock)
    anthropic_window = RateWindow(ANTHROPIC_LIMITS, clock)
    index = {rid: (embed(text), meta) for rid, (text, meta) in RAG_RECORDS.items()}

    def refused(anthropic: bool, key: str) -> JSONResponse | None:
        if not key or key.startswith("invalid"):
            return _llm_error(anthropic, 401, "invalid x-api-key" if anthropic else "Incorrect API key provided.")
        forced = _forced_status(get_faults(), "llm", "llm")
        if forced is not None and forced >= 300:
            return _llm_error(anthropic, forced, f"stand-in LLM provider answering {forced} (fault injected)")
        return None

    async def models(request: Request) -> JSONResponse:
        anthropic, key = _llm_key(request)
        if (error := refused(anthropic, key)) is not None:
            return error
        if anthropic:
            data = [{"type": "model", "id": mid, "display_name": name, "created_at": created}
                    for mid, name, created in ANTHROPIC_MODELS]
            return JSONResponse({"data": data, "has_more": False,
                                 "first_id": data[0]["id"], "last_id": data[-1]["id"]})
        data = [{"id": mid, "object": "model", "created": 1715367049, "owned_by": "system"}
                for mid in OPENAI_MODELS]
        return JSONResponse({"object": "list", "data": data})

    async def describe_index_stats(request: Request) -> JSONResponse:
        key = request.headers.get("api-key", "")
        if not key or key.startswith("invalid"):
            return JSONResponse({"code": 16, "message": "Invalid API Key", "details": []}, 401)
        forced = _forced_status(get_faults(), "pinecone", "pinecone")
        if forced is not None and forced >= 300:
            return JSONResponse({"code": 14, "message": f"stand-in Pinecone answering {forced} (fault injected)",
                                 "details": []}, forced)
        namespaces = {name: {"vectorCount": count} for name, count in PINECONE_NAMESPACES.items()}
        total = sum(PINECONE_NAMESPACES.values())
        return JSONResponse({
            "namespaces": namespaces,
            "dimension": PINECONE_DIMENSION,
            "indexFullness": 0.0,
            "totalVectorCount": total,
            "metric": "cosine",
            "vectorType": "dense",
        })

    async def chat_completions(request: Request) -> JSONResponse:
        _, key = _llm_key(request)
        if (error := refused(False, key)) is not None:
            return error
        body = await request.json()
        prompt = sum(_count_tokens(str(m.get("content", ""))) + 4 for m in body.get("messages", []))
        completion = min(int(body.get("max_completion_tokens") or body.get("max_tokens") or 16), 1)
        return JSONResponse({
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(clock()),
            "model": body.get("model"), "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": None},
                         "logprobs": None, "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }, headers=openai_window.openai_headers(key, prompt + completion))

    async def messages(request: Request) -> JSONResponse:
        _, key = _llm_key(request)
        if (error := refused(True, key)) is not None:
            return error
        body = await request.json()
        prompt = sum(_count_tokens(str(m.get("content", ""))) + 3 for m in body.get("messages", []))
        completion = min(int(body.get("max_tokens") or 1), 1)
        return JSONResponse({
            "id": "msg_standin", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [{"type": "text", "text": "Hello"}], "stop_reason": "max_tokens", "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }, headers=anthropic_window.anthropic_headers(key, prompt, completion))

    async def embeddings(request: Request) -> JSONResponse:
        _, key = _llm_key(request)
        if (error := refused(False, key)) is not None:
            return error
        body = await request.json()
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dimension = int(body.get("dimensions") or PINECONE_DIMENSION)
        data = []
        for i, text in enumerate(texts):
            vector = embed(str(text), dimension)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(_count_tokens(str(t)) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": body.get("model"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                            headers=openai_window.openai_headers(key, tokens))

    async def query(request: Request) -> JSONResponse:
        key = request.headers.get("api-key", "")
        if not key or key.startswith("invalid"):
            return JSONResponse({"code": 16, "message": "Invalid API Key", "details": []}, 401)
        forced = _forced_status(get_faults(), "pinecone", "pinecone")
        if forced is not None and forced >= 300:
            return JSONResponse({"code": 14, "message": f"stand-in Pinecone answering {forced} (fault injected)",
                                 "details": []}, forced)
        body = await request.json()
        vector = body.get("vector") or []
        if len(vector) != PINECONE_DIMENSION:
            return JSONResponse({"code": 3, "message": f"Vector dimension {len(vector)} does not match the "
                                                       f"dimension of the index {PINECONE_DIMENSION}",
                                 "details": []}, 400)
        namespace = body.get("namespace") or ""
        records = index if namespace == RAG_NAMESPACE else {}
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        scored = sorted(((sum(a * b for a, b in zip(vector, values)) / norm, rid, meta)
                         for rid, (values, meta) in records.items()), reverse=True)
        matches = []
        for score, rid, meta in scored[:int(body.get("topK") or 10)]:
            match: dict[str, Any] = {"id": rid, "score": round(score, 6), "values": []}
            if body.get("includeMetadata"):
                match["metadata"] = meta
            matches.append(match)
        return JSONResponse({"results": [], "matches": matches, "namespace": namespace,
                             "usage": {"readUnits": 5}})

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/describe_index_stats", describe_index_stats, methods=["POST", "GET"]),
        Route("/query", query, methods=["POST"]),
    ]
