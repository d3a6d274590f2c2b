"""The ``status_page:`` config: the public status page's components and subscriptions.

Example::

    status_page:
      title: Codebook status
      components:
        - {name: API, probes: [api-health, api-search]}
        - {name: Database, probes: [postgres]}
        - {name: Pinecone, probes: [pinecone]}
        - {name: LLM provider, probes: [openai]}

Without ``components`` there is one per probe kind in use, in this order: ``api`` -> "API",
``database`` -> "Database", ``pinecone`` -> "Pinecone", ``llm`` -> "LLM provider" (other
kinds are not shown). A component's uptime on a day is the share of its probes' runs that day
(UTC) that succeeded — the same ``probe_success`` that pages people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import Field

from model.duration import PositiveDuration
from monitor.config.validation import Section

__all__ = ["StatusComponentConfig", "StatusPageConfig", "StatusSubscriptionsConfig", "DEFAULT_COMPONENTS",
           "validate_status_page_refs"]

#: The components shown by default: ``(probe kind, name)``, in page order.
DEFAULT_COMPONENTS = (("api", "API"), ("database", "Database"), ("pinecone", "Pinecone"), ("llm", "LLM provider"))


class StatusComponentConfig(Section):
    """One row of the status page.

    :ivar name: shown on the page (unique).
    :ivar probes: names of the probes whose results make its uptime (at least one).
    :ivar description: a line under the name (optional).
    """

    name: str = Field(min_length=1, max_length=80)
    probes: list[str] = Field(min_length=1)
    description: str = Field(default="", max_length=300)


class StatusSubscriptionsConfig(Section):
    """Email subscriptions to maintenance notices (``/status/subscribe``).

    Subscribers of a confirmed address get, for every maintenance window with client ``notices``,
    the guide's notices: each of the window's ``before`` notices (default 7 days and 1 hour), then
    one when it starts and one when it ends. Confirmation and unsubscribe links are signed with
    ``api.link_key`` (required) and point at ``server.external_url``.

    :ivar receiver: a receiver with ``email_configs`` (its SMTP settings send the emails).
    :ivar max_subscribers: subscribers (pending and confirmed) accepted at most.
    :ivar per_client: subscribe requests one client address may make per ``per_client_window``.
    :ivar per_client_window: seconds (default 10 minutes).
    :ivar webhooks: also accept webhook URLs (notices POSTed as JSON; ``monitor.notify.status_webhook``).
    :ivar allow_private_webhooks: accept http URLs and hosts with private addresses (tests, an
        internal deployment); by default only https URLs of public hosts.
    """

    receiver: str
    webhooks: bool = False
    allow_private_webhooks: bool = False
    max_subscribers: int = Field(default=10_000, ge=1)
    per_client: int = Field(default=5, ge=1)
    per_client_window: PositiveDuration = 600.0


class StatusPageConfig(Section):
    """The public status page (``/status``).

    :ivar title: the page's title.
    :ivar components: :class:`StatusComponentConfig` rows; default one per probe kind (module docstring).
    :ivar subscriptions: :class:`StatusSubscriptionsConfig`; none: no subscribe form.
    """

    title: str = Field(default="Codebook status", max_length=120)
    components: list[StatusComponentConfig] = Field(default_factory=list)
    subscriptions: StatusSubscriptionsConfig | None = None

    def resolved(self, probe_kinds: Mapping[str, str]) -> list[tuple[str, list[str]]]:
        """Return ``[(component name, [probe names])]``: the configured rows, else the defaults.

        :param probe_kinds: ``{probe name: kind}`` of the configured probes.
        """
        if self.components:
            return [(c.name, list(c.probes)) for c in self.components]
        out = []
        for kind, name in DEFAULT_COMPONENTS:
            probes = sorted(p for p, k in probe_kinds.items() if k == kind)
            if probes:
                out.append((name, probes))
        return out


def validate_status_page_refs(cfg: StatusPageConfig, probe_names: Iterable[str],
                              email_receivers: Iterable[str] = (),
                              prefix: str = "status_page") -> list[tuple[str, str]]:
    """Check that components name configured probes and are unique, and that subscriptions name a
    receiver with ``email_configs``; return ``[(key path, message)]``."""
    names = set(probe_names)
    errs: list[tuple[str, str]] = []
    if cfg.subscriptions is not None and cfg.subscriptions.receiver not in set(email_receivers):
        errs.append((f"{prefix}.subscriptions.receiver",
                     f'"{cfg.subscriptions.receiver}" is not a receiver with email_configs'))
    seen: set[str] = set()
    for i, c in enumerate(cfg.components):
        if c.name in seen:
            errs.append((f"{prefix}.components[{i}].name", f'duplicate component name "{c.name}"'))
        seen.add(c.name)
        for j, p in enumerate(c.probes):
            if p not in names:
                errs.append((f"{prefix}.components[{i}].probes[{j}]", f'undefined probe "{p}"'))
    return errs
