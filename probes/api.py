"""The ``api`` probe: the backend's ``/health`` endpoint plus synthetic requests, over httpx.

``/health`` has the Codebook backend guide's shape::

    {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "version": "1.4.2",
     "checks": {"database": "healthy", "pinecone": "healthy", "llm": "healthy"}}

Success means: HTTP 200, ``status == "healthy"``, every entry of ``checks`` healthy, and every
configured synthetic request passing. A check value counts as healthy when it is ``true``, one
of the strings ``healthy``/``ok``/``up``/``pass`` (any case), or an object whose ``status`` key
is such a value. A 503, a degraded check, a body that is not a JSON object, a connection error,
a timeout or a body larger than ``body_size_limit`` (read as a stream and abandoned at the limit,
as blackbox_exporter does) are failures with a one-line reason. Names follow blackbox_exporter
(``probe_http_status_code``); the rest are ``probe_api_*``.

The health request also gets blackbox_exporter's http prober samples (``probes.blackbox``):
``probe_http_duration_seconds{phase}``, ``probe_http_ssl``, ``probe_http_version``,
``probe_http_content_length``, ``probe_http_redirects``, ``probe_ip_protocol``,
``probe_failed_due_to_regex`` (``fail_if_body_matches_regexp``/``fail_if_body_not_matches_regexp``,
RE2 as Go's ``regexp``), and over HTTPS ``probe_ssl_earliest_cert_expiry``,
``probe_ssl_last_chain_expiry_timestamp_seconds``, ``probe_ssl_last_chain_info`` and
``probe_tls_version_info`` of the last response. With ``follow_redirects`` (default off: a
redirect is the answer, as before) up to 10 redirects are followed as blackbox_exporter's http
prober does, each redirect's body left unread (its connection closed), the API key header dropped
when a redirect leaves the origin; the certificates of every HTTPS hop are exported per
certificate (``probe_tls_cert_expiry``, ``probe_tls_verified_cert_expiry`` with ``server_name``),
so an expiring certificate on a redirecting front door is seen.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from model.duration import Duration
from model.regex import RegexError, unanchored
from probes.base import (
    DEFAULT_BODY_SIZE_LIMIT, BodyTooLarge, ByteSize, HttpUrl, ProbeResult, ProbeSettings, one_line, read_body,
    transport_reason,
)
from probes.blackbox import HTTP_METRICS, TLS_METRICS, add_http_samples, add_tls_samples, trust_store, verified_chain
from probes.transport import HttpTrace, ProbeTransport
from model.secrets import scrub_secrets

_HEALTHY_WORDS = {"healthy", "ok", "up", "pass", "passing"}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_MISSING = object()
#: Redirects followed at most, as blackbox_exporter's http prober (and Go's client).
MAX_REDIRECTS = 10


def check_is_healthy(value: Any) -> bool:
    """Return whether one ``checks`` entry of a health document means healthy.

    :param value: ``true``/``false``, a string (``healthy``/``ok``/``up``/``pass`` are healthy,
        case-insensitive) or an object with a ``status`` key holding one of those.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _HEALTHY_WORDS
    if isinstance(value, dict) and "status" in value:
        return check_is_healthy(value["status"])
    return False


def json_lookup(doc: Any, path: str) -> Any:
    """Return the value at a dotted ``path`` (``data.items.0.id``) in a JSON document.

    Numeric segments index lists. Returns a private sentinel when the path does not exist.
    """
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def redact_url(url: str) -> str:
    """Return ``url`` without a password in its userinfo (``https://u:***@host/...``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _text(resp: httpx.Response, body: bytes) -> str:
    """Decode ``body`` with the response's charset (UTF-8 when absent or unknown), as httpx's ``text``."""
    try:
        return body.decode(resp.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class SyntheticRequest(BaseModel):
    """One extra request sent after ``/health``.

    :ivar name: identifies the request in the ``request`` label.
    :ivar method: HTTP method (``GET``, ``POST``...).
    :ivar path: path (and query) appended to the probe's ``url``.
    :ivar headers: extra request headers.
    :ivar body: raw request body (text), or
    :ivar json_body: a JSON request body (key ``json`` in the config).
    :ivar expected_status: the status code(s) counted as success (default 200).
    :ivar json_path: dotted path into the JSON response (``data.status``, ``items.0.id``);
        with ``equals`` the value must equal it, without ``equals`` it must exist and not be null.
    :ivar latency_budget: seconds; a slower response fails the request.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    expected_status: list[int] = Field(default_factory=lambda: [200])
    json_path: str | None = None
    equals: Any = None
    latency_budget: Duration | None = None

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v.upper() not in _METHODS:
            raise ValueError(f"unknown HTTP method {v!r}; expected one of {sorted(_METHODS)}")
        return v.upper()

    @model_validator(mode="after")
    def _equals_needs_path(self) -> "SyntheticRequest":
        if "equals" in self.model_fields_set and self.json_path is None:
            raise ValueError("equals needs json_path")
        if self.body is not None and self.json_body is not None:
            raise ValueError("at most one of body and json")
        return self

    @field_validator("expected_status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v


class ApiSettings(ProbeSettings):
    """Settings of the ``api`` probe.

    Example (``monitor.yaml``)::

        - name: backend
          kind: api
          url: https://api.codebook.example
          requests:
            - name: list-codebooks
              path: /api/v1/codebooks?limit=1
              headers: {Accept: application/json}
              expected_status: 200
              json_path: data
              latency_budget: 500ms

    :ivar url: base URL of the backend (scheme, host, port, optional path prefix).
    :ivar health_path: path of the health document; ``null`` skips the health check.
    :ivar headers: headers sent with every request.
    :ivar api_key: optional secret sent in ``api_key_header`` with every request.
    :ivar api_key_header: header carrying ``api_key`` (default ``X-API-Key``).
    :ivar verify_tls: verify the server certificate (default true).
    :ivar requests: extra synthetic requests, see :class:`SyntheticRequest`.
    :ivar body_size_limit: bytes of a response body read at most (uncompressed, per request;
        default 10MiB, ``0`` no limit); a larger body fails the request, as blackbox_exporter.
    :ivar follow_redirects: follow up to 10 redirects of the health request (blackbox_exporter's
        ``follow_redirects``; default false: a 3xx is the answer).
    :ivar ca_file: PEM file of CAs trusted instead of the default ones (blackbox_exporter's
        ``tls_config.ca_file``).
    :ivar fail_if_body_matches_regexp: RE2 patterns; the health body matching one fails the probe
        (``probe_failed_due_to_regex`` 1), as blackbox_exporter's option of that name.
    :ivar fail_if_body_not_matches_regexp: RE2 patterns the health body must all match.
    :ivar blackbox_metrics: export blackbox_exporter's http prober families for the health request
        (default true; false saves ~14 series a probe, ~24 MiB at 1,000 probes in
        ``benchmarks/probe_bench.py``; the TLS families of HTTPS hops are exported either way).
    """

    kind: Literal["api"] = "api"
    url: HttpUrl
    health_path: str | None = "/health"
    headers: dict[str, str] = Field(default_factory=dict)
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    verify_tls: bool = True
    requests: list[SyntheticRequest] = Field(default_factory=list)
    body_size_limit: ByteSize = DEFAULT_BODY_SIZE_LIMIT
    follow_redirects: bool = False
    ca_file: str | None = None
    fail_if_body_matches_regexp: list[str] = Field(default_factory=list)
    fail_if_body_not_matches_regexp: list[str] = Field(default_factory=list)
    blackbox_metrics: bool = True

    @field_validator("fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp")
    @classmethod
    def _regexps(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                unanchored(pattern)
            except RegexError as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc.reason}") from None
        return v

    def target(self) -> str:
        """Return the base URL (any password in it redacted)."""
        return redact_url(self.url)


class ApiProbe:
    """Check the backend's ``/health`` and run synthetic requests against it.

    Usage::

        probe = ApiProbe(ApiSettings(name="backend", url="http://127.0.0.1:8000"))
        result = await run_probe(probe, 5.0)
        await probe.close()
    """

    kind: ClassVar[str] = "api"
    Settings: ClassVar[type[ProbeSettings]] = ApiSettings
    METRICS: ClassVar[dict[str, str]] = {
        **HTTP_METRICS,
        **TLS_METRICS,
        "probe_http_status_code": "HTTP status code of the health request (0 when no response).",
        "probe_api_health_duration_seconds": "Seconds the health request took, from send to full body.",
        "probe_api_healthy": "Whether the health document said status healthy (1) or not (0).",
        "probe_api_check_healthy": "Whether one entry of the health document's checks is healthy (1) or not (0).",
        "probe_api_request_success": "Whether a synthetic request met its status, body and latency conditions.",
        "probe_api_request_status_code": "HTTP status code of a synthetic request (0 when no response).",
        "probe_api_request_duration_seconds": "Seconds a synthetic request took, from send to full body.",
    }

    def __init__(self, settings: ApiSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        # a shared client verifies certificates with the default CAs; a target that opts out, or
        # names its own CAs, gets a client of its own
        self._client = http_client if settings.verify_tls and not settings.ca_file else None
        self._own_client = self._client is None
        self._deadline = 0.0
        self._ssl: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        """Return the TLS context this probe's connections verify with (the roots of its verified chains)."""
        if self._ssl is None:
            if not self.settings.verify_tls:
                self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
            elif self.settings.ca_file:
                self._ssl = ssl.create_default_context(cafile=self.settings.ca_file)
            else:  # httpx's default context (certifi, SSL_CERT_FILE), as the daemon's shared client
                self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            if urllib.request.getproxies():  # the environment names a proxy: httpx's transport mounts it
                self._client = httpx.AsyncClient(verify=self._context(), follow_redirects=False)
            else:  # a connection per request, its phases timed (probes.transport)
                self._client = httpx.AsyncClient(transport=ProbeTransport(self._context()), follow_redirects=False)
        return self._client

    def _url(self, path: str) -> str:
        return self.settings.url.rstrip("/") + "/" + path.lstrip("/")

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"User-Agent": "codebook-monitor", **self.settings.headers, **extra}
        if self.settings.api_key is not None:
            headers[self.settings.api_key_header] = self.settings.api_key.get_secret_value()
        return headers

    async def _send(self, method: str, path: str, *, trace: HttpTrace | None = None, follow: bool = False,
                    **kw: Any) -> tuple[httpx.Response | None, bytes, float, str | None]:
        """Send one request and read its body, within what is left of the run's budget.

        The body is streamed and abandoned past ``body_size_limit``: the response is then
        returned with the reason (its status is known, its body is not). With ``follow``, up to
        :data:`MAX_REDIRECTS` redirects are followed (``response.history`` counts them).

        :param trace: records the network timeline of the request and its redirects.
        :return: (last response or ``None``, body, seconds taken, reason or ``None``).
        """
        url = self._url(path)
        start = time.monotonic()
        left = max(self._deadline - start, 0.001)
        http = self._http()
        resp: httpx.Response | None = None
        extensions = {"probe_trace": trace} if trace is not None else None
        try:
            async with asyncio.timeout(left):  # the whole exchange, a slowly dripping body included
                request = http.build_request(method, url, timeout=left, extensions=extensions, **kw)
                history: list[httpx.Response] = []
                while True:
                    resp = await http.send(request, stream=True, follow_redirects=False)
                    following = resp.next_request
                    if not follow or following is None or len(history) >= MAX_REDIRECTS:
                        break
                    await resp.aclose()  # a redirect's body is not read
                    history.append(resp)
                    if _origin(following.url) != _origin(request.url):  # the API key stays with its origin
                        following.headers.pop(self.settings.api_key_header, None)
                    request = following
                resp.history = history
                try:
                    body = await read_body(resp, self.settings.body_size_limit)
                finally:
                    await resp.aclose()
        except (httpx.TimeoutException, TimeoutError):
            return resp, b"", time.monotonic() - start, f"timeout after {left:.3g}s ({method} {redact_url(url)})"
        except (BodyTooLarge, httpx.DecodingError) as exc:
            return resp, b"", time.monotonic() - start, f"{one_line(str(exc))} ({method} {redact_url(url)})"
        except httpx.HTTPError as exc:
            reason = scrub_secrets(transport_reason(exc), self.settings.api_key)
            return resp, b"", time.monotonic() - start, f"cannot reach {redact_url(url)}: {reason}"
        return resp, body, time.monotonic() - start, None

    async def run(self) -> ProbeResult:
        """Run the health check and the synthetic requests.

        :return: success when every part passed; ``error`` joins the failing parts' reasons.
        """
        # 90% of the timeout is shared by all requests, so our reason (which request timed out)
        # is reported before the harness's own timeout cancels the run
        self._deadline = time.monotonic() + 0.9 * self.settings.timeout
        result = ProbeResult(True)
        reasons: list[str] = []
        if self.settings.health_path is not None:
            reason = await self._health(result)
            if reason:
                reasons.append(reason)
        for req in self.settings.requests:
            reason = await self._request(req, result)
            if reason:
                reasons.append(f"request {req.name}: {reason}")
        if reasons:
            result.success = False
            result.error = one_line("; ".join(reasons), 400)
        return result

    async def _health(self, result: ProbeResult) -> str | None:
        path = self.settings.health_path or "/health"
        trace = HttpTrace()
        resp, body, seconds, err = await self._send(
            "GET", path, trace=trace, follow=self.settings.follow_redirects,
            headers=self._headers({"Accept": "application/json"}))
        result.add("probe_api_health_duration_seconds", seconds)
        result.add("probe_http_status_code", resp.status_code if resp is not None else 0)
        result.details["latency_ms"] = round(seconds * 1000, 1)
        regex_reason = self._regex_reason(body) if resp is not None and err is None else None
        self._blackbox_samples(result, trace, resp, body, regex_reason is not None)
        if resp is not None:
            result.details["status"] = resp.status_code
        if resp is None or err is not None:
            result.add("probe_api_healthy", 0)
            return err
        if regex_reason is not None:
            result.add("probe_api_healthy", 0)
            return f"health: {regex_reason}"
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            result.add("probe_api_healthy", 0)
            snippet = one_line(_text(resp, body), 60)
            return f"HTTP {resp.status_code}: health body is not a JSON object: {snippet!r}"
        status = doc.get("status")
        healthy = isinstance(status, str) and status.lower() == "healthy"
        result.add("probe_api_healthy", 1 if healthy else 0)
        result.details["health"] = status
        if "version" in doc:
            result.details["version"] = doc["version"]
        bad: list[str] = []
        checks = doc.get("checks")
        if isinstance(checks, dict):
            for name, value in checks.items():
                ok = check_is_healthy(value)
                result.add("probe_api_check_healthy", 1 if ok else 0, check=str(name))
                if not ok:
                    shown = value.get("status") if isinstance(value, dict) else value
                    bad.append(f"{name}={shown}")
        problems = []
        if resp.status_code != 200:
            problems.append(f"HTTP {resp.status_code}")
        if not healthy:
            problems.append(f"status {status!r}")
        if bad:
            problems.append("unhealthy checks: " + ", ".join(bad))
        return "health: " + "; ".join(problems) if problems else None

    def _regex_reason(self, body: bytes) -> str | None:
        """Return why the health body fails a ``fail_if_body_*`` pattern, or ``None``."""
        s = self.settings
        if not s.fail_if_body_matches_regexp and not s.fail_if_body_not_matches_regexp:
            return None
        text = body.decode("utf-8", errors="replace")
        for pattern in s.fail_if_body_matches_regexp:
            if unanchored(pattern).matches(text):
                return f"body matched regular expression {pattern!r}"
        for pattern in s.fail_if_body_not_matches_regexp:
            if not unanchored(pattern).matches(text):
                return f"body did not match regular expression {pattern!r}"
        return None

    def _blackbox_samples(self, result: ProbeResult, trace: HttpTrace, resp: httpx.Response | None,
                          body: bytes, regex_failed: bool) -> None:
        """Add blackbox_exporter's http prober samples of the health request (``probes.blackbox``)."""
        if self.settings.blackbox_metrics:
            add_http_samples(result, trace.hops, http_version=resp.http_version if resp is not None else "",
                             headers=resp.headers if resp is not None else {}, body_length=len(body),
                             redirects=len(resp.history) if resp is not None else 0,
                             ssl=resp is not None and resp.url.scheme == "https", regex_failed=regex_failed)
        tls_hops = [h for h in trace.hops if h.chain]
        if not tls_hops:
            return
        from cryptography import x509

        store = trust_store(self._context()) if self.settings.verify_tls else None
        now = time.time()
        seen: set[tuple[str, str]] = set()
        last = trace.hops[-1]
        for hop in tls_hops:
            try:
                chain = [x509.load_der_x509_certificate(d) for d in hop.chain]
            except ValueError:
                continue
            host = httpx.URL(hop.url).host
            verified = verified_chain(chain, store, host, now) if store is not None else None
            add_tls_samples(result, chain, verified, hop.tls_version, summary=hop is last, seen=seen,
                            server_name=host)

    async def _request(self, req: SyntheticRequest, result: ProbeResult) -> str | None:
        kw: dict[str, Any] = {"headers": self._headers(req.headers)}
        if req.json_body is not None:
            kw["json"] = req.json_body
        elif req.body is not None:
            kw["content"] = req.body.encode()
        resp, body, seconds, err = await self._send(req.method, req.path, **kw)
        result.add("probe_api_request_duration_seconds", seconds, request=req.name)
        result.add("probe_api_request_status_code", resp.status_code if resp is not None else 0, request=req.name)
        reason = err if resp is None or err is not None else self._judge(req, resp, body, seconds)
        result.add("probe_api_request_success", 0 if reason else 1, request=req.name)
        result.details[f"{req.name}_ms"] = round(seconds * 1000, 1)
        return reason

    @staticmethod
    def _judge(req: SyntheticRequest, resp: httpx.Response, body: bytes, seconds: float) -> str | None:
        if resp.status_code not in req.expected_status:
            expected = "/".join(str(s) for s in req.expected_status)
            return f"HTTP {resp.status_code}, expected {expected}"
        if req.json_path is not None:
            try:
                doc = json.loads(body)
            except ValueError:
                return "body is not JSON"
            value = json_lookup(doc, req.json_path)
            if value is _MISSING or value is None:
                return f"{req.json_path} missing"
            if "equals" in req.model_fields_set and value != req.equals:
                return f"{req.json_path} is {value!r}, expected {req.equals!r}"
        if req.latency_budget is not None and seconds > req.latency_budget:
            return f"took {seconds:.3f}s, over the {req.latency_budget:g}s budget"
        return None

    async def close(self) -> None:
        """Close the HTTP client if this probe created it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
