"""Shared by the console tests: a daemon config with console users and a local PagerDuty, and an
HTTP client that logs in through the console's own forms (cookies and CSRF tokens as a browser)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings, strategies as st

from monitor.api.console.session import hash_password
from tests.support.daemon_helpers import ADMIN_TOKEN, write_config

PASSWORDS = {"alice": "alice-responder-pass", "victor": "victor-viewer-pass", "ada": "ada-admin-pass"}
ROLES = {"alice": "responder", "victor": "viewer", "ada": "admin"}
#: PagerDuty routing keys of the escalation chain's people.
PD_KEYS = {"alice": "pdkeyaliceconsole000000000000001", "bob": "pdkeybobconsole00000000000000002"}

_HASHES: dict[str, str] = {}

RULES = """\
groups:
  - name: console
    interval: 1s
    rules:
      - alert: BackendDown
        expr: vector(1)
        labels: {severity: critical, service: api}
        annotations:
          summary: backend is down
          runbook_url: https://runbooks.example/backend
      - alert: DiskAlmostFull
        expr: vector(0.93)
        labels: {severity: warning, service: db}
        annotations: {summary: disk 93% full}
"""


def users_yaml() -> str:
    """The ``console.users`` entries of :data:`PASSWORDS` (argon2 hashes computed once per run)."""
    for name, pw in PASSWORDS.items():
        _HASHES.setdefault(name, hash_password(pw))
    return "\n".join(f'    - {{username: {n}, password_hash: "{_HASHES[n]}", role: {ROLES[n]}}}' for n in PASSWORDS)


def console_config(tmp_path: Path, pd_url: str, chat_url: str, *, rules: str | None = RULES, extra: str = "",
                   alerting_extra: str = "", first_wait: str = "20s") -> Path:
    """A daemon config: console users, the admin token (with ``intake``), a webhook receiver at
    ``chat_url`` for everything, a PagerDuty receiver at ``pd_url`` for critical alerts with a
    two-step chain (alice, then bob after ``first_wait``), and ``rules``; ``extra`` is added at the
    top level, ``alerting_extra`` inside ``alerting:`` (both dedented)."""
    if rules is not None:
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / "console.yaml").write_text(rules)
    body = textwrap.dedent(f"""
        rules:
          files: [rules/*.yaml]
          evaluation_interval: 1s
        api:
          tokens:
            - {{name: test-admin, token: {ADMIN_TOKEN}, scopes: [read, ack, admin, intake]}}
            - {{name: reader-bot, token: ck_test_reader_token_0000000000001, scopes: [read]}}
        console:
          users:
        @USERS@
        receivers:
          - name: pager
            pagerduty_configs: [{{routing_key: pagerroutingkeyconsole0000000099, url: "{pd_url}"}}]
          - name: chat
            webhook_configs: [{{url: "{chat_url}/webhook"}}]
        alerting:
          route:
            receiver: chat
            group_wait: 0s
            group_by: [alertname]
            routes:
              - matchers: ['severity="critical"']
                receiver: pager
          people:
            alice: {{name: Alice, pagerduty_routing_key: {PD_KEYS["alice"]}}}
            bob: {{name: Bob, pagerduty_routing_key: {PD_KEYS["bob"]}}}
          escalation:
            priorities:
              P0: {{ack: {first_wait}, resolve: 1h}}
              P1: {{ack: 1h, resolve: 24h}}
              P2: {{ack: 4h, resolve: 3d}}
            chain:
              - {{target: "person:alice", channels: [page], wait: {first_wait}}}
              - {{target: "person:bob", channels: [page]}}
        @ALERTING@
        """)
    inner = textwrap.indent(textwrap.dedent(alerting_extra), "  ")
    body = body.replace("@USERS@", users_yaml()).replace("@ALERTING@\n", inner)
    return write_config(tmp_path, body + textwrap.dedent(extra))


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the CSRF token of the first form on a page."""
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def login(client: httpx.AsyncClient, base: str, username: str, password: str | None = None) -> str:
    """Log ``client`` in through ``/ui/login`` (the page's CSRF token, then the form); return the new CSRF token."""
    page = await client.get(base + "/ui/login")
    r = await client.post(base + "/ui/login", data={"csrf": csrf_of(page.text), "username": username,
                                                    "password": password or PASSWORDS[username], "next": "/ui/"})
    assert r.status_code == 303, r.text
    home = await client.get(base + "/ui/")
    assert home.status_code == 200, home.text
    return csrf_of(home.text)


def fuzzed_posts(paths: list[str], forms: st.SearchStrategy[dict], max_examples: int) -> list[tuple[str, dict, bool]]:
    """Return ``max_examples`` hypothesis-drawn ``(path, form, with_csrf)`` cases for console POSTs.

    Drawn up front so that the caller sends them on the daemon's event loop (hypothesis' ``@given``
    does not run coroutines).
    """
    pending: list[tuple[str, dict, bool]] = []

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(path=st.sampled_from(paths), form=forms, with_csrf=st.booleans())
    def case(path: str, form: dict, with_csrf: bool) -> None:
        pending.append((path, form, with_csrf))

    case()
    return pending
