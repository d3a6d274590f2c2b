"""What the daemon holds in memory before it needs it: SDKs of receivers and probes that are not
configured are imported when one is built (the issue-10 memory target: <= 0.5x the peer stack)."""

from __future__ import annotations

import subprocess
import sys

LAZY = ["aiohttp", "slack_sdk.web.async_client", "cryptography.x509"]


def test_the_daemon_modules_load_no_slack_client_and_no_certificate_parser():
    code = ("import sys, monitor.cli, monitor.daemon.lifecycle, monitor.daemon.wiring\n"
            f"print([m for m in {LAZY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
