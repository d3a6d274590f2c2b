"""``POST /api/v1/slack/actions``: Slack interactivity (Block Kit buttons on alert messages).

A button's ``action_id`` is ``ack`` or ``resolve`` and its ``value`` one fingerprint or several,
comma-separated. The request is verified with ``api.slack_signing_secret``
(:class:`~monitor.api.auth.SlackVerifier`: signature, age, replay); 404 when no secret is
configured, 401 when verification fails, 400 for a payload that is not a known button. The
answer is an ephemeral message counting the alerts acted on (unknown fingerprints are skipped).
The actor is ``slack:<username>``, the audit source ``slack:<user id>``. 503 on a follower.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.api.auth import credentials_of
from monitor.api.bodies import client_host, error_response
from monitor.api.deps import running_ports
from monitor.errors import NotFoundError

log = logging.getLogger("monitor.api")


async def actions(request: Request) -> Response:
    """``POST /api/v1/slack/actions``."""
    ports = running_ports(request)
    verifier = credentials_of(request).slack()
    if verifier is None:
        return error_response(404, "Slack interactivity is not configured (api.slack_signing_secret)")
    raw = await request.body()
    reason = verifier.verify(request.headers.get("x-slack-request-timestamp"),
                             request.headers.get("x-slack-signature"), raw, ports.clock())
    if reason:
        log.warning("slack request rejected", extra={"reason": reason, "client": client_host(request)})
        return error_response(401, reason)
    try:
        payload = json.loads(parse_qs(raw.decode()).get("payload", [""])[0])
        action = payload["actions"][0]
        user = payload.get("user") or {}
        user_id = str(user.get("id") or "")
    except (ValueError, KeyError, IndexError, TypeError):
        return error_response(400, "bad Slack payload")
    kind = action.get("action_id")
    fps = [f for f in str(action.get("value", "")).split(",") if f]
    if kind not in ("ack", "resolve") or not fps:
        return error_response(400, f"unknown action {kind!r}")
    actor = f"slack:{user.get('username') or user.get('name') or user_id}"
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
