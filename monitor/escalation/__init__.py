"""monitor.escalation: who gets paged, when, and what happens if nobody answers.

- ``schedule``: on-call rotations with DST-correct handoffs, overrides, ``who_is_on_call``.
- ``policy``: severity -> priority (P0/P1/P2) -> deadlines and the chain; the frozen snapshot.
- ``engine``: the pure escalation walk (``start``, ``step``, ``acknowledge``,
  ``unacknowledge``, ``resolve``) after Grafana OnCall's escalation snapshot.
- ``simulate``: ``simulate`` and ``oncall_report`` for the CLI.
"""
