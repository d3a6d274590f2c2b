"""The tls probe against real TLS servers on 127.0.0.1 with certificates made here."""

from __future__ import annotations

import pytest

from probes.base import run_probe
from probes.tls import TlsProbe, TlsSettings, hostname_matches
from tests.probes.probe_certs import issue, server_context, write_ca
from tests.support.probe_servers import BlurtServer, HttpServer, Response, SilentServer, closed_port

HARNESS = {"probe_success", "probe_duration_seconds"}


def value(result, name, /, **labels):
    found = {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}
    return found[tuple(sorted(labels.items()))]


def info(result):
    return next(s.labels for s in result.samples if s.name == "probe_tls_cert_info")


@pytest.fixture(scope="module")
def root():
    return issue("Test Root CA", ca=True, days=3650)


async def probe_server(tmp_path, leaf, *chain, ca_file=None, server_name="localhost", timeout=2.0, **kw):
    async with HttpServer(lambda r: Response(200, "ok"), ssl_context=server_context(tmp_path, leaf, *chain)) as srv:
        probe = TlsProbe(TlsSettings(name="tls", host="127.0.0.1", port=srv.port, server_name=server_name,
                                     ca_file=ca_file, timeout=timeout, **kw))
        return await run_probe(probe, timeout)


async def test_cert_expiring_in_ten_days(tmp_path, root):
    leaf = issue("localhost", issuer=root, days=10, sans=["localhost", "127.0.0.1"])
    result = await probe_server(tmp_path, leaf, ca_file=write_ca(tmp_path, root))
    assert result.success, result.error
    expiry = leaf.cert.not_valid_after_utc.timestamp()
    assert value(result, "probe_ssl_earliest_cert_expiry") == expiry
    assert value(result, "probe_ssl_leaf_cert_expiry") == expiry
    assert 9.9 < value(result, "probe_ssl_days_left") <= 10
    assert value(result, "probe_tls_chain_verified") == 1 and value(result, "probe_tls_hostname_match") == 1
    labels = info(result)
    assert labels["subject"] == "CN=localhost" and labels["issuer"] == "CN=Test Root CA"
    assert labels["sans"] == "localhost,127.0.0.1"
    assert value(result, "probe_tls_version_info", version="TLSv1.3") == 1
    assert {s.name for s in result.samples} <= set(TlsProbe.METRICS) | HARNESS


async def test_intermediate_expiring_before_the_leaf(tmp_path, root):
    inter = issue("Test Intermediate", issuer=root, ca=True, days=5)
    leaf = issue("localhost", issuer=inter, days=60, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, inter, ca_file=write_ca(tmp_path, root))
    assert result.success, result.error
    assert value(result, "probe_tls_chain_certs") == 2
    assert value(result, "probe_ssl_earliest_cert_expiry") == inter.cert.not_valid_after_utc.timestamp()
    assert value(result, "probe_ssl_leaf_cert_expiry") == leaf.cert.not_valid_after_utc.timestamp()
    assert 4.9 < value(result, "probe_ssl_days_left") <= 5
    assert result.details["earliest"] == "CN=Test Intermediate"


async def test_self_signed(tmp_path, root):
    leaf = issue("localhost", days=30, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, ca_file=write_ca(tmp_path, root))
    assert not result.success
    assert "chain not verified: self-signed certificate" in result.error
    assert value(result, "probe_tls_chain_verified") == 0
    assert value(result, "probe_tls_hostname_match") == 1
    assert 29 < value(result, "probe_ssl_days_left") <= 30  # the chain is still read


async def test_wrong_hostname(tmp_path, root):
    leaf = issue("other.example", issuer=root, days=30, sans=["other.example"])
    result = await probe_server(tmp_path, leaf, ca_file=write_ca(tmp_path, root))
    assert not result.success
    assert "hostname 'localhost' does not match the certificate (other.example)" in result.error
    assert value(result, "probe_tls_chain_verified") == 1 and value(result, "probe_tls_hostname_match") == 0


async def test_insecure_skip_verify_still_exports(tmp_path, root):
    leaf = issue("other.example", days=30, sans=["other.example"])
    result = await probe_server(tmp_path, leaf, insecure_skip_verify=True)
    assert result.success, result.error
    assert value(result, "probe_tls_chain_verified") == 0 and value(result, "probe_tls_hostname_match") == 0


async def test_expired_certificate(tmp_path, root):
    leaf = issue("localhost", issuer=root, days=-1, not_before_days=-30, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, ca_file=write_ca(tmp_path, root))
    assert not result.success
    assert "certificate expired (CN=localhost)" in result.error and "certificate has expired" in result.error
    assert value(result, "probe_ssl_days_left") < 0


async def test_system_trust_store_rejects_test_ca(tmp_path, root):
    leaf = issue("localhost", issuer=root, days=30, sans=["localhost"])
    result = await probe_server(tmp_path, leaf)  # no ca_file: system roots
    assert not result.success and "unable to get local issuer certificate" in result.error


async def test_connection_refused():
    probe = TlsProbe(TlsSettings(name="tls", host="127.0.0.1", port=closed_port()))
    result = await run_probe(probe, 2)
    assert not result.success and "cannot connect to 127.0.0.1:" in result.error


async def test_server_that_never_handshakes():
    async with SilentServer() as srv:
        result = await run_probe(TlsProbe(TlsSettings(name="tls", host="127.0.0.1", port=srv.port, timeout=0.5)), 0.5)
    assert not result.success and "timeout" in result.error


async def test_plain_http_port_is_a_handshake_failure():
    async with BlurtServer() as srv:
        result = await run_probe(TlsProbe(TlsSettings(name="tls", host="127.0.0.1", port=srv.port)), 2)
    assert not result.success and "TLS handshake with 127.0.0.1:" in result.error
    assert result.error.endswith("failed: wrong version number")


def test_hostname_rules():
    cert = issue("ignored", days=1, sans=["*.codebook.example", "api.other.example", "10.0.0.1"]).cert
    assert hostname_matches(cert, "api.codebook.example")
    assert hostname_matches(cert, "API.Codebook.Example.")
    assert not hostname_matches(cert, "codebook.example")
    assert not hostname_matches(cert, "a.b.codebook.example")
    assert hostname_matches(cert, "api.other.example")
    assert hostname_matches(cert, "10.0.0.1") and not hostname_matches(cert, "10.0.0.2")
    cn_only = issue("legacy.example", days=1).cert
    assert hostname_matches(cn_only, "legacy.example")


def test_target():
    assert TlsSettings(name="t", host="api.example").target() == "api.example:443"


async def test_each_certificate_has_its_own_expiry_series_keyed_by_the_certificate(tmp_path, root):
    """Issue 16: a CDN rolling out a renewal serves old and new certificates by turns; one expiry
    series per certificate (serial, SHA-256 fingerprint) lets the shipped rule follow each."""
    from cryptography.hazmat.primitives import hashes

    inter = issue("Test Intermediate", issuer=root, ca=True, days=400)
    old = issue("localhost", issuer=inter, days=10, sans=["localhost"])
    new = issue("localhost", issuer=inter, days=90, sans=["localhost"])
    ca = write_ca(tmp_path, root)
    seen = {}
    for name, leaf in (("old", old), ("new", new)):
        result = await probe_server(tmp_path, leaf, inter, ca_file=ca)
        assert result.success, result.error
        series = {s.labels["position"]: (s.labels, s.value) for s in result.samples
                  if s.name == "probe_tls_cert_expiry"}
        assert set(series) == {"leaf", "intermediate"}
        labels, expiry = series["leaf"]
        assert expiry == leaf.cert.not_valid_after_utc.timestamp()
        assert labels["serial"] == format(leaf.cert.serial_number, "x")
        assert labels["fingerprint_sha256"] == leaf.cert.fingerprint(hashes.SHA256()).hex()
        assert labels["subject"] == "CN=localhost"
        assert series["intermediate"][1] == inter.cert.not_valid_after_utc.timestamp()
        seen[name] = labels
    assert seen["old"]["fingerprint_sha256"] != seen["new"]["fingerprint_sha256"]
