"""monitor.escalation: who gets paged, when, and what happens if nobody answers.

- ``schedule``: on-call rotations with DST-correct handoffs, overrides, ``who_is_on_call``.
- ``policy``: severity -> priority (P0/P1/P2) -> deadlines and the chain; the frozen snapshot.
- ``engine``: the pure escalation walk (``start``, ``step``, ``acknowledge``,
  ``unacknowledge``, ``resolve``) after Grafana OnCall's escalation snapshot.
- ``notices``: an action as notices (a person's contact on a channel, a title) for the outbox.
- ``runner``: the escalation stage at run time — persisted walks, their notices handed to an
  injected sink (the outbox; ``monitor.notify.notices``).
- ``metrics``: the ``monitor_escalation*``, acknowledgement and SLA metrics.
- ``announce``: which on-call handoffs are due to be announced (``monitor.notify.handoff``
  sends them).
- ``simulate``: ``simulate`` and ``oncall_report`` for the CLI.

Nothing here imports ``monitor.notify`` (a later stage).
"""
