"""The stage protocol of the receiver pipeline (Alertmanager ``notify/notify.go`` ``Stage``).

A :class:`Stage` takes ``(ctx, alerts)`` and returns ``(ctx, alerts)`` for the next stage, or
``None`` to stop; :class:`MultiStage` runs stages in order (Alertmanager ``MultiStage``). The
dispatcher's output for one aggregation group and receiver enters as
``(Context.of(notification), notification.alerts)``; what the durable stages learn on the way
(the message built for the group, its transition number, the integrations that got a new
outbox row) travels in the context, as in Alertmanager's ``context.Context`` values.

The stages themselves live with what they need: the payload and outbox stages in
``monitor.notify``; the pipeline is assembled by the composition root (``monitor.daemon``), so no
stage imports a later one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from model.alert import Alert
from model.labels import Labels

if TYPE_CHECKING:
    from monitor.alerting.dispatch import Notification

__all__ = ["Context", "Stage", "MultiStage"]


@dataclass(frozen=True, slots=True)
class Context:
    """What a stage knows besides the alerts.

    :ivar receiver: the receiver the alerts go to.
    :ivar now: the instant of the flush (Unix seconds).
    :ivar group_key: the aggregation group's key (``<route key>:{<group labels>}``).
    :ivar group_labels: the group's ``group_by`` labels.
    :ivar repeat_interval: seconds after which unchanged content is notified again.
    :ivar message: the message built for the group (set by the message stage).
    :ivar transition: the group transition's number (set by the notification-log stage).
    :ivar written: integrations that got a new outbox row (set by the outbox stage).
    """

    receiver: str
    now: float
    group_key: str = ""
    group_labels: Labels = field(default_factory=Labels)
    repeat_interval: float = 0.0
    message: Any = None
    transition: str = ""
    written: tuple[str, ...] = ()

    @classmethod
    def of(cls, n: "Notification", now: float) -> "Context":
        """Return the context of a dispatcher notification flushed at ``now``."""
        return cls(n.receiver, now, n.group_key, n.group_labels, n.route.repeat_interval)

    def with_(self, **changes: Any) -> "Context":
        """Return a copy with ``changes``."""
        return replace(self, **changes)


class Stage(Protocol):
    """One step of the receiver pipeline."""

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]] | None:
        """Do the step; return ``(ctx, alerts)`` for the next stage, or ``None`` to stop."""
        ...


class MultiStage:
    """Run stages in order, each on the previous one's output; stop at the first ``None``.

    >>> import asyncio
    >>> async def tag(ctx, alerts):
    ...     return ctx.with_(transition="t#0"), alerts
    >>> ctx, _ = asyncio.run(MultiStage(tag)(Context("ops", 0.0), []))
    >>> ctx.transition
    't#0'
    """

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    async def __call__(self, ctx: Context, alerts: Sequence[Alert]) -> tuple[Context, Sequence[Alert]] | None:
        """Run the stages in order; stop at the first that returns ``None``."""
        for stage in self.stages:
            result = await stage(ctx, alerts)
            if result is None:
                return None
            ctx, alerts = result
        return ctx, alerts
