"""Request bodies and error answers shared by the alerting routes.

Errors are JSON ``{"status": "error", "error": "<message>"}``. A handler either returns
:func:`error_response` or raises :class:`ApiError`; :func:`monitor.api.app.create_app` turns a
raised :class:`ApiError` into the same response.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

#: The largest request body the intake routes read (4 MiB); a larger one is answered 413.
MAX_BODY_BYTES = 4 * 1024 * 1024


class ApiError(Exception):
    """An error answer, raised from anywhere inside a handler.

    :param status: the HTTP status code.
    :param message: the ``error`` text.
    :param headers: extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class BodyTooLarge(ApiError):
    """The request body is larger than :data:`MAX_BODY_BYTES` (413)."""

    def __init__(self) -> None:
        super().__init__(413, f"request body larger than {MAX_BODY_BYTES} bytes (4 MiB); send smaller batches")


def error_response(status: int, message: str, **headers: str) -> JSONResponse:
    """Return ``{"status": "error", "error": message}`` with ``status`` and ``headers``."""
    return JSONResponse({"status": "error", "error": message}, status_code=status, headers=headers or None)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler: answer a raised :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, **exc.headers)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the request body, giving up beyond ``limit`` bytes without buffering the rest
    (``Content-Length`` is checked first, then the bytes actually read).

    :raises BodyTooLarge: the body is (or declares to be) larger than ``limit`` bytes.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request) -> dict[str, Any]:
    """Return the JSON object body of ``request`` (``{}`` when empty).

    :raises ValueError: not JSON, or JSON but not an object.
    """
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def client_host(request: Request) -> str:
    """Return the peer address of ``request`` (``unknown`` when the server does not know it)."""
    return request.client.host if request.client else "unknown"
