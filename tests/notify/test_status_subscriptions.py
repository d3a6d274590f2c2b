"""Status-page email subscriptions end to end: subscribe over real HTTP (rate-limited), the confirmation
email through the outbox to a real SMTP server (aiosmtpd), confirm and unsubscribe by the signed
links, and the guide's notices (7 days, 1 hour, start, end) each exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timezone

import httpx
import pytest

from monitor.api.deps import ApiDeps
from monitor.api.statuspage import StatusPageDeps
from monitor.config.model import Config, StateConfig
from monitor.notify.outbox import OutboxWorker
from monitor.notify.registry import build_integrations
from monitor.errors import NotifyError
from monitor.notify.status_notices import SENT_KEY, send_status_notices
from monitor.notify.status_webhook import check_webhook_url, url_shape_error, with_status_webhooks
from monitor.store import open_store
from tests.alerting_service.conftest import ApiServer
from tests.support.notify_servers import FakeHTTP, FakeSMTP
from tests.support.state_helpers import Clock

LINK_KEY = "status-link-key-0123456789abcdef"
DAY, HOUR = 86400.0, 3600.0


def ts(*a: int) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


START, END = ts(2026, 12, 5, 2), ts(2026, 12, 5, 6)  # the guide's first-Saturday window


def config(smarthost: str) -> Config:
    return Config.model_validate({
        "server": {"external_url": "https://status.codebook.example"},
        "api": {"link_key": LINK_KEY},
        "alerting": {
            "time_intervals": [{"name": "first-saturday-night", "time_intervals": [
                {"weekdays": ["saturday"], "days_of_month": ["1:7"],
                 "times": [{"start_time": "02:00", "end_time": "06:00"}]}]}],
            "maintenance_windows": [{"name": "monthly-maintenance", "time_intervals": ["first-saturday-night"],
                                     "notices": {"receiver": "clients", "message": "Search is read-only.",
                                                 "audience": {"contacts": [{"name": "Acme",
                                                                           "email": "it@acme.example"}]}}}]},
        "receivers": [{"name": "clients", "email_configs": [
            {"to": "ops@codebook.example", "from": "status@codebook.example", "smarthost": smarthost,
             "require_tls": False}]}],
        "status_page": {"subscriptions": {"receiver": "clients", "per_client": 3}},
    })


def mails(smtp) -> list[tuple[str, str, str]]:
    out = []
    for _, rcpt, raw in smtp.handler.messages:
        m = email.message_from_bytes(raw, policy=email.policy.default)
        out.append((rcpt[0], m["Subject"].strip(), m.get_content().replace("\r\n", "\n")))
    return out


async def test_subscribe_confirm_notices_unsubscribe(state_config):
    with FakeSMTP() as smtp:
        cfg = config(smtp.smarthost)
        store = await open_store(state_config)
        clock = Clock(START - 8 * DAY)
        integrations = build_integrations(cfg.receivers, clock=clock)
        deps = ApiDeps(settings=lambda: cfg.api, status_page=StatusPageDeps(
            config=lambda: cfg, probes=lambda: None, store=lambda: store, clock=clock))

        async def leader(t: float):
            clock.t = t
            done = await send_status_notices(cfg, store, integrations, t)
            await OutboxWorker(store, integrations, clock=lambda: t).run_once()
            return [(phase, rows) for _, _, phase, rows in done]

        try:
            async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
                assert "Subscribe" in (await c.get("/status")).text
                r = await c.post("/status/subscribe", data={"email": "Ops@Acme.EXAMPLE"})
                assert r.status_code == 202 and "confirmation link" in r.text
                r = await c.post("/status/subscribe", json={"email": "late@globex.example"})
                assert r.status_code == 202 and r.json()["status"] == "pending"
                bad = await c.post("/status/subscribe", data={"email": "not an address <x@y>"})
                assert bad.status_code == 400
                assert (await c.post("/status/subscribe", data={"email": "x@y.example"})).status_code == 429
                assert (await c.post("/status/subscribe", content=b"email=" + b"a" * 5000,
                                     headers={"content-type": "application/x-www-form-urlencoded"})).status_code == 413

                # the leader writes each confirmation once; the outbox delivers it by SMTP
                assert await leader(START - 8 * DAY) == []
                assert await leader(START - 8 * DAY + 30) == []
                sent = mails(smtp)
                assert sorted(to for to, _, _ in sent) == ["Ops@acme.example", "late@globex.example"]
                body = next(b for to, _, b in sent if to == "Ops@acme.example")
                confirm = re.search(r"https://status\.codebook\.example(/status/confirm/\d+/[0-9a-f]{32})", body)
                unsub = re.search(r"https://status\.codebook\.example(/status/unsubscribe/\d+/[0-9a-f]{32})", body)
                assert confirm and unsub, body

                page = await c.get(confirm.group(1))  # a GET (a mail scanner) never acts
                assert page.status_code == 200 and "<form method=\"post\">" in page.text
                assert (await store.list_subscribers("confirmed")) == []
                forged = re.sub(r"[0-9a-f]{32}$", "0" * 32, confirm.group(1))
                assert (await c.post(forged)).status_code == 403
                assert (await c.post(confirm.group(1))).status_code == 200
                assert [s["target"] for s in await store.list_subscribers("confirmed")] == ["Ops@acme.example"]

                # the guide's notices, each once, only to the confirmed address
                assert await leader(START - 7 * DAY + 30) == [("7d", 1)]
                assert await leader(START - 7 * DAY + 60) == []
                assert await leader(START - HOUR + 5) == [("1h", 1)]
                assert await leader(START + 60) == [("start", 1)]
                assert await leader(START + HOUR) == []
                assert await leader(END + 30) == [("end", 1)]
                # lost marks: the outbox keys still hold, nothing goes twice
                await store.kv_set(SENT_KEY, {}, END + 40)
                assert await leader(END + 60) == [("end", 0)]
                notices = [(s, b) for to, s, b in mails(smtp)[2:]]
                assert [s for s, _ in notices] == [
                    "Scheduled maintenance Sat 2026-12-05 02:00 UTC to Sat 2026-12-05 06:00 UTC",
                    "Reminder: maintenance starts in 1h", "Maintenance has started", "Maintenance is over"]
                assert all("Search is read-only." in b and unsub.group(1) in b for _, b in notices)
                assert all(to == "Ops@acme.example" for to, _, _ in mails(smtp)[2:])

                assert (await c.post(unsub.group(1))).status_code == 200
                assert await store.list_subscribers("confirmed") == []
                assert await leader(START + 28 * DAY - 7 * DAY + 30) == [("7d", 0)]  # next month: nobody left
        finally:
            for items in integrations.values():
                for integ in items:
                    await integ.notifier.aclose()
            await store.close()


async def test_subscriptions_off_answer_404(tmp_path):
    cfg = Config.model_validate({})
    store = await open_store(StateConfig.model_validate({"backend": "sqlite", "path": str(tmp_path / "s.db")}))
    deps = ApiDeps(status_page=StatusPageDeps(config=lambda: cfg, probes=lambda: None, store=lambda: store,
                                              clock=lambda: 0.0))
    try:
        async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            assert "Subscribe" not in (await c.get("/status")).text
            assert (await c.post("/status/subscribe", data={"email": "a@b.example"})).status_code == 404
    finally:
        await store.close()


async def test_webhook_subscriber_confirms_and_gets_each_notice_once(tmp_path):
    async with FakeHTTP() as hook:
        with FakeSMTP() as smtp:
            cfg = config(smtp.smarthost)
            cfg.status_page.subscriptions.webhooks = True
            cfg.status_page.subscriptions.allow_private_webhooks = True  # the hook listens on 127.0.0.1
            store = await open_store(StateConfig.model_validate({"backend": "sqlite", "path": str(tmp_path / "s.db")}))
            clock = Clock(START - 8 * DAY)
            integrations = with_status_webhooks(build_integrations(cfg.receivers, clock=clock), cfg)
            deps = ApiDeps(settings=lambda: cfg.api, status_page=StatusPageDeps(
                config=lambda: cfg, probes=lambda: None, store=lambda: store, clock=clock))

            async def leader(t: float):
                done = await send_status_notices(cfg, store, integrations, t)
                await OutboxWorker(store, integrations, clock=lambda: t).run_once()
                return [(phase, rows) for _, _, phase, rows in done]

            try:
                async with ApiServer(deps) as srv, httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
                    assert "Subscribe a webhook" in (await c.get("/status")).text
                    r = await c.post("/status/subscribe", json={"webhook": f"{hook.url}/hooks/status"})
                    assert r.status_code == 202, r.text
                    await leader(START - 8 * DAY)
                    [first] = hook.on("/hooks/status")
                    assert first.data["type"] == "subscription_confirmation"
                    confirm = first.data["confirm_url"].replace("https://status.codebook.example", "")
                    assert (await c.post(confirm)).status_code == 200
                    assert await leader(START - 7 * DAY + 30) == [("7d", 1)]
                    assert await leader(START - 7 * DAY + 60) == []
                    assert await leader(START + 60) == [("start", 1)]
                    got = [(x.data["type"], x.data["phase"], x.data["window"]) for x in hook.on("/hooks/status")]
                    assert got == [("subscription_confirmation", "confirm", ""),
                                   ("maintenance", "7d", "monthly-maintenance"),
                                   ("maintenance", "start", "monthly-maintenance")]
                    assert hook.on("/hooks/status")[1].data["unsubscribe_url"].startswith(
                        "https://status.codebook.example/status/unsubscribe/")
            finally:
                for items in integrations.values():
                    for integ in items:
                        await integ.notifier.aclose()
                await store.close()


@pytest.mark.parametrize("url, allow, problem", [
    ("http://hooks.example/x", False, "https"),
    ("https://10.0.0.5/x", False, "private"),
    ("https://127.0.0.1/x", False, "private"),
    ("https://user:pw@hooks.example/x", False, "user info"),
    ("ftp://hooks.example/x", True, "https"),
    ("https://hooks.example/" + "a" * 600, False, "500"),
    ("https://hooks.example/x", False, None),
    ("http://127.0.0.1:8080/x", True, None),
])
def test_webhook_url_rules(url, allow, problem):
    got = url_shape_error(url, allow_private=allow)
    assert (got is None) if problem is None else (problem in got)


async def test_a_host_resolving_to_a_private_address_is_refused_at_send_time():
    with pytest.raises(NotifyError, match="private address"):
        await check_webhook_url("https://localhost/x", allow_private=False)
