"""The routing tree: which receivers an alert reaches, and with which grouping options.

Semantics of Alertmanager ``dispatch/route.go``:

- A node's options start as a copy of its parent's (the root's as :data:`DEFAULT_ROUTE_OPTS`),
  then the node's own settings replace them (``NewRoute``). ``group_by: ["..."]`` groups by all
  labels. ``mute_time_intervals`` / ``active_time_intervals`` are the node's own, not inherited.
- ``match(labels)`` is depth-first: a node that does not match returns nothing; otherwise its
  children are tried in order, and the first matching child stops the search unless that child
  has ``continue: true``. A matching node none of whose children match is itself the result.
- Each node has a stable ``key`` (``{}/{severity="critical"}/1``-like: the parent's key, the
  node's matchers, and its index among siblings for uniqueness, as ``Route.Key``/``Route.ID``);
  aggregation groups are keyed by route key + group labels.

String matchers are parsed by ``model.matchers`` (``pkg/labels/parse.go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from model.labels import Labels
from model.matchers import (
    Matcher,
    format_matchers,
    matches_all,
    parse_matcher,
    parse_matchers,
    sort_key,
)

if TYPE_CHECKING:  # the config layer imports this package; keep the import one way at runtime
    from monitor.config.routing import RouteConfig

__all__ = [
    "RouteOpts", "Route", "RouteMatch", "DEFAULT_ROUTE_OPTS", "build_route", "parse_matcher",
    "parse_matchers", "routes_test", "parse_label_args", "receivers_for",
]


@dataclass(frozen=True, slots=True)
class RouteOpts:
    """Concrete options of one route (Alertmanager ``RouteOpts``); durations in seconds.

    :ivar group_by: label names grouped by (empty and ``group_by_all`` false: one group per route).
    :ivar group_by_all: ``group_by: ["..."]``: every label is a group label.
    """

    receiver: str = ""
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def group_labels(self, labels: Labels) -> Labels:
        """Return the labels of ``labels`` that form the group key."""
        if self.group_by_all:
            return labels
        return labels.keep(*self.group_by)


#: Alertmanager ``DefaultRouteOpts``: group_wait 30s, group_interval 5m, repeat_interval 4h.
DEFAULT_ROUTE_OPTS = RouteOpts()


@dataclass(eq=False)
class Route:
    """One node of the routing tree with concrete (inherited) options.

    :ivar matchers: sorted; all must match.
    :ivar continue_: keep trying later siblings after this node matched.
    :ivar key: unique, stable id of the node.
    """

    opts: RouteOpts
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: list["Route"] = field(default_factory=list)
    key: str = "{}"
    depth: int = 0

    def match(self, labels: Labels | Mapping[str, str]) -> list["Route"]:
        """Return the matching routes for a label set, depth-first (route.go ``Match``)."""
        if not isinstance(labels, Labels):
            labels = Labels.of(labels)
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matches = child.match(labels)
            found.extend(matches)
            if matches and not child.continue_:
                break
        return found or [self]

    def routes_for(self, labels: Labels | Mapping[str, str]) -> list["RouteMatch"]:
        """Return the matching routes as :class:`RouteMatch` values (receiver + options)."""
        return [RouteMatch(r.key, r.opts) for r in self.match(labels)]

    def walk(self) -> Iterable["Route"]:
        """Yield every node, depth-first, the root first."""
        yield self
        for child in self.routes:
            yield from child.walk()

    def receivers(self) -> list[str]:
        """Return every receiver name used in the tree, in tree order, without repeats."""
        return list(dict.fromkeys(r.opts.receiver for r in self.walk()))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One route an alert reaches: the route's key and its concrete options."""

    route_key: str
    opts: RouteOpts

    @property
    def receiver(self) -> str:
        """The receiver name."""
        return self.opts.receiver

    @property
    def group_by(self) -> tuple[str, ...]:
        """The group-by labels (``("...",)`` when grouping by all)."""
        return ("...",) if self.opts.group_by_all else self.opts.group_by

    @property
    def group_wait(self) -> float:
        """Seconds before the first notification of a new group."""
        return self.opts.group_wait

    @property
    def group_interval(self) -> float:
        """Seconds between notifications of a changed group."""
        return self.opts.group_interval

    @property
    def repeat_interval(self) -> float:
        """Seconds before an unchanged group is sent again."""
        return self.opts.repeat_interval


def build_route(cfg: "RouteConfig", parent: Route | None = None, index: int = 0) -> Route:
    """Build the runtime tree from a :class:`~monitor.config.alerting.RouteConfig` (``NewRoute``).

    :param parent: the parent node (``None`` for the root).
    :param index: the node's position among its siblings (part of its key).
    """
    opts = parent.opts if parent is not None else DEFAULT_ROUTE_OPTS
    changes: dict[str, Any] = {}
    if cfg.receiver:
        changes["receiver"] = cfg.receiver
    if cfg.group_by is not None:
        if cfg.group_by == ["..."]:
            changes.update(group_by=(), group_by_all=True)
        else:
            changes.update(group_by=tuple(cfg.group_by), group_by_all=False)
    for name in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(cfg, name)
        if value is not None:
            changes[name] = float(value)
    changes["mute_time_intervals"] = tuple(cfg.mute_time_intervals)
    changes["active_time_intervals"] = tuple(cfg.active_time_intervals)
    opts = replace(opts, **changes)
    matchers = tuple(sorted(cfg.parsed_matchers(), key=sort_key))
    if parent is None:
        key = "{}"
    else:
        key = f"{parent.key}/{format_matchers(matchers)}/{index}"
    node = Route(opts, matchers, cfg.continue_, [], key, 0 if parent is None else parent.depth + 1)
    node.routes = [build_route(c, node, i) for i, c in enumerate(cfg.routes)]
    return node


def receivers_for(route: Route | None, labels: Labels | Mapping[str, str]) -> list[str]:
    """Return the receivers an alert with ``labels`` routes to, in route order, each once (none without a route)."""
    if route is None:
        return []
    return list(dict.fromkeys(m.receiver for m in route.routes_for(labels)))


def parse_label_args(args: Iterable[str]) -> Labels:
    """Parse CLI arguments ``label=value`` (or ``label="value"``) into a label set.

    :raises ValueError: ``expected label=value, got "<arg>"``.
    """
    pairs: dict[str, str] = {}
    for arg in args:
        try:
            matchers = parse_matchers(arg)
        except ValueError:
            raise ValueError(f'expected label=value, got "{arg}"') from None
        for m in matchers:
            if m.op != "=":
                raise ValueError(f'expected label=value, got "{m}"')
            pairs[m.name] = m.value
    return Labels.of(pairs)


def routes_test(root: Route, labels: Labels | Mapping[str, str] | Iterable[str], *, verbose: bool = False) -> str:
    """Return the receivers an alert with ``labels`` reaches, one per line (amtool ``config routes test``).

    Used by ``codebook-monitor routes test label=value ...``; arguments may also be
    comma-separated (``severity=critical,service=api``).

    :param labels: a label set, a mapping, or CLI ``label=value`` strings.
    :param verbose: also print each route's key, group_by and timers.
    """
    if not isinstance(labels, (Labels, Mapping)):
        labels = parse_label_args(labels)
    matches = root.routes_for(labels)
    if not verbose:
        return "\n".join(m.receiver for m in matches)
    lines = []
    for m in matches:
        lines.append(f"{m.receiver}\troute={m.route_key} group_by=[{', '.join(m.group_by)}] "
                     f"group_wait={m.group_wait:g}s group_interval={m.group_interval:g}s "
                     f"repeat_interval={m.repeat_interval:g}s")
    return "\n".join(lines)
