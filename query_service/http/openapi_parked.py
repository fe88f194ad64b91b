"""The parked-event operations of the query API's OpenAPI document (query_service.http.parked)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from query_service.http import parked_schemas as ps
from shared.http import openapi as doc

PARKED_ID = {
    "name": "parked_id",
    "in": "path",
    "required": True,
    "description": "The parked event's id (GET /parked lists them).",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
    "example": 1,
}
UNAVAILABLE = doc.unavailable("The read model database cannot answer right now.")
BAD_QUERY = doc.problem("A query parameter is invalid, repeated or unknown (errors names it).")
NOT_FOUND = doc.problem("No parked event has this id (it may have been retried or discarded).")
ACTION_BODY = doc.json_body("ParkedAction", "Optional: why, kept in the audit log.", False)
ACTION_ERRORS: dict[int, dict[str, Any]] = {
    400: doc.problem("Malformed JSON, or a body that is not an object."),
    404: NOT_FOUND,
    413: doc.problem("The body is over 4096 bytes."),
    415: doc.problem("The body is not Content-Type: application/json."),
    422: doc.problem("Invalid fields (errors names each one)."),
    503: UNAVAILABLE,
}


def add_parked_paths(spec: APISpec) -> None:
    """GET /parked, /parked/actions, /parked/{id}; POST /parked/{id}/retry and /discard."""
    doc.register_schemas(
        spec,
        {
            "ParkedEvent": ps.ParkedEventSchema,
            "ParkedPage": ps.ParkedPageSchema,
            "ParkedAction": ps.ParkedActionBody,
            "ParkedActionResult": ps.ParkedActionSchema,
            "ParkedAuditLog": ps.AuditLogSchema,
        },
    )
    reads = {400: BAD_QUERY, 503: UNAVAILABLE}
    doc.add_operation(
        spec,
        "get",
        "/parked",
        "listParked",
        "Parked events, oldest first, a page at a time",
        "parked",
        {200: doc.success("A page of parked events.", "ParkedPage"), **reads},
        doc.query_parameters(spec, ps.ParkedListArgs),
    )
    doc.add_operation(
        spec,
        "get",
        "/parked/actions",
        "parkedAuditLog",
        "What operators did with parked events (retries, discards), newest first",
        "parked",
        {200: doc.success("The audit log.", "ParkedAuditLog"), **reads},
        doc.query_parameters(spec, ps.AuditListArgs),
    )
    doc.add_operation(
        spec,
        "get",
        "/parked/{parked_id}",
        "getParked",
        "One parked event",
        "parked",
        {200: doc.success("The parked event.", "ParkedEvent"), 404: NOT_FOUND, 503: UNAVAILABLE},
        [PARKED_ID],
    )
    retried = doc.success(
        "Applied, or already applied (duplicate); no longer parked.", "ParkedActionResult"
    )
    doc.add_operation(
        spec,
        "post",
        "/parked/{parked_id}/retry",
        "retryParked",
        "Apply a parked event again, through the projector's path (audited)",
        "parked",
        {
            200: retried,
            **ACTION_ERRORS,
            409: doc.problem("It still cannot be applied: it stays parked, with the new error."),
        },
        [PARKED_ID],
        ACTION_BODY,
    )
    doc.add_operation(
        spec,
        "post",
        "/parked/{parked_id}/discard",
        "discardParked",
        "Drop a parked event without applying it (audited)",
        "parked",
        {200: doc.success("Discarded.", "ParkedActionResult"), **ACTION_ERRORS},
        [PARKED_ID],
        ACTION_BODY,
    )
