"""The console's forms (``POST /ui/...``): log in and out; acknowledge, unacknowledge and resolve an
alert; create and expire silences.

Every form is bounded (:data:`monitor.api.access.CONSOLE_FORM_LIMIT`, at most :data:`MAX_FIELDS`
fields, no files) and carries the session's CSRF token (``csrf``); a missing or wrong token is a
403 before anything else happens. Acting on alerts and silences needs the ``ack`` scope (roles
``responder`` and ``admin``): a viewer gets 403. The actions call the same pipeline services as the
API (:class:`~monitor.alerting.ports.Acknowledgements`, :class:`~monitor.alerting.ports.SilenceAdmin`),
which write the audit log: the actor is the console user, the source ``console:<client address>``.
After an action the browser is sent back (303) to the page named by the form's ``next`` field.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from model.duration import parse_duration
from monitor.alerting.silence import SilenceError
from monitor.api.bodies import client_host
from monitor.api.console.pages import console_of, current_viewer, render, safe_next
from monitor.api.console.session import Viewer, check_csrf
from monitor.api.deps import deps_of
from monitor.errors import NotFoundError

#: Most fields a console form may have.
MAX_FIELDS = 16
#: Longest comment kept (characters).
MAX_COMMENT = 4096
#: Longest silence the console creates (seconds): 30 days.
MAX_SILENCE = 30 * 86400.0


class FormRejected(Exception):
    """A form the console refuses: its status and the message shown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request) -> dict[str, str]:
    """Return the form's fields (the last value of each), at most :data:`MAX_FIELDS`, no files.

    :raises FormRejected: 400 for a malformed form, too many fields or a file; 415 for a body declared as
        something else than a form (a body without a content type is no form: ``{}``).
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not kind:
        return {}  # no form at all: its CSRF token is missing (403)
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise FormRejected(415, "expected a form (application/x-www-form-urlencoded)")
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception as e:  # noqa: BLE001 - multipart's and starlette's parse errors have no common base
        if getattr(e, "status", 0) == 413 or type(e).__name__ == "BodyTooLarge":
            raise
        raise FormRejected(400, f"malformed form: {getattr(e, 'detail', e)}") from None
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            raise FormRejected(400, "files are not accepted")
        out[key] = value
    return out


def _reject(request: Request, e: FormRejected) -> Response:
    return render(request, "error.html", status=e.status, message=e.message)


async def _checked(request: Request, scope: str | None) -> tuple[Viewer, dict[str, str]]:
    """Read the form and check its CSRF token, then the session and its role.

    :raises FormRejected: 403 bad CSRF token or lacking ``scope``; 401 not logged in.
    """
    form = await read_form(request)
    viewer = await current_viewer(request)
    if not check_csrf(viewer, form.get("csrf")):
        raise FormRejected(403, "missing or invalid CSRF token: reload the page and try again")
    if scope is not None:
        if not viewer.logged_in:
            raise FormRejected(401, "log in first")
        if not viewer.can(scope):
            raise FormRejected(403, f'{viewer.name} ({viewer.role}) may not do this: it needs the "{scope}" scope '
                                    "(roles responder, admin)")
    return viewer, form


def _back(form: dict[str, str], default: str) -> RedirectResponse:
    return RedirectResponse(safe_next(form.get("next") or default), status_code=303)


def _ports(request: Request) -> Any:
    alerting = deps_of(request).alerting
    ports = alerting.ports() if alerting is not None else None
    if ports is None:
        raise FormRejected(503, "alerting is not running on this replica (a follower): use the leader's console")
    return ports


async def login(request: Request) -> Response:
    """``POST /ui/login``: ``username`` and ``password``, or ``token`` (an API token); ``next``."""
    try:
        viewer, form = await _checked(request, None)
    except FormRejected as e:
        return _reject(request, e)
    sessions = console_of(request).sessions
    target = safe_next(form.get("next"))
    if form.get("token"):
        data = sessions.login_token(form["token"][:1024])
    else:
        data = await sessions.login_password(form.get("username", "")[:128], form.get("password", "")[:1024])
    if data is None:
        return render(request, "login.html", status=401, next=target, error="wrong username or password, or token")
    response = RedirectResponse(target, status_code=303)
    sessions.write(response, request, data)  # a new CSRF token: a token seen before login is not reused
    return response


async def logout(request: Request) -> Response:
    """``POST /ui/logout``: end the session."""
    try:
        await _checked(request, None)
    except FormRejected as e:
        return _reject(request, e)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie("cbm_session", path="/ui")
    return response


async def alert_action(request: Request) -> Response:
    """``POST /ui/alerts/{fingerprint}/{action}``: ``ack`` (with ``comment``), ``unack``, ``resolve`` (with
    ``comment``), ``escalate`` (notify the next level now), ``note`` (``comment`` on the timeline; required);
    404 unknown action or alert."""
    try:
        viewer, form = await _checked(request, "ack")
        action = request.path_params["action"]
        if action not in ("ack", "unack", "resolve", "escalate", "note"):
            raise FormRejected(404, f"unknown action {action!r}")
        acks = _ports(request).acks
        fp = request.path_params["fingerprint"]
        source = f"console:{client_host(request)}"
        comment = form.get("comment", "")[:MAX_COMMENT]
        try:
            if action == "ack":
                await acks.acknowledge(fp, viewer.name, source, comment=comment)
            elif action == "unack":
                await acks.unacknowledge(fp, viewer.name, source)
            elif action == "escalate":
                await acks.escalate_now(fp, viewer.name, source, comment=comment)
            elif action == "note":
                if not comment.strip():
                    raise FormRejected(400, "comment: a note needs some text")
                await acks.note(fp, viewer.name, source, comment)
            else:
                await acks.resolve(fp, viewer.name, source, comment=comment)
        except NotFoundError as exc:
            raise FormRejected(404, str(exc)) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, "/ui/alerts")


async def create_silence(request: Request) -> Response:
    """``POST /ui/silences``: ``matchers`` (``{alertname="X", ...}``), ``duration`` (``2h``; at most 30 days),
    ``comment``; 400 naming what is invalid."""
    try:
        viewer, form = await _checked(request, "ack")
        ports = _ports(request)
        try:
            duration = parse_duration(form.get("duration", "").strip() or "1h")
        except ValueError as e:
            raise FormRejected(400, f"duration: {e}") from None
        if not 0 < duration <= MAX_SILENCE:
            raise FormRejected(400, "duration: between 1s and 30d")
        matchers = form.get("matchers", "").strip()
        if not matchers:
            raise FormRejected(400, "matchers: required, e.g. {alertname=\"HighErrorRate\"}")
        now = ports.clock() if callable(getattr(ports, "clock", None)) else time.time()
        try:
            await ports.silences.create_silence(matchers[:4096], now, now + duration, viewer.name,
                                                form.get("comment", "")[:MAX_COMMENT], actor=viewer.name,
                                                source=f"console:{client_host(request)}")
        except (SilenceError, ValueError, TypeError) as exc:
            raise FormRejected(400, str(getattr(exc, "message", exc))) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, "/ui/silences")


async def expire_silence(request: Request) -> Response:
    """``POST /ui/silences/{id}/expire``: expire a silence now; 404 unknown id."""
    try:
        viewer, form = await _checked(request, "ack")
        ports = _ports(request)
        try:
            await ports.silences.expire_silence(request.path_params["id"], viewer.name,
                                                f"console:{client_host(request)}")
        except NotFoundError as exc:
            raise FormRejected(404, str(exc)) from None
        except SilenceError as exc:
            raise FormRejected(400, str(exc)) from None
    except FormRejected as e:
        return _reject(request, e)
    return _back(form, "/ui/silences")


__all__ = ["FormRejected", "MAX_FIELDS", "alert_action", "create_silence", "expire_silence", "login", "logout",
           "read_form"]
