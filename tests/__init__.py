"""The test suite, a package so helpers import by their full name (``tests.support.probe_servers``).

pytest imports every test module as ``tests.<folder>.<module>`` with the repository root on
``sys.path``, so ``import probes`` is always the real package, never ``tests/probes/``.
"""
