"""``codebook-monitor slo generate`` (promtool accepts its output; the committed example is current)
and ``slo status`` against a running daemon."""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx

from model.labels import Labels
from monitor.cli import main
from monitor.slo.status import format_status, status_rows
from tests.shipped.shipped_helpers import EXAMPLE_CONFIG, ROOT, require_tool
from monitor.config.loader import load_config
from monitor.daemon.lifecycle import Lifecycle
from monitor.daemon.wiring import Daemon
from tests.support.daemon_helpers import write_config

from .test_slo_config import INLINE, OPENSLO, SLOTH


def test_committed_example_rules_are_what_generate_writes(capsys):
    assert main(["slo", "generate", "-c", str(EXAMPLE_CONFIG)]) == 0
    out = capsys.readouterr().out
    committed = (ROOT / "examples" / "slos.rules.yaml").read_text()
    assert out == committed, ("examples/slos.rules.yaml is stale: run "
                              "codebook-monitor slo generate -c examples/monitor.yaml -o examples/slos.rules.yaml")


def test_promtool_checks_generated_rules_of_every_format(tmp_path):
    (tmp_path / "sloth.yaml").write_text(SLOTH)
    (tmp_path / "openslo.yaml").write_text(OPENSLO)
    (tmp_path / "monitor.yaml").write_text(INLINE + "slo_files: [sloth.yaml, openslo.yaml]\n")
    out = tmp_path / "slos.rules.yaml"
    assert main(["slo", "generate", "-c", str(tmp_path / "monitor.yaml"), "-o", str(out), "--interval", "30s"]) == 0
    r = subprocess.run([require_tool("promtool"), "check", "rules", str(out)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 104 rules found" in r.stdout


def test_generate_without_slos_fails(tmp_path, capsys):
    (tmp_path / "monitor.yaml").write_text("log: {level: INFO}\n")
    assert main(["slo", "generate", "-c", str(tmp_path / "monitor.yaml")]) == 1
    assert "no SLOs" in capsys.readouterr().err


def test_status_rows_and_table():
    def res(sid, v, **labels):
        return {"metric": {"sloth_id": sid, **labels}, "value": [0, str(v)]}

    rows = status_rows({
        "info": [res("db-up", 1, slo_period="30d")],
        "objective": [res("db-up", 0.999)], "budget": [res("db-up", 0.001)],
        "period_burn": [res("db-up", 0.5)], "remaining": [res("db-up", 0.5)], "burn_now": [res("db-up", "NaN")],
        "firing": [res("db-up", 1, tier="ticket-slow")],
    })
    assert rows == [{"slo": "db-up", "objective": 0.999, "period": "30d", "sli": 1 - 0.0005,
                     "budget_remaining": 0.5, "burn_rate": None, "firing": ["ticket-slow"]}]
    table = format_status(rows).splitlines()
    assert table[0].split() == ["SLO", "OBJECTIVE", "PERIOD", "SLI", "BUDGET", "LEFT", "BURN", "NOW", "FIRING"]
    assert table[1].split() == ["db-up", "99.900%", "30d", "99.950%", "50.0%", "-", "ticket-slow"]


CONFIG = """\
rules:
  evaluation_interval: 1h   # the test evaluates by hand
slos:
  - service: database
    name: availability
    objective: 99.9
    sli:
      probe: {selector: '{kind="database"}'}
"""


async def test_status_against_the_running_daemon_shows_the_fast_burn_page(tmp_path, capsys):
    config = load_config(write_config(tmp_path, CONFIG))
    daemon = Daemon(config)
    now = time.time()
    series = Labels.of({"__name__": "probe_success", "kind": "database", "probe": "postgres"})
    # 2 hours of a probe every 15 s: healthy, then failing for the last 5 minutes
    start = now - 7200
    daemon.store.append_batch([(series, int((start + 15 * i) * 1000), 0.0 if start + 15 * i > now - 300 else 1.0)
                               for i in range(int(7200 / 15) + 1)])
    # the history of the recorded series, evaluated every minute as the daemon would have (the
    # period SLI reads them), before the daemon starts its own evaluation at "now"
    for t in range(int(start) + 300, int(now) - 30, 60):
        await daemon.rules.eval_all(float(t))
    lifecycle = Lifecycle(daemon, config.source_file, host="127.0.0.1")
    task = asyncio.create_task(lifecycle.serve())
    try:
        while not lifecycle.server.started:
            assert not task.done(), "serve() returned before the server started"
            await asyncio.sleep(0.05)
        port = lifecycle.server.servers[0].sockets[0].getsockname()[1]
        await daemon.rules.eval_all()
        assert await asyncio.to_thread(main, ["slo", "status", "--url", f"http://127.0.0.1:{port}"]) == 0
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/api/v1/slos")
            rep = await client.get(f"http://127.0.0.1:{port}/api/v1/slos/database-availability/report")
            missing = await client.get(f"http://127.0.0.1:{port}/api/v1/slos/nope/report")
            bad_month = await client.get(f"http://127.0.0.1:{port}/api/v1/slos/database-availability/report",
                                         params={"month": "2026-13"})
        assert await asyncio.to_thread(main, ["slo", "report", "--url", f"http://127.0.0.1:{port}"]) == 0
    finally:
        lifecycle.server.should_exit = True
        await asyncio.wait_for(task, 30)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "SLO"
    cells = lines[1].split()
    assert cells[0] == "database-availability" and cells[1] == "99.900%" and cells[2] == "30d"
    # 20 failed runs of 481 (4.2%), weighted by the recorded 5m windows (~2.5-4%): budget overspent;
    # burning ~1000x now; the fast page firing
    assert 95.0 < float(cells[3].rstrip("%")) < 98.0, cells
    assert cells[4].startswith("-") and 900 < float(cells[5].rstrip("x")) <= 1000, cells
    assert cells[6] == "page-fast"
    # GET /api/v1/slos: the same rows as JSON
    assert r.status_code == 200
    (row,) = r.json()["data"]
    assert row["slo"] == "database-availability" and row["objective"] == 0.999 and row["period"] == "30d"
    assert row["firing"] == ["page-fast"] and row["budget_remaining"] < 0 and 0.95 < row["sli"] < 0.98
    # the month to date (the 2 hours of samples, or their part in this month)
    assert rep.status_code == 200, rep.text
    report = rep.json()["data"]
    assert report["slo"] == "database-availability" and report["complete"] is False
    assert report["compliant"] is False and 0.9 < report["sli"] < 0.999 and report["budget_used"] > 1
    assert missing.status_code == 404 and bad_month.status_code == 400
    report_lines = lines[2 + lines[2:].index(next(x for x in lines[2:] if x.startswith("SLO "))):]
    assert report_lines[1].split()[0] == "database-availability" and report_lines[1].split()[-1] == "NO"


def test_check_lists_config_and_slo_file_errors_in_one_round(tmp_path, capsys):
    # Regression: `check` showed the SLO file's errors only after the config's were fixed.
    (tmp_path / "monitor.yaml").write_text("log: {level: LOUD}\nslo_files: [sloth.yaml]\n")
    (tmp_path / "sloth.yaml").write_text(SLOTH.replace("objective: 99.9", "objective: 101"))
    assert main(["check", "-c", str(tmp_path / "monitor.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'monitor.yaml'}:1:" in err, err
    assert f"{tmp_path / 'sloth.yaml'}:7:5: slos[0].objective: must be less than 100.0" in err, err
