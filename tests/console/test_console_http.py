"""The console over HTTP against the real daemon: login (password, API token, wrong ones), every page
renders for every role, every form refuses a missing or wrong CSRF token, a viewer cannot act,
acknowledge and silences go through the pipeline and are audited with the console user, bodies are
bounded, and the POST endpoints survive hypothesis-generated forms."""

from __future__ import annotations

import httpx
from hypothesis import strategies as st

from monitor.api.access import ROUTE_ACCESS
from monitor.api.console import ROUTES
from tests.console.helpers import PASSWORDS, PD_KEYS, console_config, csrf_of, fuzzed_posts, login
from tests.support.daemon_helpers import eventually, run_daemon

PAGES = ["/ui/", "/ui/alerts", "/ui/silences", "/ui/rules", "/ui/probes", "/ui/query",
         "/ui/query?expr=up&range=15m", "/ui/login"]


async def _alerts(d) -> list[dict]:
    return (await d.get("/api/v2/alerts")).json()


async def _firing(d, name: str) -> dict:
    async def check():
        return next((a for a in await _alerts(d) if a["labels"]["alertname"] == name), None)
    found: dict = await eventually(check, timeout=60, what=f"{name} in the pipeline")
    return found


def test_every_console_route_has_an_access_rule():
    for route in ROUTES:
        for method in route.methods or ():
            if method != "HEAD":
                assert (method, route.path) in ROUTE_ACCESS, (method, route.path)


async def test_login_pages_and_roles(tmp_path, sinks):
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url)
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as anon:
        r = await anon.get(d.url + "/ui/alerts")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/alerts"
        page = await anon.get(d.url + "/ui/login")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie
        # a wrong password, an unknown user, a wrong token: 401 and the form again
        for form in ({"username": "alice", "password": "nope"}, {"username": "mallory", "password": "x"},
                     {"token": "ck_not_a_token"}):
            r = await anon.post(d.url + "/ui/login", data={"csrf": csrf_of(page.text), **form})
            assert r.status_code == 401 and "wrong username or password" in r.text
        # an open redirect is not followed
        r = await anon.post(d.url + "/ui/login", data={"csrf": csrf_of(page.text), "username": "victor",
                                                       "password": PASSWORDS["victor"], "next": "//evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"

        await _firing(d, "BackendDown")
        for user in PASSWORDS:
            async with httpx.AsyncClient(timeout=30) as c:
                await login(c, d.url, user)
                for path in PAGES:
                    r = await c.get(d.url + path)
                    assert r.status_code == 200, (user, path, r.text[:500])
                    assert "content-security-policy" in r.headers
                alerts = (await c.get(d.url + "/ui/alerts")).text
                assert "BackendDown" in alerts and "DiskAlmostFull" in alerts
                assert ("Acknowledge</button>" in alerts) == (user != "victor")
                overview = (await c.get(d.url + "/ui/")).text
                assert "critical" in overview and "warning" in overview
        # an API token logs in with the role of its scopes (read: viewer)
        async with httpx.AsyncClient(timeout=30) as c:
            page = await c.get(d.url + "/ui/login")
            r = await c.post(d.url + "/ui/login", data={"csrf": csrf_of(page.text),
                                                        "token": "ck_test_reader_token_0000000000001"})
            assert r.status_code == 303
            home = await c.get(d.url + "/ui/")
            assert "reader-bot" in home.text and "(viewer)" in home.text


async def test_forms_need_csrf_and_role_and_are_audited(tmp_path, sinks):
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url)
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice, \
            httpx.AsyncClient(timeout=30) as victor:
        csrf = await login(alice, d.url, "alice")
        vcsrf = await login(victor, d.url, "victor")
        alert = await _firing(d, "BackendDown")
        fp = alert["fingerprint"]
        forms = [(f"/ui/alerts/{fp}/ack", {"comment": "on it"}), (f"/ui/alerts/{fp}/unack", {}),
                 (f"/ui/alerts/{fp}/resolve", {}), ("/ui/silences", {"matchers": '{alertname="X"}', "duration": "1h"}),
                 ("/ui/silences/0000/expire", {}), ("/ui/logout", {}), ("/ui/login", {"username": "alice"})]
        for path, form in forms:
            for bad in ({}, {"csrf": ""}, {"csrf": "forged-token"}):
                r = await alice.post(d.url + path, data={**form, **bad})
                assert r.status_code == 403 and "CSRF" in r.text, (path, bad, r.status_code)
        # a viewer cannot acknowledge, resolve or silence
        for path, form in forms[:4]:
            r = await victor.post(d.url + path, data={**form, "csrf": vcsrf})
            assert r.status_code == 403 and "may not" in r.text, (path, r.text[:300])
        assert (await _firing(d, "BackendDown"))["escalation"]["status"] == "escalating"
        # a CSRF token of one session does not work in another
        r = await victor.post(d.url + f"/ui/alerts/{fp}/ack", data={"csrf": csrf})
        assert r.status_code == 403

        r = await alice.post(d.url + f"/ui/alerts/{fp}/ack", data={"csrf": csrf, "comment": "on it",
                                                                   "next": f"/ui/alerts/{fp}"})
        assert r.status_code == 303 and r.headers["location"] == f"/ui/alerts/{fp}"
        assert (await _firing(d, "BackendDown"))["escalation"]["status"] == "acknowledged"
        timeline = (await d.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
        ack = [e for e in timeline if e["event"] == "acknowledged"][-1]
        assert "alice" in str(ack["detail"]) and "on it" in str(ack["detail"])
        page = (await alice.get(d.url + f"/ui/alerts/{fp}")).text
        assert "acknowledged" in page and "Unacknowledge" in page

        # silences: create from the prefilled form, see it, expire it
        r = await alice.post(d.url + "/ui/silences", data={"csrf": csrf, "matchers": '{alertname="DiskAlmostFull"}',
                                                           "duration": "2h", "comment": "disk swap tonight"})
        assert r.status_code == 303, r.text
        [sil] = [s for s in (await d.get("/api/v2/silences")).json() if s["comment"] == "disk swap tonight"]
        assert sil["createdBy"] == "alice" and sil["status"]["state"] == "active"
        r = await alice.post(d.url + "/ui/silences", data={"csrf": csrf, "matchers": "{alertname=~\"(\"}"})
        assert r.status_code == 400
        r = await alice.post(d.url + f"/ui/silences/{sil['id']}/expire", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await d.get(f"/api/v2/silence/{sil['id']}")).json()["status"]["state"] == "expired"

        # bounded bodies: a declared length over 16 KiB is refused unread
        r = await alice.post(d.url + "/ui/silences", content=b"csrf=" + b"x" * 20000,
                             headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        r = await alice.post(d.url + "/ui/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await alice.get(d.url + "/ui/")).status_code == 303


async def test_escalate_now_and_notes(tmp_path, sinks):
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url, first_wait="1h")
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice:
        csrf = await login(alice, d.url, "alice")
        fp = (await _firing(d, "BackendDown"))["fingerprint"]

        def paged(key: str) -> list[dict]:
            return [e for _, e in sinks.events.events if e.get("routing_key") == key
                    and e.get("event_action") == "trigger" and e.get("dedup_key") == fp]

        async def alice_paged():
            return paged(PD_KEYS["alice"])

        await eventually(alice_paged, what="alice paged")
        assert paged(PD_KEYS["bob"]) == []
        r = await alice.post(d.url + f"/ui/alerts/{fp}/note", data={"csrf": csrf, "comment": ""})
        assert r.status_code == 400
        r = await alice.post(d.url + f"/ui/alerts/{fp}/note", data={"csrf": csrf, "comment": "db disk at 99%"})
        assert r.status_code == 303
        # escalate now: bob is paged long before the first step's hour is up
        r = await alice.post(d.url + f"/ui/alerts/{fp}/escalate", data={"csrf": csrf, "next": f"/ui/alerts/{fp}"})
        assert r.status_code == 303

        async def bob_paged():
            return paged(PD_KEYS["bob"])

        await eventually(bob_paged, what="bob paged by escalate now")
        timeline = (await d.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
        events = [(e["event"], e["detail"].get("person") if isinstance(e["detail"], dict) else None)
                  for e in timeline]
        assert ("note", "alice") in events and ("escalated", "alice") in events
        page = (await alice.get(d.url + f"/ui/alerts/{fp}")).text
        assert "db disk at 99%" in page and "escalated" in page
        # the same through the API, with a token (its name is the actor)
        r = await d.post(f"/api/v1/alerts/{fp}/note", json={"comment": "from the API"})
        assert r.status_code == 200, r.text
        assert (await d.post(f"/api/v1/alerts/{fp}/note", json={})).status_code == 400
        r = await d.post(f"/api/v1/alerts/{fp}/escalate", json={"comment": "need more hands"})
        assert r.status_code == 200 and r.json()["data"]["status"] == "exhausted"  # bob was the last step
        timeline = (await d.get(f"/api/v1/alerts/{fp}/timeline")).json()["data"]
        assert [e["detail"]["detail"] for e in timeline if e["event"] in ("note", "escalated")][-2:] == [
            "from the API", "need more hands (the chain is done: nobody left to escalate to)"]
        # a viewer can do neither
        async with httpx.AsyncClient(timeout=30) as victor:
            vcsrf = await login(victor, d.url, "victor")
            for action in ("note", "escalate"):
                r = await victor.post(d.url + f"/ui/alerts/{fp}/{action}", data={"csrf": vcsrf, "comment": "x"})
                assert r.status_code == 403


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
_forms = st.dictionaries(st.sampled_from(["csrf", "comment", "matchers", "duration", "next", "username",
                                          "password", "token"]) | _text, _text, max_size=6)


async def test_post_endpoints_survive_fuzzed_forms(tmp_path, sinks):
    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url)
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as alice:
        csrf = await login(alice, d.url, "alice")
        fp = (await _firing(d, "BackendDown"))["fingerprint"]
        paths = ["/ui/login", "/ui/logout", f"/ui/alerts/{fp}/ack", f"/ui/alerts/{fp}/note", f"/ui/alerts/{fp}/bogus",
                 "/ui/silences", "/ui/silences/nope/expire"]
        pending = fuzzed_posts(paths, _forms, 40)
        for path, form, with_csrf in pending:  # sent here, on the daemon's event loop
            r = await alice.post(d.url + path, data=dict(form, csrf=csrf) if with_csrf else form)
            assert r.status_code in (303, 400, 401, 403, 404), (path, form, r.status_code, r.text[:300])
            if not with_csrf:
                assert r.status_code == 403
            if path == "/ui/logout" and r.status_code == 303:
                csrf = await login(alice, d.url, "alice")
        assert len(pending) == 40
        r = await d.get("/health")
        assert r.status_code == 200


def test_hash_password_cli_reads_stdin(monkeypatch, capsys):
    import io

    from argon2 import PasswordHasher

    from monitor.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["console", "hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, "correct horse battery")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["console", "hash-password"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err


def test_console_users_config_errors_name_the_key(tmp_path):
    import pytest

    from monitor.config.loader import load_config
    from monitor.errors import ConfigErrors

    path = tmp_path / "monitor.yaml"
    path.write_text("console:\n  users:\n    - {username: alice, password_hash: hunter2, role: boss}\n")
    with pytest.raises(ConfigErrors) as e:
        load_config(path)
    text = str(e.value)
    assert "console.users[0].password_hash" in text and "argon2" in text and "hunter2" not in text
    assert "console.users[0].role" in text


async def test_users_kept_in_the_state_store(tmp_path, sinks, monkeypatch, capsys):
    import asyncio
    import io

    from monitor.cli import main

    cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url, rules=None)

    def cli(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main(["console", "user", *argv, "-c", str(cfg)])

    assert await asyncio.to_thread(cli, "add", "olga", "--role", "responder", stdin="olga-stored-password\n") == 0
    assert await asyncio.to_thread(cli, "add", "alice", stdin="alice-in-the-store\n") == 0  # the config's wins
    assert "same name, and wins" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, "list") == 0
    listed = capsys.readouterr().out
    assert "olga" in listed and "state store" in listed and "config file" in listed
    async with run_daemon(cfg) as d, httpx.AsyncClient(timeout=30) as olga:
        await login(olga, d.url, "olga", "olga-stored-password")
        assert "olga <small>(responder)" in (await olga.get(d.url + "/ui/")).text
        async with httpx.AsyncClient(timeout=30) as c:  # the config's alice, not the stored one
            page = await c.get(d.url + "/ui/login")
            r = await c.post(d.url + "/ui/login", data={"csrf": csrf_of(page.text), "username": "alice",
                                                        "password": "alice-in-the-store"})
            assert r.status_code == 401
        assert await asyncio.to_thread(cli, "remove", "olga") == 0

        async def logged_out():
            return (await olga.get(d.url + "/ui/")).status_code == 303

        await eventually(logged_out, timeout=60, what="olga's session to end after her removal")
    assert await asyncio.to_thread(cli, "remove", "olga") == 1
