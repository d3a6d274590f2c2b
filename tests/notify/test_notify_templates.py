"""Templates: defaults, user overrides from a folder, the alert payload every template reads."""

from __future__ import annotations

from datetime import datetime, timezone

from model.labels import Labels
from monitor.alerting.intake import from_rule_alert
from monitor.notify.base import Message
from monitor.notify.payload import alert_payload
from monitor.rules.alerting import Alert as RuleAlert
from tests.notify.notify_kit import firing_message
from monitor.notify.slack import build_payload
from monitor.notify.templates import Templates, truncate


def test_user_folder_overrides_one_template(tmp_path):
    (tmp_path / "title.j2").write_text("{{ priority }} {{ common_labels.service }} is on fire")
    t = Templates(tmp_path)
    assert t.render("title.j2", firing_message()) == "P0 api is on fire"
    payload = build_payload(firing_message(), t)  # every channel follows the override
    assert payload["blocks"][0]["text"]["text"] == "P0 api is on fire"
    assert t.render("email_subject.j2", firing_message()) == "P0 api is on fire"
    assert Templates().check() == []
    (tmp_path / "slack_text.j2").write_text("{% if %}")
    assert [e.split(":")[0] for e in Templates(tmp_path).check()] == ["slack_text.j2"]


def rule_alert() -> RuleAlert:
    """A firing alert as the rule engine hands it over."""
    return RuleAlert(Labels.of({"alertname": "DiskFull", "severity": "warning"}), {"summary": "disk 95% full"},
                     "firing", datetime(2026, 11, 29, 14, 0, tzinfo=timezone.utc).timestamp(), value=0.95)


def test_rule_alerts_become_the_payload():
    alert = from_rule_alert(rule_alert())
    d = alert_payload(alert, alert.starts_at + 60)
    assert d == {"status": "firing", "labels": {"alertname": "DiskFull", "severity": "warning"},
                 "annotations": {"summary": "disk 95% full"}, "starts_at": "2026-11-29T14:00:00Z",
                 "ends_at": "", "generator_url": "", "fingerprint": alert.fingerprint, "value": "0.95"}
    msg = Message.build("firing", "ops", [d])
    assert msg.severity == "warning" and msg.dedup_key == alert.fingerprint
    assert Message.from_dict(msg.to_dict()) == msg


def test_truncate_cuts_at_a_word():
    assert truncate("short", 10) == "short"
    cut = truncate("alpha beta gamma delta", 13)
    assert cut == "alpha beta\u2026" and len(cut) <= 13
