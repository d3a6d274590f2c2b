"""Config-test fixtures: a deterministic probe registry with two tiny probe kinds.

The real registry (``probes.PROBES``) is filled by the probe modules; the exact messages of the
fixtures must not change when a kind is added there, so these tests swap in a registry of their
own (restored afterwards). ``test_real_registry.py`` checks the real kinds separately.
"""

from __future__ import annotations

import pytest

from probes import PROBES
from tests.config.config_helpers import HttpCheck, KeyCheck


@pytest.fixture(autouse=True)
def test_probes(request):
    """Replace the probe registry by ``httpcheck`` and ``keycheck`` for the test.

    A test module that sets ``REAL_PROBES = True`` keeps the real registry.
    """
    if getattr(request.module, "REAL_PROBES", False):
        yield PROBES
        return
    saved = dict(PROBES)
    PROBES.clear()
    PROBES.update({"httpcheck": HttpCheck, "keycheck": KeyCheck})
    yield PROBES
    PROBES.clear()
    PROBES.update(saved)
