"""The HTTP API of the daemon (see :mod:`monitor.api.app`)."""
