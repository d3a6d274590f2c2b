"""The ``llm`` probe: is the LLM provider reachable and does our API key work — without paying.

It lists models (``GET {base_url}/models``), which costs no tokens, with the provider's real
authentication:

- ``openai`` (and OpenAI-compatible servers): ``Authorization: Bearer <key>``, default base URL
  ``https://api.openai.com/v1``; a success body is ``{"object": "list", "data": [{"id": ...,
  "object": "model", ...}]}``.
- ``anthropic``: ``x-api-key: <key>`` and ``anthropic-version: 2023-06-01``, default base URL
  ``https://api.anthropic.com/v1``; a success body is ``{"data": [{"id": ..., "type": "model",
  ...}], "has_more": ..., "first_id": ..., "last_id": ...}``.

Errors of both look like ``{"error": {"type": ..., "message": ...}}`` (Anthropic wraps it in
``{"type": "error", ...}``). The outcome is classified into one ``state``:

======================  ==========================================================
``ok``                  2xx with a model list (and ``expect_model`` listed, if set)
``invalid_key``         401 or 403
``rate_limited``        429
``outage``              5xx, timeout, connection error
``error``               anything else (other 4xx, a 200 that is not a model list,
                        ``expect_model`` missing, a body over ``body_size_limit``)
======================  ==========================================================

Only ``ok`` is a success. ``probe_llm_state{state}`` is exported for every state (1 for the
current one, 0 for the others), after prometheus_client's ``Enum`` metric.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from probes.base import (
    DEFAULT_BODY_SIZE_LIMIT, BodyTooLarge, ByteSize, HttpUrl, ProbeResult, ProbeSettings, one_line, read_body,
    transport_reason,
)
from model.secrets import scrub_secrets, secret_prefix

STATES = ("ok", "invalid_key", "rate_limited", "outage", "error")
_DEFAULT_BASE = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1"}


def classify_status(status: int) -> str:
    """Map an HTTP status of the models list to a state (``ok``, ``invalid_key``, ...)."""
    if 200 <= status < 300:
        return "ok"
    if status in (401, 403):
        return "invalid_key"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "outage"
    return "error"


class LlmSettings(ProbeSettings):
    """Settings of the ``llm`` probe.

    Example::

        - name: openai
          kind: llm
          provider: openai
          api_key: ${OPENAI_API_KEY}
          expect_model: gpt-4o-mini

    :ivar provider: ``openai`` or ``anthropic`` (decides headers and default base URL).
    :ivar api_key: the provider API key.
    :ivar base_url: API root including the version segment, e.g. ``https://api.openai.com/v1``;
        the probe requests ``{base_url}/models``.
    :ivar anthropic_version: value of the ``anthropic-version`` header.
    :ivar expect_model: optional model id that must be listed (first page only).
    :ivar body_size_limit: bytes of the answer read at most (uncompressed; default 10MiB, ``0`` no
        limit); a larger body is state ``error``, read no further (blackbox_exporter's setting).
    """

    kind: Literal["llm"] = "llm"
    provider: Literal["openai", "anthropic"]
    api_key: SecretStr
    base_url: HttpUrl | None = None
    anthropic_version: str = "2023-06-01"
    expect_model: str | None = None
    body_size_limit: ByteSize = DEFAULT_BODY_SIZE_LIMIT

    def resolved_base_url(self) -> str:
        """Return the base URL, the provider's default when unset, without a trailing slash."""
        return (self.base_url or _DEFAULT_BASE[self.provider]).rstrip("/")

    def target(self) -> str:
        """Return the provider's base URL."""
        return self.resolved_base_url()


class LlmProbe:
    """List the provider's models to check reachability and API-key validity."""

    kind: ClassVar[str] = "llm"
    Settings: ClassVar[type[ProbeSettings]] = LlmSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_llm_up": "Whether the provider answered the models list with 2xx and a model list (1) or not (0).",
        "probe_llm_http_status_code": "HTTP status code of the models list request (0 when no response).",
        "probe_llm_state": ("Outcome of the check, one series per state (ok, invalid_key, rate_limited, "
                            "outage, error); 1 marks the current one."),
        "probe_llm_request_duration_seconds": "Seconds the models list request took.",
        "probe_llm_models": "Number of models listed (first page).",
    }

    def __init__(self, settings: LlmSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = http_client
        self._own_client = http_client is None

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key.get_secret_value()
        if self.settings.provider == "anthropic":
            return {"x-api-key": key, "anthropic-version": self.settings.anthropic_version,
                    "accept": "application/json"}
        return {"Authorization": f"Bearer {key}", "accept": "application/json"}

    async def run(self) -> ProbeResult:
        """Request the models list and classify the answer; see the module docstring."""
        s = self.settings
        if self._client is None:
            self._client = httpx.AsyncClient()
        url = s.resolved_base_url() + "/models"
        result = ProbeResult(False, details={"provider": s.provider, "key": secret_prefix(s.api_key)})
        start = time.monotonic()
        status = 0
        reason: str | None
        resp: httpx.Response | None = None
        try:
            async with asyncio.timeout(s.timeout):  # the whole exchange, a slowly dripping body included
                resp = await self._client.send(
                    self._client.build_request("GET", url, headers=self._headers(), timeout=s.timeout), stream=True)
                try:
                    body = await read_body(resp, s.body_size_limit)
                finally:
                    await resp.aclose()
        except (httpx.TimeoutException, TimeoutError):
            state, reason = "outage", f"timeout after {s.timeout:g}s"
        except (BodyTooLarge, httpx.DecodingError) as exc:
            state, reason = "error", f"{one_line(str(exc))} (HTTP {resp.status_code if resp is not None else 0})"
        except httpx.HTTPError as exc:
            state, reason = "outage", f"cannot connect: {transport_reason(exc)}"
        else:
            state, reason = self._judge(resp, body, result)
        if resp is not None:
            status = resp.status_code
        seconds = time.monotonic() - start
        result.add("probe_llm_request_duration_seconds", seconds)
        result.add("probe_llm_http_status_code", status)
        result.add("probe_llm_up", 1 if state == "ok" else 0)
        for name in STATES:
            result.add("probe_llm_state", 1 if name == state else 0, state=name)
        result.details.update(state=state, status=status, latency_ms=round(seconds * 1000, 1))
        result.success = state == "ok"
        if reason:
            result.error = scrub_secrets(f"{state}: {reason}", s.api_key)
        return result

    def _judge(self, resp: httpx.Response, raw: bytes, result: ProbeResult) -> tuple[str, str | None]:
        state = classify_status(resp.status_code)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        if state != "ok":
            words = {"invalid_key": "invalid API key", "rate_limited": "rate limited", "outage": "provider error"}
            reason = f"{words.get(state, 'unexpected response')} (HTTP {resp.status_code}"
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                kind = err.get("type") or err.get("code")
                message = err.get("message")
                reason += f", {kind}" if kind else ""
                reason += f": {one_line(str(message), 120)}" if message else ""
            if state == "rate_limited" and resp.headers.get("retry-after"):
                reason += f", retry-after {resp.headers['retry-after']}s"
            return state, reason + ")"
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return "error", f"HTTP {resp.status_code} but the body is not a model list"
        ids = [m.get("id") for m in data if isinstance(m, dict)]
        result.add("probe_llm_models", len(ids))
        result.details["models"] = len(ids)
        want = self.settings.expect_model
        if want and want not in ids:
            return "error", f"model {want!r} not listed"
        return "ok", None

    async def close(self) -> None:
        """Close the HTTP client if this probe created it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
