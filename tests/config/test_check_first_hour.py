"""``codebook-monitor check`` findings of a new user's first hour (issue 16, items 6-9).

6. a bad route matcher regex and an unknown time zone no longer hide the cross-reference checks
   (an undefined receiver, an undefined schedule member): one round reports all four;
7. receivers that can never deliver are errors (a webhook URL that is not an http(s) URL, an
   empty Slack token, an empty PagerDuty routing key), with file:line and key path and without
   quoting the secret;
8. a rule/SLO glob that matches nothing, and a config with nothing to monitor, are warnings;
9. an invalid probe URL is shown with its user info and query left out, not masked whole.
"""

from __future__ import annotations

from monitor.cli import main
from monitor.config.loader import check_config_file
from model.secrets import redact_url, shown_url

REAL_PROBES = True  # the api probe's real settings (tests/config/conftest.py)

REFS_HIDDEN = """\
receivers:
  - name: r1
    webhook_configs: [{url: "http://127.0.0.1:1/x"}]
alerting:
  route:
    receiver: r1
    routes:
      - matchers: ['severity=~"(crit"']
        receiver: r1
      - matchers: ['severity="x"']
        receiver: nope
  people:
    al: {name: Al}
  schedules:
    primary:
      start: 2026-01-05
      time_zone: Mars/Olympus
      members: [al, zed]
"""


def test_a_bad_regex_and_an_unknown_zone_do_not_hide_the_cross_references(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(REFS_HIDDEN)
    assert check_config_file(path) == [
        f"{path}:8:20: alerting.route.routes[0].matchers[0]: invalid regex '(crit': missing ): (crit",
        f'{path}:11:9: alerting.route.routes[1].receiver: undefined receiver "nope" used in route.routes[1]',
        f'{path}:17:7: alerting.schedules.primary.time_zone: unknown time zone "Mars/Olympus"',
        f'{path}:18:21: alerting.schedules.primary.members[1]: undefined person "zed" in schedule "primary"',
    ]


def test_a_duplicate_key_does_not_hide_the_other_checks(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(REFS_HIDDEN.replace("  people:\n", "  people:\n    al: {name: Al}\n", 1))
    errors = check_config_file(path)
    assert f'{path}:14:5: alerting.people: duplicate key "al"' in errors
    assert len(errors) == 5 and any('undefined receiver "nope"' in e for e in errors) \
        and any('undefined person "zed"' in e for e in errors)
    path.write_text("state: {path: s.db}\nstate: {path: t.db}\nalerting:\n  route:\n    receiver: nope\n")
    assert check_config_file(path) == [f'{path}:2:1: duplicate key "state"',
                                       f'{path}:5:5: alerting.route.receiver: undefined receiver "nope" used in route']


DEAD_RECEIVERS = """\
receivers:
  - name: hook
    webhook_configs:
      - url: "not a url"
      - url: "ftp://files.example.com/x"
      - url: "http:///hooks?token=s3cr3t-s3cr3t"
  - name: slack
    slack_configs: [{token: ""}]
  - name: pager
    pagerduty_configs: [{routing_key: ""}]
"""


def test_receivers_that_can_never_deliver_are_errors(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(DEAD_RECEIVERS)
    errors = check_config_file(path)
    unshown = "(the value is not shown: it may hold a token)"
    want = "expected an http(s) URL such as https://hooks.example.com/alerts"
    assert errors == [
        f"{path}:4:9: receivers[0].webhook_configs[0].url: {want}: no http:// or https:// scheme {unshown}",
        f'{path}:5:9: receivers[0].webhook_configs[1].url: {want}: scheme "ftp", not http or https {unshown}',
        f"{path}:6:9: receivers[0].webhook_configs[2].url: {want}: no host {unshown}",
        f"{path}:8:22: receivers[1].slack_configs[0].token: must not be empty: a Slack bot token (xoxb-...) "
        "with chat:write and im:write",
        f"{path}:10:26: receivers[2].pagerduty_configs[0].routing_key: must not be empty: the integration key "
        "of a PagerDuty service (Events API v2)",
    ]
    assert not any("s3cr3t" in e for e in errors)


def test_a_glob_matching_nothing_and_an_empty_config_are_warnings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "monitor.yaml").write_text("rules: {files: [nomatch/*.yaml]}\nslo_files: [slos/*.yaml]\n"
                                           f"state: {{path: {tmp_path / 's.db'}}}\n")
    assert main(["check", "--config", "monitor.yaml"]) == 0
    out = capsys.readouterr()
    assert out.out == "monitor.yaml: OK (0 rule files, 0 SLOs)\n"
    assert out.err.splitlines() == [
        f'warning: monitor.yaml: rules.files[0]: "nomatch/*.yaml" matches no file '
        f"(relative to the config file's folder {tmp_path})",
        f"warning: monitor.yaml: slo_files[0]: \"slos/*.yaml\" matches no file "
        f"(relative to the config file's folder {tmp_path})",
        "warning: monitor.yaml: nothing to monitor: no probes and no scrape targets (examples/monitor.yaml shows both)",
    ]
    (tmp_path / "empty.yaml").write_text("")
    assert main(["check", "--config", "empty.yaml"]) == 0
    assert capsys.readouterr().err == ("warning: empty.yaml: nothing to monitor: no probes and no scrape targets "
                                       "(examples/monitor.yaml shows both)\n")
    (tmp_path / "probed.yaml").write_text("probes:\n  - {name: api, kind: api, url: http://127.0.0.1:8000}\n")
    assert main(["check", "--config", "probed.yaml"]) == 0
    assert capsys.readouterr().err == ""


def test_an_invalid_probe_url_is_shown_without_its_user_info_and_query(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("""\
heartbeat:
  url: "htp://hc.example.com/ping"
probes:
  - {name: a, kind: api, url: "htp://bob:pa55word@api.example.com/v1?token=abc123"}
  - {name: b, kind: api, url: "not a url"}
  - {name: c, kind: api, url: "htp://hc.example.com/ping"}
""")
    errors = check_config_file(path)
    want = "expected an http(s) URL such as https://api.example.com, got"
    assert f'{path}:4:26: probes[0].url: {want} "htp://api.example.com/v1" (user info and query not shown)' in errors
    assert f'{path}:5:26: probes[1].url: {want} "not a url"' in errors
    # the same text as a secret (the heartbeat URL): its host shows, its path does not
    assert f'{path}:6:26: probes[2].url: {want} "htp://hc.example.com/..."' in errors
    assert not any("pa55word" in e or "abc123" in e for e in errors)


def test_redact_url():
    assert redact_url("https://u:p@example.com:8443/a/b?token=x#frag") == "https://example.com:8443/a/b"
    assert redact_url("not a url") == "not a url"
    assert redact_url("user:pw@host/x?q=1") == "host/x"
    assert redact_url("https://u:p@[bad/x?q") == "https://[bad/x"
    assert shown_url("https://example.com/x") == '"https://example.com/x"'
