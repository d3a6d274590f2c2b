"""Synthetic probes, one module per kind. ``PROBES`` is the explicit ``kind -> class`` registry.

Every class has ``kind``, ``Settings`` (a :class:`probes.base.ProbeSettings` subclass whose
``kind`` field is a ``Literal`` of that kind, so the config layer can build a discriminated
union), ``METRICS`` (every sample name it may emit -> help sentence), ``__init__(settings, *,
http_client=None)``, ``async run() -> ProbeResult`` and ``async close()``.
"""

from __future__ import annotations

from probes.api import ApiProbe
from probes.backup import BackupProbe
from probes.base import Probe
from probes.cost import CostProbe
from probes.database import DatabaseProbe
from probes.disk import DiskProbe
from probes.llm import LlmProbe
from probes.pinecone import PineconeProbe
from probes.quota import QuotaProbe
from probes.rag import RagProbe
from probes.sql import SqlProbe
from probes.tls import TlsProbe

PROBES: dict[str, type[Probe]] = {
    "api": ApiProbe,
    "database": DatabaseProbe,
    "pinecone": PineconeProbe,
    "llm": LlmProbe,
    "tls": TlsProbe,
    "quota": QuotaProbe,
    "cost": CostProbe,
    "rag": RagProbe,
    "sql": SqlProbe,
    "disk": DiskProbe,
    "backup": BackupProbe,
}
"""Probe kind -> probe class; the config's ``kind`` key selects the entry."""

__all__ = ["PROBES", "ApiProbe", "BackupProbe", "CostProbe", "DatabaseProbe", "DiskProbe", "LlmProbe", "PineconeProbe",
           "QuotaProbe", "RagProbe", "SqlProbe", "TlsProbe"]
