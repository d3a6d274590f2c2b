"""Every request body is bounded before it is read, on the real HTTP server: a declared
``Content-Length`` over the endpoint's limit is answered 413 before the client sends a byte of
the body; a chunked body is cut at the limit; an endpoint without a body refuses one; at the limit
the body is read as usual."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from monitor.api.access import ROUTE_ACCESS
from tests.alerting_service.scoped_api import TOKENS

EVERYTHING = "ck_test_everything_token_000000005"


def _path(template: str) -> str:
    return template.replace("{fingerprint}", "0123456789abcdef").replace("{id}", "nope").replace("{token}", "x.ack.1.s")


async def _head_only(url: str, method: str, path: str, declared: int, **headers: str) -> str:
    """Send only the request head declaring ``declared`` body bytes; return the status line."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    await writer.drain()
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


@pytest.fixture
async def everything(scoped):
    """``scoped`` with one more token holding every scope (the body check follows the token check)."""
    from monitor.config.model import ApiConfig

    tokens = [{"name": n, "token": t, **({"scopes": s} if s else {})} for n, (t, s) in TOKENS.items()]
    tokens.append({"name": "everything", "token": EVERYTHING, "scopes": ["read", "ack", "admin", "intake"]})
    scoped.settings["api"] = ApiConfig.model_validate({"tokens": tokens, "slack_signing_secret": "s" * 32})
    scoped.client.headers["Authorization"] = f"Bearer {EVERYTHING}"
    return scoped


async def test_a_declared_body_over_the_limit_is_413_before_any_byte_is_sent(everything):
    for (method, template), access in sorted(ROUTE_ACCESS.items()):
        if method == "GET":
            continue
        path = _path(template)
        status = await _head_only(everything.url, method, path, access.limit + 1,
                                  Authorization=f"Bearer {EVERYTHING}")
        assert status.startswith("HTTP/1.1 413"), (method, path, status)
    # 300 MB to the Slack endpoint: refused from the head alone
    status = await _head_only(everything.url, "POST", "/api/v1/slack/actions", 300 * 1024 * 1024)
    assert status.startswith("HTTP/1.1 413")


async def test_the_413_says_why(everything):
    c = everything.client
    r = await c.post("/api/v1/slack/actions", content=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413
    assert r.json()["error"] == "request body larger than 65536 bytes (64 KiB), the limit of this endpoint"
    r = await c.post("/-/reload", content=b"{}")
    assert r.status_code == 413 and r.json()["error"] == "this endpoint takes no request body"
    r = await c.request("GET", "/api/v2/alerts", content=b"x")
    assert r.status_code == 413


async def test_a_chunked_body_is_cut_at_the_limit(everything):
    c = everything.client

    def chunks(total: int, size: int = 16 * 1024):
        async def gen():
            sent = 0
            while sent < total:
                yield b" " * min(size, total - sent)
                sent += size
        return gen()

    for (method, template), access in sorted(ROUTE_ACCESS.items()):
        if not access.limit:
            continue
        form = "query" in template or template.startswith("/ui/")  # Grafana's and the console's forms
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        r = await c.request(method, _path(template), content=chunks(access.limit + 1), headers={"content-type": kind})
        assert r.status_code == 413, (method, template, r.text)
    # under the limit, chunked is read as usual (an ack with a blank body: 404 unknown alert)
    r = await c.post("/api/v1/alerts/0123456789abcdef/ack", content=chunks(1000))
    assert r.status_code == 404


async def test_at_the_limit_the_body_is_read(everything):
    c = everything.client
    comment = "x" * (16 * 1024 - len('{"comment":""}'))
    r = await c.post("/api/v1/alerts/0123456789abcdef/ack", content=f'{{"comment":"{comment}"}}'.encode(),
                     headers={"content-type": "application/json"})
    assert r.status_code == 404, r.text  # read and parsed: the alert is unknown
    r = await c.post("/api/v1/alerts/0123456789abcdef/ack", content=f'{{"comment":"{comment}x"}}'.encode())
    assert r.status_code == 413


async def test_an_anonymous_client_is_refused_before_its_body_is_read(everything):
    status = await _head_only(everything.url, "POST", "/api/v2/silences", 1000)
    assert status.startswith("HTTP/1.1 401")


async def test_the_server_keeps_serving_after_refusing_bodies(everything):
    async with httpx.AsyncClient(base_url=everything.url) as c:
        for _ in range(3):
            r = await c.post("/api/v1/slack/actions", content=b"x" * (1024 * 1024))
            assert r.status_code == 413
        assert (await c.get("/-/healthy")).status_code == 200
