"""monitor.alerting: the front of the alert pipeline — alerts in, grouped, muted, deduplicated.

After Alertmanager (``dispatch/``, ``notify/``, ``nflog/``, ``inhibit/``, ``silence/``,
``timeinterval/``, ``provider/mem``). The alert itself is :class:`model.alert.Alert` (float Unix
seconds), one type for every stage.

Run time, in the order an alert meets them:

- ``intake``: where alerts enter — rule alerts, Alertmanager v2 ``POST /api/v2/alerts`` and
  webhook (v4) bodies -> :class:`~model.alert.Alert`.
- ``provider``: the alerts held, written to the state store before anything acts on them.
- ``route``: the routing tree (``dispatch/route.go``); ``routes_test`` for the CLI.
- ``dispatch``: aggregation groups and their timers (``dispatch/dispatch.go``); at each flush:
- ``mute``: the mute stages, built from the muters ``maintenance`` (time intervals and
  maintenance windows), ``inhibit`` and ``silence``;
- ``nflog``: the notification log (dedup decision in memory, transition numbers in the store).
- ``stage``: the :class:`~monitor.alerting.stage.Stage` protocol of the receiver pipeline
  (its durable stages live in ``monitor.notify``).
- ``pipeline``: :class:`~monitor.alerting.pipeline.AlertPipeline`, the run-time flow
  (ingest, tick) over the above plus the escalation stage (``monitor.escalation``).

For people and the API (``ports`` declares the narrow interfaces):

- ``acks``: acknowledge / unacknowledge / resolve, audited;
- ``silence_admin``: silences created, expired, listed, persisted, audited;
- ``views``: the v2 alert list and an alert's timeline;
- ``metrics``: the ``monitor_alerts*`` and ``monitor_notifications_enqueued_total`` metrics.

Submodules are imported explicitly (``from monitor.alerting.route import build_route``); this
package imports nothing at load so that ``monitor.config`` can use the parsers without a cycle.
Nothing here imports ``monitor.escalation`` or ``monitor.notify`` (later stages): they are
injected by the composition root (``monitor.daemon.leader_pipeline``).
"""
