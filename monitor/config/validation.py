"""Validation helpers shared by every config section: the ``Section`` base, located errors, uniqueness.

A config error must name the exact key it is about (STYLE 7). Pydantic locates an error by its
``loc`` (a tuple of keys and list indexes); the loader maps that back to ``file:line:col`` and
prints ``monitor.yaml:14:5: probes[2].timeout: ...``. The helpers here build errors at chosen
locations from inside validators:

- :func:`located_error` — raise from a validator; each message sits at its own ``loc``.
- :func:`unique_by` — an ``Annotated`` marker rejecting list items that repeat a key.
- :func:`parse_path` — ``"route.routes[2].receiver"`` -> ``("route", "routes", 2, "receiver")``,
  for checks that produce printed key paths (:func:`monitor.config.alerting.validate_alerting_refs`).
- :data:`LabelMap` — ``dict[str, str]`` of Prometheus labels with checked names.

This module imports only the shared vocabulary (``model``); every other config module may import it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WrapValidator
from pydantic_core import InitErrorDetails, PydanticCustomError

from model.labels import LABEL_NAME_RE

__all__ = [
    "Loc", "Section", "LabelMap", "error_detail", "located_error", "reraise_details", "parse_path", "unique_by",
]

#: A pydantic error location: keys (``str``) and list indexes (``int``), outermost first.
Loc = tuple[int | str, ...]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def error_detail(loc: Loc, message: str, value: Any = None, kind: str = "config") -> InitErrorDetails:
    """Return one error ``message`` at ``loc`` (relative to the value being validated).

    :param value: the offending input (kept on the error, never printed by the loader).
    :param kind: the pydantic error type name.
    """
    # ``message`` is used as a template by pydantic-core; without a context nothing is substituted.
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def located_error(errors: list[tuple[Loc, str]], title: str = "Config") -> ValidationError:
    """Build a ``ValidationError`` whose errors sit at the given locations.

    Raised from a validator, pydantic prefixes each ``loc`` with the validator's own location,
    so ``[((2, "name"), 'duplicate probe name "api"')]`` raised while validating ``probes``
    reports at ``probes[2].name``. The message is printed as-is by the loader.

    :param errors: ``(loc relative to the validated value, message)`` pairs.
    :return: the error to ``raise``.
    """
    return ValidationError.from_exception_data(title, [error_detail(loc, msg) for loc, msg in errors])


def reraise_details(exc: ValidationError, prefix: Loc = ()) -> list[InitErrorDetails]:
    """Turn the errors of ``exc`` back into details (keeping type, message and ctx) under ``prefix``.

    Used to validate items one by one and report all of their errors together.
    """
    out: list[InitErrorDetails] = []
    for err in exc.errors():
        ctx = err.get("ctx") or None
        # Keep the pydantic error type name so the loader can humanise it; the already-formatted
        # message is the template and ``ctx`` rides along for the loader to read.
        out.append(InitErrorDetails(
            type=PydanticCustomError(err["type"], err["msg"], ctx),
            loc=prefix + tuple(err["loc"]),
            input=err.get("input"),
        ))
    return out


_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse_path(path: str) -> Loc:
    """Parse a key path as printed in errors.

    ``"route.routes[2].receiver"`` -> ``("route", "routes", 2, "receiver")``.
    """
    return tuple(int(i) if i else key for i, key in _PATH_PART.findall(path))


def _item_name(item: Any, field: str) -> Any:
    if isinstance(item, dict):
        return item.get(field)
    return getattr(item, field, None)


def unique_by(field: str, what: str) -> WrapValidator:
    """Return an ``Annotated`` marker that rejects list items sharing the value of ``field``.

    Checked on the raw items, so a duplicate is reported even when other items are invalid.
    The error sits at the later item's ``field``: ``scrape[3].name: duplicate job name "api"``.

    :param field: the key that must be unique, e.g. ``"name"``.
    :param what: how the message names it, e.g. ``"probe name"``.
    """

    def check(value: Any, handler):
        dups: list[tuple[Loc, str]] = []
        if isinstance(value, list):
            seen: set[str] = set()
            for i, item in enumerate(value):
                name = _item_name(item, field)
                if not isinstance(name, str):
                    continue
                if name in seen:
                    dups.append(((i, field), f'duplicate {what} "{name}"'))
                seen.add(name)
        if not dups:
            return handler(value)
        details = [error_detail(loc, msg, value[loc[0]]) for loc, msg in dups]
        try:
            handler(value)
        except ValidationError as exc:
            details = reraise_details(exc) + details
        raise ValidationError.from_exception_data("Config", details)

    return WrapValidator(check)


def _label_names(value: Any) -> Any:
    if isinstance(value, dict):
        bad: list[tuple[Loc, str]] = [((k,), f'invalid label name "{k}" (must match [a-zA-Z_][a-zA-Z0-9_]*)')
               for k in value if isinstance(k, str) and not LABEL_NAME_RE.match(k)]
        if bad:
            raise located_error(bad)
    return value


#: ``dict[str, str]`` of Prometheus labels (``{team: core}``) whose names are checked; an error
#: sits at the bad key: ``rules.external_labels.1bad: invalid label name "1bad" (...)``.
LabelMap = Annotated[dict[str, str], BeforeValidator(_label_names)]
