"""The ``api`` probe's blackbox_exporter samples against real HTTP/TLS servers on 127.0.0.1:
redirects followed when configured (and the certificates of every HTTPS hop exported), the API
key kept to its origin, ``fail_if_body_*`` patterns, and the phases (``probes/blackbox.py``)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from probes.api import ApiProbe, ApiSettings
from probes.base import run_probe
from probes.blackbox import PHASES, phase_seconds
from probes.transport import Hop
from tests.probes.probe_certs import issue, server_context, write_ca
from tests.support.probe_servers import HttpServer, Response

HEALTH = {"status": "healthy", "checks": {}}


def values(result, name):
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples if s.name == name}


def value(result, name, /, **labels):
    return values(result, name)[tuple(sorted(labels.items()))]


@pytest.fixture(scope="module")
def root():
    return issue("Api Root CA", ca=True, days=3650)


async def run(settings: ApiSettings):
    probe = ApiProbe(settings)
    try:
        return await run_probe(probe, settings.timeout)
    finally:
        await probe.close()


async def test_redirecting_front_door_exports_every_hops_certificates(tmp_path, root):
    front_leaf = issue("front", issuer=root, days=5, sans=["127.0.0.1"])  # expiring on the front door
    api_leaf = issue("api", issuer=root, days=300, sans=["127.0.0.1"])
    ca = write_ca(tmp_path, root)
    async with HttpServer(lambda r: Response.json(HEALTH), ssl_context=server_context(tmp_path, api_leaf)) as api:
        async with HttpServer(lambda r: Response(301, "", {"location": api.url + "/health"}),
                              ssl_context=server_context(tmp_path, front_leaf)) as front:
            result = await run(ApiSettings(name="b", url=front.url, ca_file=ca, follow_redirects=True, timeout=5))
            unfollowed = await run(ApiSettings(name="b", url=front.url, ca_file=ca, timeout=5))
    assert result.success, result.error
    assert value(result, "probe_http_redirects") == 1 and value(result, "probe_http_ssl") == 1
    assert value(result, "probe_http_status_code") == 200
    fp = {c.cert.fingerprint(hashes.SHA256()).hex(): c for c in (front_leaf, api_leaf, root)}
    verified = {fp[dict(k)["fingerprint_sha256"]].cert.subject.rfc4514_string(): v
                for k, v in values(result, "probe_tls_verified_cert_expiry").items()}
    assert verified == {"CN=front": front_leaf.cert.not_valid_after_utc.timestamp(),
                        "CN=api": api_leaf.cert.not_valid_after_utc.timestamp(),
                        "CN=Api Root CA": root.cert.not_valid_after_utc.timestamp()}
    # blackbox_exporter's single-valued families describe the last response's connection
    assert value(result, "probe_ssl_last_chain_expiry_timestamp_seconds") == \
        api_leaf.cert.not_valid_after_utc.timestamp()
    (info,) = values(result, "probe_ssl_last_chain_info")
    assert dict(info)["subject"] == "CN=api"
    # every phase summed over both hops, two TLS handshakes
    assert {dict(k)["phase"] for k in values(result, "probe_http_duration_seconds")} == set(PHASES)
    assert value(result, "probe_http_duration_seconds", phase="tls") > 0
    # without follow_redirects the 301 is the answer, as before
    assert not unfollowed.success and value(unfollowed, "probe_http_status_code") == 301
    assert value(unfollowed, "probe_http_redirects") == 0


async def test_api_key_stays_with_its_origin(tmp_path):
    async with HttpServer(lambda r: Response.json(HEALTH)) as other:
        async with HttpServer(lambda r: Response(302, "", {"location": other.url + "/health"})) as first:
            result = await run(ApiSettings(name="b", url=first.url, api_key="ck_live_secret_value",
                                           follow_redirects=True, timeout=5))
            assert result.success, result.error
            assert first.requests[0].headers.get("x-api-key") == "ck_live_secret_value"
            assert "x-api-key" not in other.requests[0].headers


async def test_body_regexps_fail_the_probe_and_say_so(tmp_path):
    async with HttpServer(lambda r: Response.json({**HEALTH, "note": "maintenance window"})) as srv:
        bad = await run(ApiSettings(name="b", url=srv.url, fail_if_body_matches_regexp=["maint[a-z]+"]))
        good = await run(ApiSettings(name="b", url=srv.url, fail_if_body_not_matches_regexp=['"status":\\s*"healthy"']))
    assert not bad.success and "body matched regular expression 'maint[a-z]+'" in bad.error
    assert value(bad, "probe_failed_due_to_regex") == 1
    assert good.success and value(good, "probe_failed_due_to_regex") == 0


def test_invalid_regexp_is_a_settings_error():
    with pytest.raises(ValueError, match="invalid regular expression"):
        ApiSettings(name="b", url="http://127.0.0.1:9", fail_if_body_matches_regexp=["(a"])


def test_phases_sum_over_hops_and_skip_what_did_not_happen():
    redirect = Hop("https://a/", 0.0, resolved=1.0, connected=3.0, tls_start=3.0, tls_done=6.0, first_byte=10.0)
    final = Hop("http://b/", 20.0, resolved=20.5, connected=21.0, first_byte=23.0, end=27.0)
    refused = Hop("http://c/", 30.0, resolved=30.25)
    assert phase_seconds([redirect, final, refused]) == {
        "resolve": 1.0 + 0.5 + 0.25, "connect": 2.0 + 0.5, "tls": 3.0, "processing": 4.0 + 2.0, "transfer": 4.0}
    assert phase_seconds([]) == dict.fromkeys(PHASES, 0.0)


async def test_blackbox_metrics_false_drops_the_http_families():
    async with HttpServer(lambda r: Response.json(HEALTH)) as srv:
        result = await run(ApiSettings(name="b", url=srv.url, blackbox_metrics=False))
    assert result.success, result.error
    names = {s.name for s in result.samples}
    assert "probe_http_status_code" in names and "probe_http_duration_seconds" not in names
    assert not any(n.startswith("probe_ip_") for n in names)
