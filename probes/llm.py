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

Rate-limit headroom (:mod:`probes.ratelimit`): the provider's rate-limit headers of the last
answer are exported per ``resource`` (remaining, limit, their ratio, the reset time). The models
list of the real providers carries none, so ``completion_model`` turns on the cheapest possible
request after a good models list — one user message ``Hi`` and at most 1 output token
(``POST {base_url}/chat/completions`` with ``max_completion_tokens: 1``, or Anthropic's
``POST {base_url}/messages`` with ``max_tokens: 1``) — whose answer carries them; its outcome
is classified as above (a 429 is ``rate_limited``). That request is also measured under the
OpenTelemetry GenAI names (:mod:`probes.genai`, operation ``chat``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, ClassVar, Literal

import httpx
from pydantic import SecretStr

from model.duration import PositiveDuration
from probes.base import (
    DEFAULT_BODY_SIZE_LIMIT, BodyTooLarge, ByteSize, HttpUrl, ProbeResult, ProbeSettings, one_line, read_body,
    transport_reason,
)
from model.secrets import scrub_secrets, secret_prefix
from probes import genai
from probes.ratelimit import export_ratelimits, parse_ratelimits

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


class _BadBody(Exception):
    """A response body over ``body_size_limit`` or undecodable: ``args`` is ``(reason naming the
    status, the httpx.Response)``."""


class LlmSettings(ProbeSettings):
    """Settings of the ``llm`` probe.

    Example::

        - name: openai
          kind: llm
          provider: openai
          api_key: ${OPENAI_API_KEY}
          expect_model: gpt-4o-mini
          completion_model: gpt-4o-mini   # optional: 1-token request for the rate-limit headers

    :ivar provider: ``openai`` or ``anthropic`` (decides headers and default base URL).
    :ivar api_key: the provider API key.
    :ivar base_url: API root including the version segment, e.g. ``https://api.openai.com/v1``;
        the probe requests ``{base_url}/models``.
    :ivar anthropic_version: value of the ``anthropic-version`` header.
    :ivar expect_model: optional model id that must be listed (first page only).
    :ivar body_size_limit: bytes of the answer read at most (uncompressed; default 10MiB, ``0`` no
        limit); a larger body is state ``error``, read no further (blackbox_exporter's setting).
    :ivar completion_model: when set, the model of the cheapest possible request (1 output token)
        sent after a good models list, for its rate-limit headers; off by default (it costs tokens).
    :ivar ratelimit_horizon: how far ahead ``LLMProviderTokenLimitExhaustionSoon`` looks (default
        1h), exported as ``probe_llm_ratelimit_horizon_seconds{resource}``.
    """

    kind: Literal["llm"] = "llm"
    provider: Literal["openai", "anthropic"]
    api_key: SecretStr
    base_url: HttpUrl | None = None
    anthropic_version: str = "2023-06-01"
    expect_model: str | None = None
    body_size_limit: ByteSize = DEFAULT_BODY_SIZE_LIMIT
    completion_model: str | None = None
    ratelimit_horizon: PositiveDuration = 3600.0

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
    HISTOGRAMS: ClassVar[frozenset[str]] = genai.HISTOGRAMS
    METRICS: ClassVar[dict[str, str]] = {
        "probe_llm_up": "Whether the provider answered the models list with 2xx and a model list (1) or not (0).",
        "probe_llm_http_status_code": "HTTP status code of the models list request (0 when no response).",
        "probe_llm_state": ("Outcome of the check, one series per state (ok, invalid_key, rate_limited, "
                            "outage, error); 1 marks the current one."),
        "probe_llm_request_duration_seconds": "Seconds the models list request took.",
        "probe_llm_models": "Number of models listed (first page).",
        "probe_llm_ratelimit_limit": "The provider's rate limit of the resource (requests or tokens per window).",
        "probe_llm_ratelimit_remaining": "What the provider's rate limit of the resource has left in its window.",
        "probe_llm_ratelimit_remaining_ratio": "Remaining over limit of the provider's rate limit (0..1).",
        "probe_llm_ratelimit_reset_timestamp_seconds": "Unix time at which the provider's rate limit resets.",
        "probe_llm_ratelimit_horizon_seconds": ("Seconds ahead that LLMProviderTokenLimitExhaustionSoon warns of "
                                                "the limit running out (ratelimit_horizon)."),
        "probe_llm_completion_tokens": "Tokens the cheapest-request mode's request used, by type (input, output).",
        **genai.METRICS,
    }

    def __init__(self, settings: LlmSettings, *, http_client: httpx.AsyncClient | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        """:param wall: returns Unix time; turns the providers' relative reset durations into times."""
        self.settings = settings
        self._client = http_client
        self._own_client = http_client is None
        self._wall = wall
        self._genai = genai.GenAiMetrics()

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key.get_secret_value()
        if self.settings.provider == "anthropic":
            return {"x-api-key": key, "anthropic-version": self.settings.anthropic_version,
                    "accept": "application/json"}
        return {"Authorization": f"Bearer {key}", "accept": "application/json"}

    async def _exchange(self, method: str, url: str, body: dict | None = None) -> tuple[httpx.Response, bytes]:
        """Send one request and read its bounded body.

        :raises httpx.HTTPError, TimeoutError: as the transport says.
        :raises _BadBody: the body is over ``body_size_limit`` or not what its encoding says.
        """
        assert self._client is not None
        s = self.settings
        async with asyncio.timeout(s.timeout):  # the whole exchange, a slowly dripping body included
            resp = await self._client.send(
                self._client.build_request(method, url, headers=self._headers(), json=body, timeout=s.timeout),
                stream=True)
            try:
                return resp, await read_body(resp, s.body_size_limit)
            except (BodyTooLarge, httpx.DecodingError) as exc:
                raise _BadBody(f"{one_line(str(exc))} (HTTP {resp.status_code})", resp) from None
            finally:
                await resp.aclose()

    async def _call(self, method: str, url: str, result: ProbeResult, judge: Callable[..., tuple[str, str | None]],
                    body: dict | None = None) -> tuple[str, str | None, httpx.Response | None, bytes]:
        """Run :meth:`_exchange` and classify it: ``(state, reason, response or None, body)``."""
        resp: httpx.Response | None = None
        raw = b""
        try:
            resp, raw = await self._exchange(method, url, body)
        except (httpx.TimeoutException, TimeoutError):
            return "outage", f"timeout after {self.settings.timeout:g}s", None, raw
        except _BadBody as exc:
            return "error", str(exc.args[0]), exc.args[1], raw
        except httpx.HTTPError as exc:
            return "outage", f"cannot connect: {transport_reason(exc)}", None, raw
        state, reason = judge(resp, raw, result)
        return state, reason, resp, raw

    async def run(self) -> ProbeResult:
        """Request the models list (and the 1-token request, if configured) and classify the answer;
        see the module docstring."""
        s = self.settings
        if self._client is None:
            self._client = httpx.AsyncClient()
        result = ProbeResult(False, details={"provider": s.provider, "key": secret_prefix(s.api_key)})
        start = time.monotonic()
        state, reason, resp, _ = await self._call("GET", s.resolved_base_url() + "/models", result, self._judge)
        status = resp.status_code if resp is not None else 0
        seconds = time.monotonic() - start
        headers = resp.headers if resp is not None else None
        if state == "ok" and s.completion_model:
            state, reason, completion = await self._complete(s.completion_model, result)
            if completion is not None:
                headers = completion.headers
        if headers is not None:
            limits = parse_ratelimits(s.provider, headers, self._wall())
            export_ratelimits(result, limits, s.ratelimit_horizon)
            if limits:
                result.details["ratelimit"] = ", ".join(
                    f"{r}={v.remaining:g}/{v.limit:g}" for r, v in limits.items()
                    if v.remaining is not None and v.limit is not None)
        result.add("probe_llm_request_duration_seconds", seconds)
        result.add("probe_llm_http_status_code", status)
        result.add("probe_llm_up", 1 if state == "ok" else 0)
        for name in STATES:
            result.add("probe_llm_state", 1 if name == state else 0, state=name)
        self._genai.emit(result)
        result.details.update(state=state, status=status, latency_ms=round(seconds * 1000, 1))
        result.success = state == "ok"
        if reason:
            result.error = scrub_secrets(f"{state}: {reason}", s.api_key)
        return result

    async def _complete(self, model: str, result: ProbeResult) -> tuple[str, str | None, httpx.Response | None]:
        """Send the cheapest possible request (1 output token) to ``model``; record it under the
        GenAI names; return ``(state, reason, response or None)``."""
        s = self.settings
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
        if s.provider == "anthropic":
            url, body["max_tokens"] = s.resolved_base_url() + "/messages", 1
        else:
            url, body["max_completion_tokens"] = s.resolved_base_url() + "/chat/completions", 1
        start = time.monotonic()
        state, reason, resp, raw = await self._call("POST", url, result, self._judge_completion, body)
        seconds = time.monotonic() - start
        tokens_in = tokens_out = None
        if state == "ok":
            usage = json.loads(raw).get("usage") or {}
            tokens_in = usage.get("input_tokens", usage.get("prompt_tokens"))
            tokens_out = usage.get("output_tokens", usage.get("completion_tokens"))
            for kind, n in (("input", tokens_in), ("output", tokens_out)):
                if isinstance(n, int):
                    result.add("probe_llm_completion_tokens", n, type=kind)
        error_type = None if state == "ok" else (str(resp.status_code) if resp is not None else state)
        self._genai.record(operation="chat", provider=s.provider, model=model, seconds=seconds,
                           input_tokens=tokens_in if isinstance(tokens_in, int) else None,
                           output_tokens=tokens_out if isinstance(tokens_out, int) else None, error_type=error_type)
        result.details["completion_ms"] = round(seconds * 1000, 1)
        if reason:
            reason = f"1-token request to {model}: {reason}"
        return state, reason, resp

    def _judge_completion(self, resp: httpx.Response, raw: bytes, result: ProbeResult) -> tuple[str, str | None]:
        """Classify the 1-token request's answer: a 2xx must be a JSON object with ``usage``."""
        state = classify_status(resp.status_code)
        if state != "ok":
            return self._judge(resp, raw, result)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
            return "error", f"HTTP {resp.status_code} but the body is not a completion with usage"
        return "ok", None

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
