"""Synthetic probes, one module per kind. ``PROBES`` is the explicit ``kind -> class`` registry."""

from __future__ import annotations

PROBES: dict[str, type] = {}
