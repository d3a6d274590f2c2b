"""Helpers of the config tests: two tiny probe kinds, the fixtures directory and environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from probes.base import ProbeResult, ProbeSettings

FIXTURES = Path(__file__).parent / "fixtures"

#: The environment the fixtures are loaded with.
ENV = {"MONITOR_TOKEN": "ck_live_1234567890abcdef", "EMPTY": ""}


class HttpCheckSettings(ProbeSettings):
    """A probe with a URL, an optional secret and a non-secret ``*_file`` key."""

    kind: Literal["httpcheck"] = "httpcheck"
    url: str
    api_key: SecretStr | None = None
    ca_file: str | None = None


class HttpCheck:
    kind = "httpcheck"
    Settings = HttpCheckSettings

    def __init__(self, settings: HttpCheckSettings, **resources) -> None:
        self.settings = settings

    async def run(self) -> ProbeResult:
        return ProbeResult(True)

    async def close(self) -> None:
        return None


class KeyCheckSettings(ProbeSettings):
    """A probe whose secret is required."""

    kind: Literal["keycheck"] = "keycheck"
    api_key: SecretStr


class KeyCheck(HttpCheck):
    kind = "keycheck"
    Settings = KeyCheckSettings
