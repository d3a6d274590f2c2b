"""Helpers shared by more than one test folder: real local servers and the daemon harness.

- :mod:`.probe_servers`: small asyncio servers on 127.0.0.1 (HTTP, silent, blurting) and
  :func:`~.probe_servers.closed_port`;
- :mod:`.notify_servers`: vendor-shaped Slack, PagerDuty, webhook and SMTP servers;
- :mod:`.daemon_helpers`: the real daemon served in-process, configs, polling helpers;
- :mod:`.alerting_helpers`: the shipped ``alerting:`` section and small builders;
- :mod:`.state_helpers`: a hand-set :class:`~.state_helpers.Clock` (the ``state_config`` fixture is in
  ``tests/conftest.py``).

Helpers used by one folder only stay beside its tests (``tests/notify/notify_kit.py``,
``tests/config/config_helpers.py``, ``tests/shipped/shipped_helpers.py``,
``tests/probes/probe_certs.py``).
"""
