"""The rest of Alertmanager's v2 API that ``amtool`` and Grafana's Alertmanager data source call.

* ``GET /api/v2/alerts`` — ``gettableAlerts``, narrowed by ``filter`` (repeatable matchers such as
  ``alertname="X"``), ``receiver`` (a regex, anchored), and the booleans ``active``,
  ``silenced``, ``inhibited``, ``unprocessed`` (default true: ``false`` leaves those out).
  Resolved alerts are never listed (``views.alerts_api``), as in Alertmanager.
* ``GET /api/v2/alerts/groups`` — ``alertGroups``: the same alerts grouped as the routing tree
  groups them (``{labels: <group labels>, receiver: {name}, alerts: [...]}``), one group per
  route and group-label set; ``filter``, ``receiver``, ``active``, ``silenced``, ``inhibited``.
* ``GET /api/v2/status`` — ``alertmanagerStatus``: ``cluster`` (``status: disabled``: one
  leader alerts, there is no gossip), ``config.original`` (the ``alerting:`` and ``receivers:``
  configuration as YAML, secrets masked), ``uptime``, ``versionInfo``.
* ``GET /api/v2/receivers`` — ``[{name}]`` of every configured receiver.

Semantics follow Alertmanager ``api/v2/api.go`` (``getAlertsHandler``,
``getAlertGroupsHandler``, ``alertFilter``) and ``api/v2/compat.go``
(``matchFilterLabels``: a matcher ``name=""`` also matches an absent label, ``name!=""``
requires it). Errors are 400 with Alertmanager's message (``bad matcher format: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.labels import Labels
from model.matchers import Matcher, parse_matcher
from monitor.api.bodies import ApiError
from monitor.api.deps import alerting_deps, running_ports

__all__ = ["ROUTES", "alert_filter", "match_filter_labels"]


def match_filter_labels(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Alertmanager's ``matchFilterLabels``: whether ``labels`` pass every filter matcher."""
    for m in matchers:
        present = m.name in labels
        value = labels.get(m.name, "")
        if m.op in ("!=", "!~"):
            if m.value == "" and present:
                continue
        elif m.value == "" and not present:
            continue
        if not m.matches(value):
            return False
    return True


def _bool(request: Request, name: str) -> bool:
    text = request.query_params.get(name)
    if text is None or text == "":
        return True
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"{name} in query should be of type boolean, got {text!r}")


def _filters(request: Request) -> list[Matcher]:
    out = []
    for text in request.query_params.getlist("filter"):
        try:
            out.append(parse_matcher(text))
        except ValueError as e:
            raise ApiError(400, str(e)) from None
    return out


def _receiver(request: Request) -> Matcher | None:
    text = request.query_params.get("receiver")
    if not text:
        return None
    try:
        return Matcher("receiver", "=~", text)
    except ValueError as e:
        raise ApiError(400, f"failed to parse receiver param: {e}") from None


def alert_filter(request: Request, *, unprocessed_param: bool = True) -> Any:
    """Return a predicate over ``gettableAlert`` dicts built from the request's parameters.

    :raises ApiError: 400 for a bad matcher, receiver regex or boolean.
    """
    filters, receiver = _filters(request), _receiver(request)
    active, silenced, inhibited = _bool(request, "active"), _bool(request, "silenced"), _bool(request, "inhibited")
    unprocessed = _bool(request, "unprocessed") if unprocessed_param else True

    def keep(alert: dict[str, Any]) -> bool:
        status = alert.get("status", {})
        state = status.get("state")
        if not active and state == "active":
            return False
        if not unprocessed and state == "unprocessed":
            return False
        if not silenced and status.get("silencedBy"):
            return False
        if not inhibited and status.get("inhibitedBy"):
            return False
        if receiver is not None and not any(receiver.matches(r["name"]) for r in alert.get("receivers", [])):
            return False
        return match_filter_labels(filters, alert["labels"])

    return keep


async def list_alerts(request: Request) -> Response:
    """``GET /api/v2/alerts``: ``filter``, ``receiver``, ``active``, ``silenced``, ``inhibited``,
    ``unprocessed`` -> ``gettableAlerts``."""
    keep = alert_filter(request)
    return JSONResponse([a for a in running_ports(request).views.alerts_api() if keep(a)])


def _gettable(alert: dict[str, Any]) -> dict[str, Any]:
    """Return the ``gettableAlert`` fields only (our ``escalation`` status left out of groups)."""
    return {k: v for k, v in alert.items() if k != "escalation"}


async def alert_groups(request: Request) -> Response:
    """``GET /api/v2/alerts/groups``: ``filter``, ``receiver``, ``active``, ``silenced``,
    ``inhibited`` -> ``[{labels, receiver: {name}, alerts}]``, ordered by receiver then labels."""
    keep = alert_filter(request, unprocessed_param=False)
    receiver = _receiver(request)
    route = alerting_deps(request).route()
    groups: dict[tuple[str, str, Labels], dict[str, Any]] = {}
    for alert in running_ports(request).views.alerts_api():
        if not keep(alert):
            continue
        labels = Labels.of(alert["labels"])
        matches = route.routes_for(labels) if route is not None else []
        for m in matches:
            if receiver is not None and not receiver.matches(m.receiver):
                continue
            group_labels = labels if m.opts.group_by_all else labels.keep(*m.opts.group_by)
            key = (m.receiver, m.route_key, group_labels)
            group = groups.setdefault(key, {"labels": group_labels.as_dict(), "receiver": {"name": m.receiver},
                                            "alerts": []})
            group["alerts"].append(_gettable(alert))
    out = [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1], tuple(k[2])))]
    return JSONResponse(out)


async def status(request: Request) -> Response:
    """``GET /api/v2/status`` -> ``alertmanagerStatus``."""
    running_ports(request)  # 503 on a follower, like every alerting view
    return JSONResponse(alerting_deps(request).status())


async def receivers(request: Request) -> Response:
    """``GET /api/v2/receivers`` -> ``[{"name": ...}]``."""
    return JSONResponse([{"name": name} for name in alerting_deps(request).receivers()])


ROUTES = [
    Route("/api/v2/alerts", list_alerts, methods=["GET"]),
    Route("/api/v2/alerts/groups", alert_groups, methods=["GET"]),
    Route("/api/v2/status", status, methods=["GET"]),
    Route("/api/v2/receivers", receivers, methods=["GET"]),
]
