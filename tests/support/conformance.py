"""Where the shared conformance data is, and what a missing copy means.

The data lives beside the repository (``<repo>/../shared/conformance``), never inside it;
``MONITOR_TEST_CONFORMANCE_DIR`` points elsewhere. Without it the tests that need it skip on a
developer's machine, but fail under ``CI=true``: a CI run never passes without having run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Overrides the conformance folder (the one holding ``promql/``, ``promql-v3/``).
ENV = "MONITOR_TEST_CONFORMANCE_DIR"


def conformance_dir(name: str) -> Path:
    """Return the folder ``name`` of the conformance data (it may not exist)."""
    root = os.environ.get(ENV)
    return (Path(root) if root else REPO_ROOT.parent / "shared" / "conformance") / name


def in_ci() -> bool:
    """Whether this run is a CI run (``CI=true``, as GitHub Actions and GitLab CI set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_conformance(where: Path) -> None:
    """Skip the calling test for conformance data not found at ``where``, or fail it under CI.

    :raises pytest.fail.Exception: under ``CI=true``.
    :raises pytest.skip.Exception: otherwise.
    """
    message = f"conformance data not found at {where}"
    if in_ci():
        pytest.fail(f"{message}; CI=true needs it (set {ENV} if it lives elsewhere)", pytrace=False)
    pytest.skip(message)
