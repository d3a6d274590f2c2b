"""monitor.alerting: from alerts to notification intents.

- the alert itself is :class:`model.alert.Alert` (float Unix seconds), shared by every stage.
- ``matchers``: Alertmanager string matchers (``severity="critical"``).
- ``route``: the routing tree (``dispatch/route.go``); ``routes_test`` for the CLI.
- ``dispatch``: aggregation groups and timers (``dispatch/dispatch.go``), mute stages.
- ``inhibit``, ``silence``, ``maintenance``: the muters (``inhibit/``, ``silence/``,
  ``timeinterval/``) and maintenance windows.
- ``intake``: Alertmanager v2 ``POST /api/v2/alerts`` and webhook (v4) bodies -> alerts.

Submodules are imported explicitly (``from monitor.alerting.route import build_route``); this
package imports nothing at load so that ``monitor.config`` can use the parsers without a cycle.
"""
