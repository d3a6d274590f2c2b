"""The PROBES registry contract, and the disk probe (real filesystem)."""

from __future__ import annotations

import inspect
import typing

import pytest
from pydantic import SecretStr, ValidationError

from probes import PROBES
from probes.base import ProbeSettings, run_probe
from model.secrets import scrub_secrets, secret_prefix
from probes.disk import DiskProbe, DiskSettings

KINDS = {"api", "database", "pinecone", "llm", "tls", "quota", "sql", "disk", "cost", "rag", "backup"}


def test_every_kind_is_registered():
    assert set(PROBES) == KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_probe_class_contract(kind):
    cls = PROBES[kind]
    assert cls.kind == kind
    assert issubclass(cls.Settings, ProbeSettings)
    # the config layer builds a discriminated union on `kind`
    assert typing.get_args(cls.Settings.model_fields["kind"].annotation) == (kind,)
    assert cls.Settings.model_config["extra"] == "forbid"
    assert cls.METRICS and all(isinstance(h, str) and h.endswith(".") for h in cls.METRICS.values())
    assert all(n.startswith(("probe_", "llm_token_quota_", "llm_spend_", "gen_ai_client_")) for n in cls.METRICS)
    params = inspect.signature(cls.__init__).parameters
    assert "http_client" in params and params["http_client"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(cls.run) and inspect.iscoroutinefunction(cls.close)
    assert cls.__doc__ and cls.Settings.__doc__


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_secrets_are_secretstr(kind):
    for name, field in PROBES[kind].Settings.model_fields.items():
        if name in ("api_key", "dsn") or name.endswith("_api_key"):
            assert SecretStr in (field.annotation, *typing.get_args(field.annotation))


async def test_disk_free_ratio(tmp_path):
    probe = DiskProbe(DiskSettings(name="disk", paths=[str(tmp_path), "/"]))
    result = await run_probe(probe, 2)
    assert result.success, result.error
    ratios = {s.labels["path"]: s.value for s in result.samples if s.name == "probe_disk_free_ratio"}
    assert set(ratios) == {str(tmp_path), "/"} and all(0 <= r <= 1 for r in ratios.values())
    free = {s.labels["path"]: s.value for s in result.samples if s.name == "probe_disk_free_bytes"}
    total = {s.labels["path"]: s.value for s in result.samples if s.name == "probe_disk_total_bytes"}
    assert 0 < free["/"] <= total["/"]
    assert ratios["/"] == pytest.approx(free["/"] / total["/"])
    assert {s.name for s in result.samples} <= set(DiskProbe.METRICS) | {"probe_success", "probe_duration_seconds"}


async def test_disk_missing_path_fails_but_keeps_the_others(tmp_path):
    missing = str(tmp_path / "nope")
    result = await run_probe(DiskProbe(DiskSettings(name="disk", paths=[missing, str(tmp_path)])), 2)
    assert not result.success
    assert result.error == f"cannot read {missing}: No such file or directory"
    assert [s.labels["path"] for s in result.samples if s.name == "probe_disk_free_ratio"] == [str(tmp_path)]


def test_disk_settings():
    assert DiskSettings(name="d", paths=["/", "/var"]).target() == "/,/var"
    with pytest.raises(ValidationError):
        DiskSettings(name="d", paths=[])


def test_secret_helpers():
    assert secret_prefix(SecretStr("ck_live_1234567890abcdef")) == "ck_liv..."
    assert secret_prefix("short") == "***" and secret_prefix(None) == ""
    assert scrub_secrets("key ck_live_1234567890abcdef bad", SecretStr("ck_live_1234567890abcdef"), None) == \
        "key ck_liv... bad"
