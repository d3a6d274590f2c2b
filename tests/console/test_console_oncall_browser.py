"""The On-call and Incidents pages in a real browser (Debian's chromium driven by Playwright) against
the real daemon: the browser's time zone (Europe/Berlin) reaches the page through ``tz.js``'s cookie;
adding an override from the On-call page changes "on call now", removing it changes it back; the
Incidents page lists the incident a critical alert opened, with MTTA/MTTR against the SLA; a note and
a public update from the incident's page, the update shown on ``/status``; no page logs a console
error. Screenshots ``console-oncall.png``, ``console-incidents.png`` and ``console-incident.png`` as in
:mod:`tests.console.test_console_browser` (``$MONITOR_CONSOLE_SCREENSHOTS``)."""

from __future__ import annotations

from typing import Any

from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, Shots, _context, _login, playwright_api
from tests.console.test_console_oncall_http import oncall_config
from tests.support.daemon_helpers import eventually, run_daemon


async def test_oncall_and_incidents_in_chromium(tmp_path, sinks):
    cfg = oncall_config(tmp_path, sinks, extra="status_page: {title: Codebook status}\n")
    shots = Shots(tmp_path / "screenshots")
    errors: list[str] = []
    async with run_daemon(cfg) as d, playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _, page = await _context(browser, errors, viewport={"width": 1200, "height": 900},
                                     timezone_id="Europe/Berlin")
            await _login(page, d.url, "alice")
            await _oncall(page, d, shots)
            await _incidents(page, d, shots)
        finally:
            await browser.close()
    assert not errors, errors


async def _now(page: Any) -> str:
    person: str = await page.locator('[data-schedule="primary"] .oncall-now').get_attribute("data-person")
    return person


async def _oncall(page: Any, d: Any, shots: Shots) -> None:
    url = d.url + "/ui/oncall"
    await page.goto(url)
    # tz.js kept the browser's zone in the cookie and reloaded the page once: times are in Berlin
    await page.wait_for_function("document.getElementById('zone').textContent === 'Europe/Berlin'",
                                 timeout=30_000)
    before = await _now(page)
    assert before in ("alice", "bob")
    other = "bob" if before == "alice" else "alice"
    form = page.locator("#new-override")
    await form.locator("select[name=schedule]").select_option("primary")
    await form.locator("select[name=person]").select_option(other)
    await form.locator("input[name=comment]").fill("covering the release")
    await form.locator("button[type=submit]").click()
    await page.wait_for_url(url)
    assert await _now(page) == other  # the check: "on call now" changes
    row = page.locator("table.overrides tbody tr").first
    assert "covering the release" in await row.inner_text()
    await shots.take(page, "oncall")
    # remove it again (the page asks first): back to the rotation
    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("button", has_text="Remove").click()
    await page.wait_for_url(url)
    assert await _now(page) == before
    assert "No stored overrides" in await page.inner_text("table.overrides")


async def _incidents(page: Any, d: Any, shots: Shots) -> None:
    async def listed() -> bool:
        await page.goto(d.url + "/ui/incidents")
        return await page.locator("#open-incidents a", has_text="backend is down").count() > 0
    await eventually(listed, timeout=120, interval=0.5, what="the incident on the Incidents page")
    sla = await page.inner_text("#sla")
    assert "P0" in sla and "P1" in sla and "P2" in sla
    await shots.take(page, "incidents")

    await page.locator("#open-incidents a", has_text="backend is down").first.click()
    await page.wait_for_selector("ol.timeline")
    await page.fill("#add-note textarea[name=text]", "restarting the backend")
    await page.click("#add-note button[type=submit]")
    await page.wait_for_selector("ol.timeline li.ev-note")
    await page.select_option("#post-update select[name=status]", "identified")
    await page.fill("#post-update textarea[name=text]", "We found the cause of the API errors.")
    await page.click("#post-update button[type=submit]")
    await page.wait_for_selector("ol.timeline li.ev-update")
    timeline = await page.inner_text("ol.timeline")
    assert "restarting the backend" in timeline and "We found the cause" in timeline
    await shots.take(page, "incident")
    # the public page (read over HTTP: in the browser it would also fetch /favicon.ico, which it has not)
    assert "We found the cause of the API errors." in (await d.get("/status")).text
