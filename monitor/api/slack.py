"""``POST /api/v1/slack/actions``: Slack interactivity (Block Kit buttons on alert messages).

A button's ``action_id`` is ``ack`` or ``resolve`` and its ``value`` one fingerprint or several,
comma-separated. The body (at most 64 KiB; a larger one is 413 before a byte is read) is
verified with ``api.slack_signing_secret`` before it is parsed
(:class:`~monitor.api.auth.SlackVerifier`: signature, whole-second timestamp within 5 minutes),
and each signature is accepted once: it is claimed in the state store, so a replay is refused
even after a restart. 404 when no secret is configured, 401 when verification fails or the
request is a replay, 400 for a payload that is not a known button (naming the field). The
answer is an ephemeral message counting the alerts acted on (unknown fingerprints are skipped).
The actor is ``slack:<username>``, the audit source ``slack:<user id>``. 503 on a follower.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import SLACK_REPLAY_NAMESPACE, credentials_of
from monitor.api.bodies import ApiError, client_host, error_response, json_type, parse_json
from monitor.api.deps import alerting_deps, running_ports
from monitor.errors import NotFoundError

log = logging.getLogger("monitor.api")

#: The most fingerprints one button may carry (a grouped message lists its alerts).
MAX_FINGERPRINTS = 1000


def _payload(raw: bytes) -> dict[str, Any]:
    """Decode the form field ``payload`` (JSON) of a verified body.

    :raises ApiError: 400 naming what is wrong.
    """
    try:
        form = parse_qs(raw.decode("utf-8"), strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"bad Slack payload: {exc}") from None
    fields = form.get("payload")
    if not fields:
        raise ApiError(400, "bad Slack payload: no payload field")
    payload = parse_json(fields[0].encode("utf-8", "surrogatepass"))
    if not isinstance(payload, dict):
        raise ApiError(400, f"bad Slack payload: expected an object, got {json_type(payload)}")
    return payload


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, f"bad Slack payload: {where}: expected an object, got {json_type(value)}")
    return value


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"bad Slack payload: {where}.{key}: expected a string, got {json_type(value)}")
    return value


async def actions(request: Request) -> Response:
    """``POST /api/v1/slack/actions``."""
    ports = running_ports(request)
    creds = credentials_of(request)
    verifier = creds.slack()
    if verifier is None:
        return error_response(404, "Slack interactivity is not configured (api.slack_signing_secret)")
    raw = await request.body()  # bounded by the route's limit (monitor.api.access)
    now = ports.clock()
    signature = request.headers.get("x-slack-signature")
    reason = verifier.verify(request.headers.get("x-slack-request-timestamp"), signature, raw, now)
    if not reason:
        assert signature is not None
        claims = alerting_deps(request).claims() or creds.memory_claims
        if not await claims.claim_once(SLACK_REPLAY_NAMESPACE, signature, now, verifier.replay_ttl):
            reason = "replayed request"
    if reason:
        log.warning("slack request rejected", extra={"reason": reason, "client": client_host(request)})
        return error_response(401, reason)

    payload = _payload(raw)
    actions_list = payload.get("actions")
    if not isinstance(actions_list, list) or not actions_list:
        raise ApiError(400, "bad Slack payload: actions: expected a non-empty list")
    action = _object(actions_list[0], "actions[0]")
    user = _object(payload.get("user") or {}, "user")
    user_id = _string(user, "id", "user")
    kind = action.get("action_id")
    value = _string(action, "value", "actions[0]")
    fps = [f for f in value.split(",") if f]
    if kind not in ("ack", "resolve") or not fps:
        return error_response(400, f"unknown action {kind!r}"[:200])
    if len(fps) > MAX_FINGERPRINTS:
        return error_response(400, f"bad Slack payload: more than {MAX_FINGERPRINTS} fingerprints")
    actor = f"slack:{_string(user, 'username', 'user') or _string(user, 'name', 'user') or user_id}"
    done = []
    for fp in fps:
        try:
            if kind == "ack":
                await ports.acks.acknowledge(fp, actor, f"slack:{user_id}")
            else:
                await ports.acks.resolve(fp, actor, f"slack:{user_id}")
            done.append(fp)
        except NotFoundError:
            continue
    verb = "acknowledged" if kind == "ack" else "resolved"
    return JSONResponse({"response_type": "ephemeral", "replace_original": False,
                         "text": f"{len(done)} alert(s) {verb} by <@{user_id}>"})


ROUTES = [Route("/api/v1/slack/actions", actions, methods=["POST"])]
