"""Prometheus-format rules: rule files, alerting and recording rules, groups and their manager.

* :mod:`.rulefmt` — parse and validate rule files (all errors, with file:line:col).
* :mod:`.templates` / :mod:`.tmplfuncs` — Go-style label/annotation templates rendered with Jinja2.
* :mod:`.alerting` — the pure pending -> firing -> resolved state machine.
* :mod:`.recording` — recording rules.
* :mod:`.group` — one group's evaluation (order, health, ALERTS series, staleness).
* :mod:`.manager` — atomic reload with state carry-over, scheduling, eval on new data, persistence.
* :mod:`.unittest` — promtool ``test rules`` runner.
"""

from monitor.rules.alerting import Alert, AlertingRule, AlertState
from monitor.rules.group import RuleGroup
from monitor.rules.manager import RuleLoadError, RuleManager
from monitor.rules.state import AlertStateStore, JsonFileAlertStateStore, MemoryAlertStateStore
from monitor.rules.recording import RecordingRule
from monitor.rules.rulefmt import RuleFileError, load_rule_files

__all__ = ["Alert", "AlertState", "AlertingRule", "RecordingRule", "RuleGroup", "RuleManager", "RuleLoadError",
           "AlertStateStore", "MemoryAlertStateStore", "JsonFileAlertStateStore", "RuleFileError",
           "load_rule_files"]
