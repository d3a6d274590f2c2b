"""Templates: defaults, user overrides from a folder, message normalisation."""

from __future__ import annotations

from datetime import datetime, timezone

from monitor.notify.base import Message, alert_dict
from monitor.notify.slack import build_payload
from monitor.notify.templates import Templates, truncate
from tests.notify.notify_kit import firing_message


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


class RuleAlert:
    """An alert-like object as the rule engine might hand it over (attributes, not a dict)."""

    def __init__(self):
        self.labels = (("alertname", "DiskFull"), ("severity", "warning"))  # sorted pairs (tsdb Labels)
        self.annotations = {"summary": "disk 95% full"}
        self.starts_at = datetime(2026, 11, 29, 14, 0, tzinfo=timezone.utc)
        self.ends_at = None
        self.state = "firing"
        self.value = 0.95

    def fingerprint(self):
        return "abcdef0123456789"


def test_duck_typed_alerts_normalise():
    d = alert_dict(RuleAlert())
    assert d == {"status": "firing", "labels": {"alertname": "DiskFull", "severity": "warning"},
                 "annotations": {"summary": "disk 95% full"}, "starts_at": "2026-11-29T14:00:00Z",
                 "ends_at": "", "generator_url": "", "fingerprint": "abcdef0123456789", "value": "0.95"}
    msg = Message.build("firing", "ops", [RuleAlert()])
    assert msg.severity == "warning" and msg.dedup_key == "abcdef0123456789"
    assert Message.from_dict(msg.to_dict()) == msg


def test_truncate_cuts_at_a_word():
    assert truncate("short", 10) == "short"
    cut = truncate("alpha beta gamma delta", 13)
    assert cut == "alpha beta\u2026" and len(cut) <= 13
