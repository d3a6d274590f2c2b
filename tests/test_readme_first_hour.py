"""The README's first-hour commands work as written from the checkout's root (issue 16).

The commands of "Set up", "Run it for real" and the alerting CLI block name the venv's
executables and a config that exists; the ones that need no running demo are run here exactly as
the README prints them (through ``bash``, from the checkout's root, with the venv the README's
set-up makes): ``check``, ``routes test``, ``oncall``, ``simulate``. ``check`` passes on the
demo's config once the demo's certificate exists (made here as ``demo`` makes it), and
``probe --json | head`` ends quietly when ``head`` closes the pipe.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from examples.tls import make_self_signed_cert

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
VENV_CLI = ROOT / ".venv" / "bin" / "codebook-monitor"

needs_venv = pytest.mark.skipif(not VENV_CLI.exists(), reason="no .venv in the checkout (the README's set-up)")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _sh_lines(text: str) -> list[str]:
    """The command lines of the ``sh`` blocks of ``text`` (continuations joined, comments kept)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line)
    return lines


FIRST_HOUR = ["Set up and see it live (two commands)", "Run it for real", "Alerting, on-call and escalation"]


@pytest.mark.parametrize("title", FIRST_HOUR)
def test_first_hour_commands_name_the_venv_and_an_existing_config(title):
    for line in _sh_lines(_section(title)):
        command = line.split("#")[0].strip()
        if command.startswith(("curl", "export", "BACKEND_URL=", "python3 -m venv .venv && ")):
            continue
        words = command.split()
        assert words[0].startswith(".venv/bin/"), f"not the venv's executable: {line}"
        if "--config" in words:
            config = words[words.index("--config") + 1]
            assert (ROOT / config).exists(), f"no such config in the checkout: {line}"


def _run(command: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@needs_venv
def test_alerting_commands_run_as_written():
    ran = 0
    for line in _sh_lines(_section("Alerting, on-call and escalation")):
        command = line.split("  #")[0].strip()
        needs_daemon = any(f" {c} " in command for c in ("ack", "silence", "timeline"))
        if not command.startswith(".venv/bin/codebook-monitor") or needs_daemon:
            continue  # ack / silence / timeline need a running daemon
        result = _run(command)
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert result.stdout.strip(), command
        ran += 1
    assert ran == 4  # routes test, oncall, simulate (now and in the maintenance window)


@needs_venv
def test_check_passes_on_the_demo_config_once_the_demo_certificate_exists(tmp_path):
    (check,) = [line.split("  #")[0].strip() for line in _sh_lines(_section("Run it for real"))
                if " check " in line]
    assert check == ".venv/bin/codebook-monitor check --config examples/monitor.yaml"
    make_self_signed_cert(tmp_path / ".demo-tls", hostname="localhost", days_valid=90)
    result = _run(check, env={"MONITOR_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("examples/monitor.yaml: OK (")
    # Without the certificate, check names it (relative to the config file's folder).
    result = _run(check, env={"MONITOR_STATE_DIR": str(tmp_path / "nowhere")})
    assert result.returncode == 1
    assert f'probes[4].ca_file: cannot read ca_file "{tmp_path}/nowhere/.demo-tls/cert.pem": no such file' \
        in result.stderr


@needs_venv
def test_probe_json_into_a_closed_pipe_prints_no_traceback(tmp_path):
    # head -n 0 exits before the probes finish: the JSON is written into a closed pipe.
    result = _run(".venv/bin/codebook-monitor probe --config examples/monitor.yaml --json | head -n 0",
                  env={"BACKEND_URL": "http://127.0.0.1:9", "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x",
                       "MONITOR_STATE_DIR": str(tmp_path)})
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert "Broken pipe" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr


def test_the_demo_section_says_what_to_do_in_the_maintenance_window():
    from monitor.cli import build_parser

    text = _section("Set up and see it live (two commands)")
    assert "maintenance window monthly-maintenance open until 06:00 UTC: pages muted" in text
    assert ".venv/bin/codebook-monitor demo --no-maintenance" in _sh_lines(text)
    demo = build_parser().parse_args(["demo", "--no-maintenance"])
    assert demo.no_maintenance is True


def test_the_test_section_gives_the_duration_and_where_the_conformance_scripts_come_from():
    from tests.support.conformance import ENV, REPO_ROOT, conformance_dir

    text = _section("Test")
    assert "about 20 minutes on 2 cores" in text and "quiet machine" in text
    lines = _sh_lines(text)
    for tag, folder in (("v2.53.5", "promql"), ("v3.5.0", "promql-v3")):
        assert any(line.startswith(f"git clone -q --depth 1 --branch {tag} https://github.com/prometheus/prometheus ")
                   for line in lines), tag
        assert any(line.startswith("cp -r ") and line.endswith(f"/promql/promqltest/testdata ../shared/conformance/"
                                                                f"{folder}") for line in lines), folder
        # the folder the README fills is the one the tests read
        if not os.environ.get(ENV):
            assert conformance_dir(folder) == REPO_ROOT.parent / "shared" / "conformance" / folder
    assert "never copied" in text and ENV in text
