"""The CLI findings of a new user's first hour (issue 16, items 11 and 12).

- ``slo status``/``slo report`` take ``--port`` as ``ack``/``silence`` do;
- every "cannot reach the daemon" message says how to point at another daemon;
- ``silence add --duration -5m`` says durations are positive (not argparse's "expected one argument").

Real HTTP servers on 127.0.0.1 (``TinyHttpServer``); a closed port for the unreachable daemon.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.daemon_helpers import TinyHttpServer
from tests.support.probe_servers import closed_port

HINT = "(pass --url/--port or set MONITOR_URL)"
_EMPTY_VECTOR = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})


async def test_slo_status_finds_the_daemon_by_port(tmp_path, monkeypatch, capsys):
    from monitor.cli import main

    monkeypatch.delenv("MONITOR_URL", raising=False)
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("server:\n  port: 1\n")
    async with TinyHttpServer({"/api/v1/query": (200, "application/json", _EMPTY_VECTOR)}) as srv:
        assert await asyncio.to_thread(main, ["slo", "status", "--config", str(cfg), "--port", str(srv.port)]) == 0
        assert srv.hits["/api/v1/query"] >= 1
    assert "no SLOs recorded yet" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["slo", "status"], ["slo", "report"], ["silence", "list"], ["silence", "expire", "abc"],
    ["ack", "0123abcd"], ["timeline", "0123abcd"],
])
def test_every_unreachable_daemon_message_says_how_to_point_elsewhere(argv, tmp_path, monkeypatch, capsys):
    from monitor.cli import main

    monkeypatch.delenv("MONITOR_URL", raising=False)
    port = closed_port()
    assert main([*argv, "--config", str(tmp_path / "absent.yaml"), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the daemon at http://127.0.0.1:{port}" in err
    assert HINT in err


@pytest.mark.parametrize("flag", [["--duration", "-5m"], ["-d", "-5m"], ["--duration=-5m"]])
def test_silence_add_says_a_negative_duration_is_not_allowed(flag, tmp_path, capsys):
    from monitor.cli import main

    assert main(["silence", "add", "alertname=X", *flag, "--comment", "deploy",
                 "--url", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert 'codebook-monitor: error: --duration: must be positive, got "-5m"' in err
    assert "expected one argument" not in err
