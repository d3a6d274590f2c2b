"""The channel registry is complete and the builder names integrations kind[index]."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.config.receivers import CHANNEL_FIELDS, ReceiverConfig, StateConfig
from monitor.notify import NOTIFIERS, Notifier
from monitor.notify.registry import build_integrations


def test_every_config_kind_has_a_channel_and_back():
    assert set(CHANNEL_FIELDS) == set(NOTIFIERS)  # Gatus-style completeness, both directions
    for cls in NOTIFIERS.values():
        assert hasattr(cls, "notify") and hasattr(cls, "secrets")


def test_build_integrations_names_and_protocol():
    receivers = [ReceiverConfig.model_validate({
        "name": "ops",
        "slack_configs": [{"channel": "#a", "token": "xoxb-1"}, {"channel": "#b", "token": "xoxb-2",
                                                                 "send_resolved": False}],
        "pagerduty_configs": [{"routing_key": "k" * 32}],
        "webhook_configs": [{"url": "http://127.0.0.1:1/hook", "max_alerts": 5}],
        "email_configs": [{"to": "a@example.com", "from": "m@example.com", "smarthost": "mail:25"}],
    }), ReceiverConfig(name="null")]
    built = build_integrations(receivers)
    assert [i.name for i in built["ops"]] == ["slack[0]", "slack[1]", "pagerduty[0]", "webhook[0]", "email[0]"]
    assert built["null"] == []
    assert all(isinstance(i.notifier, Notifier) and i.receiver == "ops" for i in built["ops"])
    assert [i.send_resolved for i in built["ops"][:2]] == [True, False]


def test_secrets_are_hidden_in_config_repr():
    r = ReceiverConfig.model_validate({"name": "ops", "slack_configs": [{"channel": "#a", "token": "xoxb-secret-1"}]})
    assert "xoxb-secret-1" not in repr(r) and "xoxb-secret-1" not in str(r.model_dump())


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "email_configs": [{"to": "a@b", "from": "c@d", "smarthost": "nohostport"}]}, "host:port"),
    ({"name": "x", "slack_configs": [{"channel": "#a"}]}, "token"),
    ({"name": "x", "pagerduty_configs": [{"routing_key": "k", "severity": "fatal"}]}, "severity"),
    ({"name": "x", "hipchat_configs": []}, "hipchat_configs"),
])
def test_invalid_receivers(data, message):
    with pytest.raises(ValidationError, match=message):
        ReceiverConfig.model_validate(data)


def test_state_config():
    assert StateConfig().backend == "sqlite" and StateConfig().path == "monitor-state.db"
    pg = StateConfig.model_validate({"backend": "postgres", "dsn": "postgresql://u:pw@h/db", "schema": "mon"})
    assert pg.schema_ == "mon" and "pw" not in repr(pg)
    with pytest.raises(ValidationError, match="dsn is required"):
        StateConfig(backend="postgres")
