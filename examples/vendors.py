"""Stand-ins for the backend's vendors, so the demo's Pinecone and LLM probes have something to watch.

Served by the sample backend next to its own routes, in the vendors' real wire shapes:

- ``GET /v1/models`` — OpenAI-compatible (``Authorization: Bearer KEY``) or Anthropic
  (``x-api-key: KEY`` with ``anthropic-version``) model list, chosen by the headers sent.
- ``POST /describe_index_stats`` — Pinecone's data-plane index stats (``Api-Key: KEY``), so
  ``Pinecone(api_key=...).Index(host="http://127.0.0.1:PORT").describe_index_stats()`` works.

Any non-empty key is accepted except one starting with ``invalid`` (answered 401, as a revoked
key would be). Faults: ``vendor_status`` forces a status (e.g. ``{"llm": 429}``), and an
unhealthy ``llm`` / ``pinecone`` check answers 503.
"""

from __future__ import annotations

from typing import Callable

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


def vendor_routes(get_faults: Callable[[], Faults]) -> list[Route]:
    """Return the stand-in vendor routes, reading the current faults through ``get_faults``."""

    async def models(request: Request) -> JSONResponse:
        anthropic = "x-api-key" in request.headers or "anthropic-version" in request.headers
        if anthropic:
            key = request.headers.get("x-api-key", "")
        else:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key or key.startswith("invalid"):
            return _llm_error(anthropic, 401, "invalid x-api-key" if anthropic else "Incorrect API key provided.")
        forced = _forced_status(get_faults(), "llm", "llm")
        if forced is not None and forced >= 300:
            return _llm_error(anthropic, forced, f"stand-in LLM provider answering {forced} (fault injected)")
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

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/describe_index_stats", describe_index_stats, methods=["POST", "GET"]),
    ]
