"""Loading valid configs: defaults, ``${VAR}``, ``*_file`` secrets, probe kinds, rule-file globs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from monitor.config import Config, check_config_file, load_config, load_config_text
from monitor.config.loader import _normalise_loc, format_loc
from monitor.errors import ConfigErrors
from tests.config.config_helpers import ENV, HttpCheckSettings, KeyCheckSettings


FULL = """\
server:
  host: 0.0.0.0
  port: 9200
log:
  level: debug
probes:
  - name: api
    kind: httpcheck
    url: http://127.0.0.1:8000/health
    interval: 1m
    timeout: 5s
    labels: {team: core}
    ca_file: certs/ca.pem
  - name: llm
    kind: keycheck
    api_key_file: secrets/key.txt
scrape:
  - name: backend
    url: http://127.0.0.1:8000/metrics
    labels: {env: dev}
tsdb:
  retention: 3h
  max_series: 5000
rules:
  files: [rules/*.yaml, extra/one.yaml]
  evaluation_interval: 30s
  external_labels: {cluster: eu-1}
api:
  tokens:
    - name: oncall
      token: ${MONITOR_TOKEN}
"""


def write(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_empty_file_gives_every_default(tmp_path):
    config = load_config(write(tmp_path, ""), env={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9115
    assert config.server.external_url == "http://127.0.0.1:9115"
    assert config.log.level == "INFO"
    assert config.probes == [] and config.scrape == [] and config.receivers == []
    assert config.tsdb.retention == 7200.0 and config.tsdb.max_series == 200_000
    assert config.rules.evaluation_interval == 15.0
    assert config.rules.resolved_retention == 900.0
    assert config.rules.query_max_series == 10_000
    assert config.api.tokens == []
    assert config.config_dir == tmp_path
    assert config.source_file == tmp_path / "monitor.yaml"


def test_full_config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key.txt").write_text("sk-test-0123456789abcdef\n")
    config = load_config(write(tmp_path, FULL), env=ENV)
    assert config.server.external_url == "http://127.0.0.1:9200"
    assert config.log.level == "DEBUG"
    api, llm = config.probes
    assert isinstance(api, HttpCheckSettings) and isinstance(llm, KeyCheckSettings)
    assert (api.interval, api.timeout, api.labels) == (60.0, 5.0, {"team": "core"})
    assert api.ca_file == str(tmp_path / "certs" / "ca.pem"), \
        "a *_file key that is no secret's companion is a path, resolved against the config's directory"
    assert llm.api_key.get_secret_value() == "sk-test-0123456789abcdef", "trailing newline stripped"
    assert (llm.interval, llm.timeout) == (30.0, 10.0)
    (job,) = config.scrape
    assert (job.interval, job.timeout, job.honor_labels) == (15.0, 10.0, False)
    assert config.tsdb.retention == 3 * 3600.0
    assert config.rules.external_labels == {"cluster": "eu-1"}
    assert config.api.tokens[0].token.get_secret_value() == ENV["MONITOR_TOKEN"]


def test_external_url_given_is_kept_without_trailing_slash():
    config = load_config_text("server:\n  external_url: https://monitor.example.com/\n", env={})
    assert config.server.external_url == "https://monitor.example.com"


@pytest.mark.parametrize(("value", "env", "expected"), [
    ("${A}", {"A": "x"}, "x"),
    ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
    ("${A:-fallback}", {}, "fallback"),
    ("${A:-fallback}", {"A": ""}, "fallback"),
    ("${A:-}", {}, ""),
    ("${A}", {"A": ""}, ""),
    ("$${A}", {}, "${A}"),
    ("no variables", {}, "no variables"),
])
def test_environment_substitution(value, env, expected):
    config = load_config_text(f'rules:\n  external_labels:\n    x: "{value}"\n', env=env)
    assert config.rules.external_labels["x"] == expected


def test_substituted_text_is_then_typed():
    config = load_config_text("server:\n  port: ${PORT}\n", env={"PORT": "9300"})
    assert config.server.port == 9300


def test_every_missing_variable_is_named():
    with pytest.raises(ConfigErrors) as info:
        load_config_text("server:\n  host: ${HOST}\n  external_url: http://${A}:${B}\n", "m.yaml", env={"A": "a"})
    assert [str(e) for e in info.value.errors] == [
        'm.yaml:2:3: server.host: environment variable "HOST" is not set',
        'm.yaml:3:3: server.external_url: environment variable "B" is not set',
    ]


def test_secret_file_is_relative_to_the_config_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "token").write_text("tok-abcdefghijklmnopqrstuvwxyz\r\n")
    path = write(tmp_path / "conf", "api:\n  tokens:\n    - name: a\n      token_file: token\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/monitor.yaml", env={})
    assert config.api.tokens[0].token.get_secret_value() == "tok-abcdefghijklmnopqrstuvwxyz"
    assert config.config_dir == path.parent.absolute()


def test_absolute_secret_file(tmp_path):
    (tmp_path / "k").write_text("abc-secret-value")
    text = f"probes:\n  - name: llm\n    kind: keycheck\n    api_key_file: {tmp_path / 'k'}\n"
    config = load_config_text(text, env={})
    assert config.probes[0].api_key.get_secret_value() == "abc-secret-value"


def test_unknown_file_key_on_a_model_without_that_secret_is_an_unknown_key():
    with pytest.raises(ConfigErrors) as info:
        load_config_text("server:\n  host_file: /etc/hostname\n", "m.yaml", env={})
    assert str(info.value) == 'm.yaml:2:3: server: unknown key "host_file"'


def test_merge_keys_and_anchors():
    text = """\
probes:
  - &base
    name: a
    kind: httpcheck
    url: http://127.0.0.1:1/
    interval: 20s
  - <<: *base
    name: b
"""
    config = load_config_text(text, env={})
    assert [(p.name, p.interval) for p in config.probes] == [("a", 20.0), ("b", 20.0)]


def test_null_sections_are_absent():
    config = load_config_text("probes:\nscrape:\nserver:\n", env={})
    assert config.probes == [] and config.server.port == 9115


def test_model_validate_without_loader():
    config = Config.model_validate({"probes": [{"name": "x", "kind": "keycheck", "api_key": "k"}]})
    assert isinstance(config.probes[0].api_key, SecretStr)


def test_resolved_rule_files(tmp_path):
    (tmp_path / "rules").mkdir()
    for name in ("b.yaml", "a.yaml", "skip.txt"):
        (tmp_path / "rules" / name).write_text("groups: []\n")
    text = "rules:\n  files: ['rules/*.yaml', 'rules/a.yaml', 'missing.yaml', 'none/*.yaml']\n"
    config = load_config(write(tmp_path, text), env={})
    assert config.resolved_rule_files() == [
        tmp_path / "rules" / "a.yaml", tmp_path / "rules" / "b.yaml", tmp_path / "missing.yaml",
    ]


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigErrors) as info:
        load_config(missing)
    assert str(info.value) == (f"{missing}: no such file; pass --config FILE "
                               "(the demo's config is examples/monitor.yaml)")
    assert check_config_file(missing) == [str(info.value)]


def test_check_config_file_is_empty_for_a_valid_file(tmp_path):
    assert check_config_file(write(tmp_path, "server:\n  port: 9116\n"), env={}) == []


def test_unknown_keys_at_several_depths_in_file_order():
    text = "zzz: 1\nserver:\n  portt: 1\napi:\n  tokens:\n    - name: a\n      token: b\n      extra: c\naaa: 2\n"
    with pytest.raises(ConfigErrors) as info:
        load_config_text(text, "m.yaml", env={})
    assert [str(e) for e in info.value.errors] == [
        'm.yaml:1:1: unknown key "zzz"',
        'm.yaml:3:3: server: unknown key "portt"',
        'm.yaml:8:7: api.tokens[0]: unknown key "extra"',
        'm.yaml:9:1: unknown key "aaa"',
    ]


def test_no_secret_in_any_error_message(tmp_path):
    secret = ENV["MONITOR_TOKEN"]
    (tmp_path / "k").write_text("file-secret-0123456789\n")
    text = """\
server:
  port: ${MONITOR_TOKEN}
api:
  tokens:
    - name: a
      token: ${MONITOR_TOKEN}
      tokn: ${MONITOR_TOKEN}
    - name: b
      token: 12
probes:
  - name: llm
    kind: keycheck
    api_key_file: k
    interval: file-secret-0123456789
"""
    with pytest.raises(ConfigErrors) as info:
        load_config(write(tmp_path, text), env=ENV)
    out = str(info.value)
    assert secret not in out and "file-secret-0123456789" not in out
    assert f"{tmp_path / 'monitor.yaml'}:2:3: server.port: expected an integer, got \"ck_live_...\"" in out
    assert 'api.tokens[0]: unknown key "tokn"' in out
    assert 'probes[0].interval: expected a duration such as 30s, got "file-sec..."' in out
    assert "api.tokens[1].token: expected a string" in out


def test_format_loc():
    assert format_loc(("probes", 2, "interval")) == "probes[2].interval"
    assert format_loc((0, "a", "b")) == "[0].a.b"
    assert format_loc(()) == ""


@pytest.mark.parametrize(("loc", "expected"), [
    # discriminated union: pydantic inserts the tag after the item index
    (("receivers", 0, "slack", "channel"), ("receivers", 0, "channel")),
    (("receivers", 0, "slack", "api_url"), ("receivers", 0, "api_url")),
    # plain union: the member's name after a scalar or list
    (("server", "port", "int"), ("server", "port")),
    (("rules", "files", "str"), ("rules", "files")),
    # dict key errors
    (("rules", "external_labels", "x", "[key]"), ("rules", "external_labels", "x")),
    # a missing key ends the path and is kept
    (("receivers", 0, "name"), ("receivers", 0, "name")),
])
def test_union_tags_are_stripped_from_locations(loc, expected):
    data = {"receivers": [{"kind": "slack", "api_url": "x"}], "server": {"port": "a"},
            "rules": {"files": ["a"], "external_labels": {"x": 1}}}
    assert _normalise_loc(loc, data)[0] == expected


def test_secret_file_in_a_receiver_section(tmp_path):
    (tmp_path / "slack").write_text("xoxb-0000-1111-abcdefgh\n")
    text = "receivers:\n  - name: ops\n    slack_configs:\n      - channel: '#x'\n        token_file: slack\n"
    config = load_config(write(tmp_path, text), env={})
    assert config.receivers[0].slack_configs[0].token.get_secret_value() == "xoxb-0000-1111-abcdefgh"
