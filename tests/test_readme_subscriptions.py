"""The README's way to turn status-page subscriptions on in the demo: its receiver and ``status_page``
snippet added to ``examples/monitor.yaml`` give a valid config with subscriptions (the demo itself
has them off: it has no SMTP server)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from monitor.config.loader import load_config_text

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "monitor.yaml"


def _snippet() -> dict:
    text = (ROOT / "README.md").read_text()
    at = text.index("The demo (`examples/monitor.yaml`) has no SMTP server")
    block = re.search(r"```yaml\n(.*?)```", text[at:], re.S)
    assert block is not None
    return yaml.safe_load(block.group(1))


def test_the_demo_has_subscriptions_off():
    assert load_config_text(EXAMPLE.read_text(), base_dir=EXAMPLE.parent).status_page.subscriptions is None


def test_the_readme_snippet_turns_them_on_in_the_demo_config():
    data = yaml.safe_load(EXAMPLE.read_text())
    snippet = _snippet()
    data["receivers"] += snippet["receivers"]
    data["status_page"] = snippet["status_page"]
    cfg = load_config_text(yaml.safe_dump(data, sort_keys=False), base_dir=EXAMPLE.parent)
    subs = cfg.status_page.subscriptions
    assert subs is not None and subs.receiver == "client-notices" and subs.webhooks
    assert cfg.api.link_key is not None  # the confirm / unsubscribe links are signed with it
