"""The composition root: wiring (:mod:`~monitor.daemon.wiring`) and lifecycle of the daemon process."""
