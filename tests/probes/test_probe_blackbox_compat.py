"""The daemon's ``api`` probes and the real blackbox_exporter (Debian's
``prometheus-blackbox-exporter``) probe the same targets — plain HTTP, HTTPS with a local CA
(root -> intermediate -> leaf), and an HTTP URL redirecting to the HTTPS one — and their samples
are compared: the same metric names, the same label names, the same values (timings: present and
>= 0 on both sides). The daemon's samples are read from its ``/metrics``, where they carry the
probed target in ``instance`` too.

blackbox_exporter 0.23 (Debian 12) writes ``probe_ssl_last_chain_info`` without the
``serialnumber`` label later versions added; ours has it, and it is the only difference allowed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.probes.probe_certs import issue, server_context, write_ca
from tests.support.daemon_helpers import eventually, run_daemon, write_config
from tests.support.probe_servers import HttpServer, Response

BLACKBOX = shutil.which("prometheus-blackbox-exporter")
pytestmark = pytest.mark.skipif(BLACKBOX is None, reason="prometheus-blackbox-exporter is not installed")

#: Families whose values are durations: compared as present and >= 0.
TIMINGS = {"probe_duration_seconds", "probe_http_duration_seconds", "probe_dns_lookup_time_seconds"}
#: Label names ours may add to a family (blackbox_exporter > 0.23 has them too).
NEWER_LABELS = {"probe_ssl_last_chain_info": {"serialnumber"}}
#: The labels the daemon puts on every probe sample.
OURS = {"probe", "target", "instance", "kind"}
HEALTH = {"status": "healthy", "checks": {"database": "healthy"}}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str, drop: set[str] = frozenset()) -> Samples:  # type: ignore[assignment]
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in drop))
            out[(s.name, labels)] = s.value
    return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    root = issue("Compat Root CA", ca=True, days=3650)
    inter = issue("Compat Intermediate", issuer=root, ca=True, days=400)
    leaf = issue("localhost", issuer=inter, days=45, sans=["localhost", "127.0.0.1"])
    return tmp, write_ca(tmp, root), server_context(tmp, leaf, inter)


@pytest.fixture(scope="module")
def blackbox(pki) -> Iterator[str]:
    tmp, ca_file, _ = pki
    config = tmp / "blackbox.yml"
    config.write_text(f"modules:\n  http:\n    prober: http\n    timeout: 10s\n    http:\n"
                      f"      preferred_ip_protocol: ip4\n      tls_config: {{ca_file: {ca_file}}}\n")
    port = _free_port()
    assert BLACKBOX is not None
    proc = subprocess.Popen([BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


async def _blackbox_probe(url: str, target: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        async def probe() -> str | None:
            try:
                r = await client.get(f"{url}/probe", params={"target": target, "module": "http"})
            except httpx.TransportError:  # still starting
                return None
            return r.text if r.status_code == 200 else None
        return await eventually(probe, timeout=60, what="blackbox_exporter's probe")


@pytest.fixture
async def targets(pki) -> AsyncIterator[dict[str, str]]:
    _, _, server_ctx = pki
    async with HttpServer(lambda r: Response.json(HEALTH)) as plain, \
            HttpServer(lambda r: Response.json(HEALTH), ssl_context=server_ctx) as tls:
        async with HttpServer(lambda r: Response(302, "", {"location": tls.url + "/health"})) as redirect:
            yield {"plain": plain.url, "tls": tls.url, "redirect": redirect.url}


async def test_api_probe_samples_match_blackbox_exporter(tmp_path, pki, blackbox, targets):
    _, ca_file, _ = pki
    config = write_config(tmp_path, "probes:\n" + "".join(
        f"  - {{name: {name}, kind: api, url: '{url}', ca_file: '{ca_file}', follow_redirects: true,"
        f" interval: 5s, timeout: 5s}}\n" for name, url in targets.items()))
    async with run_daemon(config) as d:
        async def all_probed() -> str | None:
            text = await d.metrics()
            got = _samples(text)
            probed = {dict(labels).get("probe") for (name, labels) in got if name == "probe_success"}
            return text if probed >= set(targets) else None
        ours_text = await eventually(all_probed, timeout=60, what="every probe's first result")

    if shutil.which("promtool"):  # the exposition with every probe family passes promtool's lint
        proc = subprocess.run(["promtool", "check", "metrics"], input=ours_text, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    for name, url in targets.items():
        theirs = _samples(await _blackbox_probe(blackbox, url + "/health"))
        ours_all = {key: v for key, v in _samples(ours_text).items()
                    if key[0].startswith("probe_") and ("probe", name) in key[1]}
        for (_, labels) in ours_all:
            assert dict(labels)["instance"] == dict(labels)["target"] == url
        ours = {(n, tuple(kv for kv in labels if kv[0] not in OURS)): v for (n, labels), v in ours_all.items()}
        _compare(name, theirs, ours)


def _compare(name: str, theirs: Samples, ours: Samples) -> None:
    our_names = {n for n, _ in ours}
    missing = {n for n, _ in theirs} - our_names
    assert not missing, f"{name}: blackbox_exporter's families missing from ours: {sorted(missing)}"
    for (metric, labels), value in theirs.items():
        label_names = {k for k, _ in labels}
        mine = [(dict(lbl), v) for (n, lbl), v in ours.items() if n == metric]
        extra = NEWER_LABELS.get(metric, set())
        matched = [(lbl, v) for lbl, v in mine
                   if set(lbl) - extra == label_names and all(lbl[k] == v2 for k, v2 in labels)]
        assert len(matched) == 1, f"{name}: {metric}{dict(labels)}: ours are {mine}"
        (_, mine_value), = matched
        if metric in TIMINGS:
            assert value >= 0 and mine_value >= 0, f"{name}: {metric}{dict(labels)}"
        else:
            assert mine_value == value, f"{name}: {metric}{dict(labels)}: ours {mine_value}, blackbox {value}"


def test_blackbox_binary_runs_here():
    """The comparison above needs the binary; CI installs it (``.ci/run``)."""
    assert BLACKBOX is not None
    out = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, timeout=30)
    assert "blackbox_exporter" in (out.stdout + out.stderr)


def test_samples_helper_reads_exposition():
    text = 'probe_http_duration_seconds{phase="tls"} 0.5\n'
    assert _samples(text) == {("probe_http_duration_seconds", (("phase", "tls"),)): 0.5}
    assert asyncio.iscoroutinefunction(_blackbox_probe)
