"""A settable clock for state-store tests; the ``state_config`` fixture itself is in ``tests/conftest.py``."""

from __future__ import annotations


class Clock:
    """A clock the test sets by hand: calling it returns :attr:`t` (Unix seconds)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        """Return the current fake time in Unix seconds."""
        return self.t
