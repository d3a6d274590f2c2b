"""The config accepts every probe kind actually registered in ``probes.PROBES``."""

from __future__ import annotations

import pytest

from monitor.config.loader import load_config_text
from monitor.errors import ConfigErrors
from probes import PROBES

REAL_PROBES = True  # keep the real registry (see conftest.test_probes)


def test_unknown_kind_lists_every_registered_kind():
    with pytest.raises(ConfigErrors) as info:
        load_config_text("probes:\n  - name: x\n    kind: no-such-kind\n", "m.yaml", env={})
    known = ", ".join(sorted(PROBES)) if PROBES else "none registered"
    assert str(info.value) == f'm.yaml:3:5: probes[0].kind: unknown probe kind "no-such-kind" (known kinds: {known})'


@pytest.mark.parametrize("kind", sorted(PROBES) or ["(none)"])
def test_every_registered_kind_has_settings_that_forbid_unknown_keys(kind):
    if kind == "(none)":
        pytest.skip("no probe kinds registered yet")
    settings = PROBES[kind].Settings
    assert settings.model_fields["kind"].annotation is not str, "kind is a Literal of the probe's kind"
    with pytest.raises(ConfigErrors) as info:
        load_config_text(f"probes:\n  - name: x\n    kind: {kind}\n    no_such_key: 1\n", "m.yaml", env={})
    assert 'm.yaml:4:5: probes[0]: unknown key "no_such_key"' in [str(e) for e in info.value.errors]
