"""Secret helpers: the shown prefix and collecting every secret of a config."""

from __future__ import annotations

from monitor.config.loader import load_config_text
from model.secrets import redact
from monitor.config.secrets import secret_values


def test_redact_shows_a_prefix_at_most():
    assert redact("ck_live_1234567890abcdef") == "ck_live_..."
    assert redact("0123456789abcdef") == "01234567..."
    assert redact("0123456789abcde") == "***"
    assert redact("") == "***"


def test_secret_values_finds_every_secret(tmp_path):
    (tmp_path / "k").write_text("from-a-file-123\n")
    text = """\
probes:
  - {name: a, kind: keycheck, api_key: key-in-a-probe-1}
  - {name: b, kind: httpcheck, url: "http://x/", api_key_file: k}
  - {name: c, kind: httpcheck, url: "http://x/"}
  - {name: d, kind: keycheck, api_key: abc}
api:
  tokens:
    - {name: a, token: token-value-xyz}
    - {name: b, token: key-in-a-probe-1}
"""
    config = load_config_text(text, base_dir=tmp_path, env={})
    assert secret_values(config) == ["key-in-a-probe-1", "from-a-file-123", "token-value-xyz"]
