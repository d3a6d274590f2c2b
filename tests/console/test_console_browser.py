"""The console in a real browser (Debian's chromium driven by Playwright) against the real daemon
watching the sample backend: log in; a fault injected into the backend makes HighErrorRate appear
on the Alerts page; acknowledging it there stops the escalation (PagerDuty gets the acknowledge and
the second step never pages); a silence is created from the alert's "Silence for…" and expired;
a form without its CSRF token is refused; a viewer sees no buttons and is refused when forcing one;
no page logs a console error. Screenshots of every page are saved under the test's temporary
folder, and also in ``$MONITOR_CONSOLE_SCREENSHOTS`` when set (``docs/img`` for the README).

Never runs ``playwright install``: it launches ``/usr/bin/chromium`` (``.ci/run`` installs it)."""

from __future__ import annotations

import os
from datetime import date, timedelta
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from examples.sample_backend import serve as serve_backend
from tests.console.helpers import PASSWORDS, PD_KEYS, console_config
from tests.support.daemon_helpers import eventually, run_daemon

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
#: Seconds the first escalation step waits for an acknowledgement before paging the next person.
FIRST_WAIT = 40

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.async_api")


def error_rate_rules(dest: Path) -> None:
    """Copy the shipped error-rate alerts from ``rules/api.yaml`` with ``for: 3s`` and a 1 s interval."""
    doc = yaml.safe_load((ROOT / "rules" / "api.yaml").read_text())
    rules = [dict(r, **{"for": "3s"}) for g in doc["groups"] for r in g["rules"]
             if r.get("alert") in ("HighErrorRate", "ElevatedErrorRate")]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump({"groups": [{"name": "codebook-api", "interval": "1s", "rules": rules}]},
                                   sort_keys=False))


#: On-call schedules and a monthly maintenance window (three days ahead, never now), for the overview.
ONCALL = """
    schedules:
      primary:
        time_zone: Europe/Berlin
        rotation: {type: weekly, handoff_weekday: monday, handoff_time: "09:00"}
        start: 2026-01-05
        members: [alice, bob]
    time_intervals:
      - name: monthly-night
        time_intervals:
          - {days_of_month: ["@DAY@"], times: [{start_time: "02:00", end_time: "06:00"}], location: UTC}
    maintenance_windows:
      - {name: monthly-maintenance, time_intervals: [monthly-night], matchers: []}
"""


class Shots:
    """Screenshots of pages: under ``folder``, and copied to ``$MONITOR_CONSOLE_SCREENSHOTS`` when set."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        export = os.environ.get("MONITOR_CONSOLE_SCREENSHOTS")
        self.export = Path(export) if export else None
        self.taken: list[Path] = []

    async def take(self, page: Any, name: str, full_page: bool = True) -> None:
        path = self.folder / f"console-{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        if self.export is not None:
            self.export.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.export / path.name)


async def _login(page: Any, url: str, user: str) -> None:
    await page.goto(url + "/ui/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORDS[user])
    await page.click("form.stack button[type=submit]")
    await page.wait_for_url(url + "/ui/")


async def _poll_page(page: Any, url: str, selector: str, what: str, timeout: float = 120) -> None:
    """Reload ``url`` until ``selector`` is on it (the pages are server-rendered)."""
    async def check() -> bool:
        await page.goto(url)
        return await page.locator(selector).count() > 0
    await eventually(check, timeout=timeout, interval=0.5, what=what)


def _triggers(events: Any, key: str, fingerprint: str) -> list[dict]:
    """PagerDuty triggers to routing key ``key`` for the alert ``fingerprint`` (its dedup key)."""
    return [e for _, e in events.events if e.get("routing_key") == key and e.get("event_action") == "trigger"
            and e.get("dedup_key") == fingerprint]


async def test_console_in_chromium(tmp_path, sinks):
    backend = await serve_backend("127.0.0.1", 0, seed=7, traffic_rps=20)
    shots = Shots(tmp_path / "screenshots")
    errors: list[str] = []
    try:
        error_rate_rules(tmp_path / "rules" / "api.yaml")
        slos = yaml.safe_load((ROOT / "examples" / "slos.yaml").read_text())
        slos["slos"] = [s for s in slos["slos"] if s["service"] == "codebook-api"]
        (tmp_path / "slos.yaml").write_text(yaml.safe_dump(slos, sort_keys=False))
        cfg = console_config(tmp_path, sinks.pd.url, sinks.chat.url, rules=None, first_wait=f"{FIRST_WAIT}s",
                             alerting_extra=ONCALL.replace("@DAY@", str((date.today() + timedelta(days=3)).day)),
                             extra=f"""
            slo_files: [slos.yaml]
            scrape:
              - {{name: codebook-backend, url: "{backend.url}/metrics", interval: 1s, timeout: 1s}}
            probes:
              - name: backend-api
                kind: api
                url: {backend.url}
                interval: 1s
                timeout: 1s
                requests:
                  - {{name: list-codebooks, method: GET, path: /api/v1/codebooks, expected_status: 200}}
            """)
        async with run_daemon(cfg) as d, playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                await _run(browser, d, backend, sinks, shots, errors)
            finally:
                await browser.close()
    finally:
        await backend.stop()
    assert not errors, errors
    assert len(shots.taken) >= 8


async def _context(browser: Any, errors: list[str], **kw: Any) -> tuple[Any, Any]:
    context = await browser.new_context(**kw)
    page = await context.new_page()
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    return context, page


async def _run(browser: Any, d: Any, backend: Any, sinks: Any, shots: Shots, errors: list[str]) -> None:
    url = d.url
    context, page = await _context(browser, errors, viewport={"width": 1200, "height": 900})
    await page.goto(url + "/ui/alerts")
    assert page.url.startswith(url + "/ui/login")
    await shots.take(page, "login")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", "wrong")
    await page.click("form.stack button[type=submit]")
    assert "wrong username or password" in await page.inner_text("main")
    errors[:] = [e for e in errors if "status of 401" not in e]  # the browser logs the refused login itself
    await _login(page, url, "alice")

    # probes show up with latency sparklines
    await _poll_page(page, url + "/ui/", "li.probe.state-up svg.spark polyline", "a probe sparkline")

    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(backend.url + "/faults", json={"error_rate": 1})
        assert r.status_code == 200, r.text
    high = 'article.alert[data-alertname="HighErrorRate"]'
    await _poll_page(page, url + "/ui/alerts", high + ".state-firing", "HighErrorRate firing on the Alerts page")
    fp = next(a["fingerprint"] for a in (await d.get("/api/v2/alerts")).json()
              if a["labels"]["alertname"] == "HighErrorRate")
    await eventually(lambda: _async(_triggers(sinks.events, PD_KEYS["alice"], fp)), timeout=60, what="alice paged")
    first_page = time.time()
    await shots.take(page, "alerts")

    # acknowledge from the Alerts page: the escalation stops
    card = page.locator(high)
    await card.locator("input[name=comment]").fill("looking at the backend")
    await card.locator("button", has_text="Acknowledge").click()
    await page.wait_for_url(url + "/ui/alerts")
    assert await page.locator(high + ".state-acknowledged").count() == 1
    assert "by alice" in await page.locator(high).inner_text()
    await eventually(lambda: _async([e for _, e in sinks.events.events if e.get("event_action") == "acknowledge"
                                     and e.get("dedup_key") == fp]), timeout=60, what="PagerDuty acknowledge")

    # the alert's page: its timeline
    await page.locator(high + " a.title").click()
    await page.wait_for_selector("ol.timeline")
    await page.fill("form.note input[name=comment]", "5xx from the codebooks endpoint; rolling back")
    await page.click("form.note button[type=submit]")
    await page.wait_for_selector("ol.timeline li.ev-note")
    timeline = await page.inner_text("ol.timeline")
    assert "acknowledged" in timeline and "alice" in timeline and "rolling back" in timeline
    assert PD_KEYS["alice"] not in await page.content()  # routing keys are shown by prefix only
    await shots.take(page, "alert-timeline")

    # a form without its CSRF token is refused (the ack form of the other alert, stripped in the page)
    await page.goto(url + "/ui/alerts")
    elevated = page.locator('article.alert[data-alertname="ElevatedErrorRate"]')
    await eventually(lambda: _count(elevated), timeout=60, what="ElevatedErrorRate on the page")
    await elevated.locator("form.inline input[name=csrf]").evaluate("e => e.remove()")
    async with page.expect_response(lambda r: r.request.method == "POST") as resp:
        await elevated.locator("button", has_text="Acknowledge").click()
    assert (await resp.value).status == 403
    assert "CSRF" in await page.inner_text("main")
    errors[:] = [e for e in errors if "status of 403" not in e]  # the browser logs the refused POST itself

    # silence for…: prefilled from the alert's labels; then expire it
    await page.goto(url + "/ui/alerts")
    await elevated.locator("a", has_text="Silence for").click()
    await page.wait_for_url(url + "/ui/silences?**")
    assert 'alertname="ElevatedErrorRate"' in await page.input_value("input[name=matchers]")
    await page.select_option("select[name=duration]", "1h")
    await page.fill("#new-silence input[name=comment]", "backend fix rolling out")
    await page.click("#new-silence button[type=submit]")
    await page.wait_for_url(url + "/ui/silences")
    active = page.locator("li.silence.state-active", has_text="backend fix rolling out")
    assert await active.count() == 1
    await shots.take(page, "silences")
    await active.locator("button", has_text="Expire").click()
    await page.wait_for_url(url + "/ui/silences")
    assert await page.locator("li.silence.state-expired", has_text="backend fix rolling out").count() == 1

    # the other pages render, each with a picture where people look
    await page.goto(url + "/ui/")
    await shots.take(page, "overview")
    await page.goto(url + "/ui/rules")
    assert "HighErrorRate" in await page.inner_text("main")
    await shots.take(page, "rules", full_page=False)  # the SLO rules make a very long page
    await page.goto(url + "/ui/probes")
    assert await page.locator("section.probe svg.spark polyline").count() >= 1
    await shots.take(page, "probes")
    await page.goto(url + "/ui/query?expr=" + "sum by (status) (rate(http_requests_total[1m]))&range=5m")
    await page.wait_for_selector("svg.chart polyline.series")
    await shots.take(page, "query")

    # a phone: the overview fits the width
    phone, mpage = await _context(browser, errors, viewport={"width": 390, "height": 844}, is_mobile=True)
    await _login(mpage, url, "alice")
    width = await mpage.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, width
    await shots.take(mpage, "overview-phone")
    await phone.close()

    # a viewer sees no buttons, and forcing the form is refused
    viewer, vpage = await _context(browser, errors)
    await _login(vpage, url, "victor")
    await vpage.goto(url + "/ui/alerts")
    assert await vpage.locator("button", has_text="Acknowledge").count() == 0
    csrf = await vpage.locator("input[name=csrf]").first.input_value()
    r = await vpage.request.post(url + f"/ui/alerts/{fp}/ack", form={"csrf": csrf})
    assert r.status == 403 and "may not" in await r.text()
    await viewer.close()

    # the escalation stopped: past the first step's deadline, the second person was never paged
    await eventually(lambda: _async(time.time() > first_page + FIRST_WAIT + 5), timeout=FIRST_WAIT + 60,
                     what="the first step's deadline to pass")
    assert _triggers(sinks.events, PD_KEYS["bob"], fp) == []
    status = next(a for a in (await d.get("/api/v2/alerts")).json()
                  if a["labels"]["alertname"] == "HighErrorRate")["escalation"]
    assert status["status"] == "acknowledged" and status["acked_by"] == "alice"
    await context.close()


async def _async(value: Any) -> Any:
    return value


async def _count(locator: Any) -> bool:
    return await locator.count() > 0
