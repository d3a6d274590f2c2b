"""The OpenAPI operations of the on-call routes (:mod:`monitor.api.oncall`, :mod:`monitor.api.oncall_feeds`).

Merged into :data:`monitor.api.openapi.OPERATIONS`; the same shapes (no security, no responses:
those come from :data:`monitor.api.access.ROUTE_ACCESS`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ONCALL_OPERATIONS"]

Schema = dict[str, Any]


def _param(name: str, where: str, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "description": description,
            "schema": {"type": "string"}}


_TZ = _param("tz", "query", "the viewer's IANA time zone for the times answered (default UTC)")
_TOKEN = _param("token", "query", "the feed's secret token (GET /api/v1/oncall/feeds lists the URLs)", True)
_TIME = {"type": "string", "format": "date-time"}

OVERRIDE_SCHEMA: Schema = {
    "type": "object", "required": ["schedule", "person", "start", "end"],
    "properties": {"schedule": {"type": "string"}, "person": {"type": "string"}, "start": _TIME, "end": _TIME,
                   "comment": {"type": "string", "maxLength": 1000}},
    "example": {"schedule": "primary", "person": "bob", "start": "2026-12-24T09:00:00+01:00",
                "end": "2026-12-27T09:00:00+01:00", "comment": "swap with alice"},
}

_ID = _param("id", "path", "the incident's id")
NOTE_SCHEMA: Schema = {"type": "object", "required": ["text"],
                       "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 4000}}}
UPDATE_SCHEMA: Schema = {
    "type": "object", "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 4000},
                   "status": {"type": "string", "enum": ["investigating", "identified", "monitoring", "resolved"]},
                   "title": {"type": "string", "minLength": 1, "maxLength": 200,
                             "description": "the incident's public title on /status from now on"}}}

SUBSCRIBE_SCHEMA: Schema = {"type": "object", "required": ["email"],
                            "properties": {"email": {"type": "string", "maxLength": 254}}}

#: ``(method, path) -> operation``.
ONCALL_OPERATIONS: dict[tuple[str, str], Schema] = {
    ("GET", "/api/v1/oncall/schedules"): {
        "summary": "Schedules: who is on call now and next, in the viewer's zone", "tags": ["oncall"],
        "parameters": [_TZ, _param("count", "query", "upcoming shifts per schedule (default 5, at most 50)")]},
    ("GET", "/api/v1/oncall/schedules/{name}/shifts"): {
        "summary": "A schedule's shifts between two times (the calendar)", "tags": ["oncall"],
        "parameters": [_param("name", "path", "the schedule"), _TZ,
                       _param("start", "query", "RFC 3339 or Unix seconds (default now)"),
                       _param("end", "query", "RFC 3339 or Unix seconds (default start + 28 days; at most 92)")]},
    ("GET", "/api/v1/oncall/overrides"): {
        "summary": "Current and future overrides made through the API", "tags": ["oncall"],
        "parameters": [_param("schedule", "query", "only this schedule's")]},
    ("POST", "/api/v1/oncall/overrides"): {
        "summary": "Put someone on call instead (audited)", "tags": ["oncall"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": OVERRIDE_SCHEMA}}}},
    ("DELETE", "/api/v1/oncall/overrides/{id}"): {
        "summary": "Remove an override (audited)", "tags": ["oncall"],
        "parameters": [_param("id", "path", "the override's id")]},
    ("GET", "/api/v1/oncall/feeds"): {"summary": "The iCal feeds' secret URLs", "tags": ["oncall"]},
    ("GET", "/api/v1/oncall/schedules/{name}.ics"): {
        "summary": "iCal feed of a schedule's shifts", "tags": ["oncall"],
        "parameters": [_param("name", "path", "the schedule"), _TOKEN]},
    ("GET", "/api/v1/oncall/people/{person}.ics"): {
        "summary": "iCal feed of a person's shifts in every schedule", "tags": ["oncall"],
        "parameters": [_param("person", "path", "the person's id"), _TOKEN]},
    ("GET", "/api/v1/incidents"): {
        "summary": "Incidents, newest first", "tags": ["incidents"],
        "parameters": [_param("status", "query", "open or resolved"), _param("limit", "query", "1..1000")]},
    ("GET", "/api/v1/incidents/stats"): {
        "summary": "MTTA and MTTR per priority against the SLA", "tags": ["incidents"],
        "parameters": [_param("days", "query", "incidents opened in the last days (1..366, default 90)")]},
    ("GET", "/api/v1/incidents/{id}"): {
        "summary": "One incident and its timeline (internal notes included)", "tags": ["incidents"],
        "parameters": [_ID]},
    ("POST", "/api/v1/incidents/{id}/notes"): {
        "summary": "Add an internal note (audited)", "tags": ["incidents"], "parameters": [_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": NOTE_SCHEMA}}}},
    ("POST", "/api/v1/incidents/{id}/updates"): {
        "summary": "Add a public update, shown on /status (audited)", "tags": ["incidents"], "parameters": [_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": UPDATE_SCHEMA}}}},
    ("GET", "/status"): {"summary": "The public status page (HTML)", "tags": ["status page"]},
    ("GET", "/status.json"): {"summary": "The public status page's data", "tags": ["status page"]},
    ("POST", "/status/subscribe"): {
        "summary": "Subscribe an email address to maintenance notices (a confirmation email follows)",
        "tags": ["status page"],
        "requestBody": {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": SUBSCRIBE_SCHEMA},
            "application/json": {"schema": SUBSCRIBE_SCHEMA}}}},
    **{(m, f"/status/{a}/{{id}}/{{token}}"): {
        "summary": f"Signed link: {a} ({'a page with a button' if m == 'GET' else 'act'})", "tags": ["status page"],
        "parameters": [_param("id", "path", "the subscriber's id"), _param("token", "path", "the link's token")]}
       for a in ("confirm", "unsubscribe") for m in ("GET", "POST")},
}
