"""Request bodies and error answers shared by the routes.

Errors are JSON ``{"status": "error", "error": "<message>"}``. A handler either returns
:func:`error_response` or raises :class:`ApiError`; :func:`monitor.api.app.create_app` turns a
raised :class:`ApiError` into the same response.

Bodies are bounded before they are read: :mod:`monitor.api.access` refuses a declared
``Content-Length`` over the route's limit with 413 before reading a byte, and hands the handler a
request whose stream (:func:`bounded_receive`) raises :class:`BodyTooLarge` as soon as a chunked
body passes the limit, so no handler ever buffers more than its limit. JSON bodies are decoded by
:func:`parse_json`: strict JSON (no ``NaN``/``Infinity``), at most :data:`MAX_JSON_DEPTH` levels
deep, no lone surrogates in strings; anything else is a 400 naming the problem.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive

#: The largest request body the intake routes read (4 MiB); a larger one is answered 413
#: (every route's limit: :data:`monitor.api.access.ROUTE_ACCESS`).
MAX_BODY_BYTES = 4 * 1024 * 1024

#: The deepest nesting of arrays and objects a JSON body may have (an intake body needs 3).
MAX_JSON_DEPTH = 32


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


def _size(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit >= 1024 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


class BodyTooLarge(ApiError):
    """The request body is (or declares to be) larger than the route's limit (413).

    :param limit: the route's limit in bytes (0: the route takes no body).
    """

    def __init__(self, limit: int = MAX_BODY_BYTES) -> None:
        if limit == 0:
            message = "this endpoint takes no request body"
        else:
            message = f"request body larger than {limit} bytes ({_size(limit)}), the limit of this endpoint"
            if limit == MAX_BODY_BYTES:
                message += "; send smaller batches"
        super().__init__(413, message)
        self.limit = limit


def error_response(status: int, message: str, **headers: str) -> JSONResponse:
    """Return ``{"status": "error", "error": message}`` with ``status`` and ``headers``."""
    return JSONResponse({"status": "error", "error": message}, status_code=status, headers=headers or None)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler: answer a raised :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, **exc.headers)


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse a body whose ``Content-Length`` exceeds ``limit`` (nothing is read).

    :raises BodyTooLarge: the declared length is over ``limit``.
    """
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)


def bounded_receive(receive: Receive, limit: int) -> Receive:
    """Wrap an ASGI ``receive`` so that the request body stops at ``limit`` bytes.

    :return: a ``receive`` raising :class:`BodyTooLarge` on the chunk that passes ``limit``
        (that chunk is dropped; the server stops reading the connection when nobody receives).
    """
    size = 0

    async def receive_bounded() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_bounded


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_tree(value: Any) -> None:
    """Walk a decoded JSON value without recursion: depth and lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            for k, v in item.items():
                _check_text(k)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body strictly (see the module docstring).

    :raises ApiError: 400 ``bad JSON: <reason>``.
    """
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        _check_tree(value)
    except RecursionError:
        raise ApiError(400, f"bad JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"bad JSON: {exc}") from None
    return value


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """Read and decode the JSON body of ``request`` (bounded by the route's limit).

    :param empty: what an empty body stands for.
    :raises ApiError: 400 for a body that is not valid JSON (:func:`parse_json`); 413 past the limit.
    """
    raw = await request.body()
    if not raw.strip():
        return empty
    return parse_json(raw)


async def json_object(request: Request) -> dict[str, Any]:
    """Return the JSON object body of ``request`` (``{}`` when empty).

    :raises ApiError: 400 when the body is not JSON, or JSON but not an object.
    """
    data = await read_json(request, empty={})
    if not isinstance(data, dict):
        raise ApiError(400, f"bad body: expected a JSON object, got {json_type(data)}")
    return data


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded value (``an object``, ``a list``, ``null``...)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def client_host(request: Request) -> str:
    """Return the peer address of ``request`` (``unknown`` when the server does not know it)."""
    return request.client.host if request.client else "unknown"
