"""The tls probe against real TLS servers on 127.0.0.1 with certificates made here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from probes.base import run_probe
from probes.tls import TlsProbe, TlsSettings, hostname_matches
from tests.probes.probe_certs import Issued, issue, server_context, write_ca
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
    assert 9.9 < value(result, "probe_ssl_remaining_seconds") / 86400 <= 10
    assert value(result, "probe_tls_chain_verified") == 1 and value(result, "probe_tls_hostname_match") == 1
    labels = info(result)
    assert labels["subject"] == "CN=localhost" and labels["issuer"] == "CN=Test Root CA"
    assert labels["sans"] == "localhost,127.0.0.1"
    assert value(result, "probe_tls_version_info", version="TLS 1.3") == 1
    assert {s.name for s in result.samples} <= set(TlsProbe.METRICS) | HARNESS
    # blackbox_exporter's verified-chain families: the chain leaf -> root, the leaf described
    assert value(result, "probe_ssl_last_chain_expiry_timestamp_seconds") == expiry
    (chain_info,) = [s.labels for s in result.samples if s.name == "probe_ssl_last_chain_info"]
    assert chain_info == {"fingerprint_sha256": leaf.cert.fingerprint(hashes.SHA256()).hex(),
                          "subject": "CN=localhost", "issuer": "CN=Test Root CA", "subjectalternative": "localhost",
                          "serialnumber": format(leaf.cert.serial_number, "x")}
    assert sorted(s.labels["position"] for s in result.samples if s.name == "probe_tls_verified_cert_expiry") == \
        ["leaf", "root"]


async def test_intermediate_expiring_before_the_leaf(tmp_path, root):
    inter = issue("Test Intermediate", issuer=root, ca=True, days=5)
    leaf = issue("localhost", issuer=inter, days=60, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, inter, ca_file=write_ca(tmp_path, root))
    assert result.success, result.error
    assert value(result, "probe_tls_chain_certs") == 2
    assert value(result, "probe_ssl_earliest_cert_expiry") == inter.cert.not_valid_after_utc.timestamp()
    assert value(result, "probe_ssl_leaf_cert_expiry") == leaf.cert.not_valid_after_utc.timestamp()
    assert 4.9 < value(result, "probe_ssl_remaining_seconds") / 86400 <= 5
    assert result.details["earliest"] == "CN=Test Intermediate"
    # the alert can say which certificate is expiring: the intermediate
    (expiring,) = [s.labels for s in result.samples if s.name == "probe_tls_expiring_cert_info"]
    assert expiring["position"] == "intermediate" and expiring["subject"] == "CN=Test Intermediate"
    assert value(result, "probe_ssl_last_chain_expiry_timestamp_seconds") == inter.cert.not_valid_after_utc.timestamp()


def cross_signed(ca: Issued, by: Issued, *, days: float, not_before_days: float) -> Issued:
    """``ca``'s subject and key in a certificate issued by ``by`` (a cross-signature)."""
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(ca.cert.subject).issuer_name(by.cert.subject)
            .public_key(ca.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=not_before_days)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(by.key, hashes.SHA256()))
    return Issued(cert, ca.key)


async def test_expired_cross_signed_certificate_beside_a_trusted_path(tmp_path, root):
    """The server still sends an expired cross-signature of the root (as Let's Encrypt's chain did
    with DST Root CA X3): the path to the trusted root verifies, so the probe passes and the
    verified-chain families (which the certificate alert watches) leave the expired one out."""
    old_root = issue("Old Root", ca=True, days=3650)
    expired = cross_signed(root, old_root, days=-1, not_before_days=-400)
    inter = issue("Test Intermediate", issuer=root, ca=True, days=200)
    leaf = issue("localhost", issuer=inter, days=90, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, inter, expired, ca_file=write_ca(tmp_path, root))
    assert result.success, result.error
    assert value(result, "probe_ssl_earliest_cert_expiry") == expired.cert.not_valid_after_utc.timestamp()
    assert value(result, "probe_ssl_last_chain_expiry_timestamp_seconds") == leaf.cert.not_valid_after_utc.timestamp()
    assert 89 < value(result, "probe_ssl_remaining_seconds") / 86400 <= 90
    verified = {s.labels["fingerprint_sha256"]: s.labels["position"] for s in result.samples
                if s.name == "probe_tls_verified_cert_expiry"}
    fp = {c.cert.fingerprint(hashes.SHA256()).hex(): c for c in (leaf, inter, root, expired)}
    assert {fp[f].cert.subject.rfc4514_string(): p for f, p in verified.items()} == {
        "CN=localhost": "leaf", "CN=Test Intermediate": "intermediate", "CN=Test Root CA": "root"}
    assert expired.cert.fingerprint(hashes.SHA256()).hex() not in verified
    presented = [s.labels["subject"] for s in result.samples if s.name == "probe_tls_cert_expiry"]
    assert presented == ["CN=localhost", "CN=Test Intermediate", "CN=Test Root CA"]  # the expired one still shown


async def test_self_signed(tmp_path, root):
    leaf = issue("localhost", days=30, sans=["localhost"])
    result = await probe_server(tmp_path, leaf, ca_file=write_ca(tmp_path, root))
    assert not result.success
    assert "chain not verified: self-signed certificate" in result.error
    assert value(result, "probe_tls_chain_verified") == 0
    assert value(result, "probe_tls_hostname_match") == 1
    assert 29 < value(result, "probe_ssl_remaining_seconds") / 86400 <= 30  # the chain is still read


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
    assert value(result, "probe_ssl_remaining_seconds") / 86400 < 0


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
