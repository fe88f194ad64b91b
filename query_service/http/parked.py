"""Parked events for operators: list them (read:all), retry or discard one (admin, audited)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import Engine, RowMapping

from query_service.http.params import query_args
from query_service.http.parked_schemas import AuditListArgs, ParkedActionBody, ParkedListArgs
from query_service.projector.applier import EventApplier
from query_service.projector.command_api import CommandApiUnavailable
from query_service.projector.parked_retry import (
    ActionResult,
    ParkedEventNotFound,
    discard_parked,
    retry_parked,
)
from query_service.read_model.parked import parked_event, parked_page, recent_actions
from query_service.read_model.views import ReadViews
from shared.contract.envelope import format_timestamp
from shared.contract.principal import ADMIN, READ_ALL
from shared.http.auth import current_principal, requires
from shared.http.errors import Problem, flatten_messages, validation_problem

parked = Blueprint("parked", __name__)

MAX_ID = 2**62
MAX_BODY_BYTES = 4096


def _engine() -> Engine:
    views: ReadViews = current_app.extensions["read_views"]
    return views.engine


@parked.get("/parked")
@requires(READ_ALL)
def list_parked() -> Response:
    args = query_args(ParkedListArgs())
    page = parked_page(_engine(), args["after"], args["limit"])
    views: ReadViews = current_app.extensions["read_views"]
    return jsonify(
        parked=[parked_view(row) for row in page.rows],
        total=views.parked_count(),
        next_after=page.next_after,
    )


@parked.get("/parked/actions")
@requires(READ_ALL)
def parked_audit_log() -> Response:
    args = query_args(AuditListArgs())
    rows = recent_actions(_engine(), args["limit"])
    return jsonify(actions=[_audit_entry(row) for row in rows])


@parked.get("/parked/<int:parked_id>")
@requires(READ_ALL)
def get_parked(parked_id: int) -> Response:
    with _engine().connect() as conn:
        row = parked_event(conn, parked_id) if parked_id <= MAX_ID else None
    if row is None:
        raise _not_found(parked_id)
    return jsonify(parked_view(row))


@parked.post("/parked/<int:parked_id>/retry")
@requires(ADMIN)
def retry(parked_id: int) -> Response:
    reason = _reason()
    applier: EventApplier = current_app.extensions["parked_applier"]
    try:
        result = retry_parked(_engine(), applier, _known(parked_id), current_principal(), reason)
    except ParkedEventNotFound:
        raise _not_found(parked_id) from None
    except CommandApiUnavailable as exc:
        raise Problem(
            503,
            "command-api-unavailable",
            "Command API unavailable",
            f"Repairing the stream's version gap needs the command API: {exc}. Nothing changed.",
            headers={"Retry-After": "1"},
        ) from exc
    if result.outcome == "failed":
        raise Problem(
            409,
            "retry-failed",
            "The parked event still cannot be applied",
            f"It stays parked: {result.error}",
            _result(result),
        )
    return jsonify(_result(result))


@parked.post("/parked/<int:parked_id>/discard")
@requires(ADMIN)
def discard(parked_id: int) -> Response:
    reason = _reason()
    try:
        result = discard_parked(_engine(), _known(parked_id), current_principal(), reason)
    except ParkedEventNotFound:
        raise _not_found(parked_id) from None
    return jsonify(_result(result))


def parked_view(row: RowMapping) -> dict[str, Any]:
    """A parked row as JSON: key, value and headers as text (undecodable bytes replaced)."""
    return {
        "id": row["id"],
        "origin": row["origin"],
        "first_seen_at": format_timestamp(row["parked_at"]),
        "last_seen_at": format_timestamp(row["last_seen_at"] or row["parked_at"]),
        "error": row["error"],
        "topic": row["topic"],
        "partition": row["kafka_partition"],
        "offset": row["kafka_offset"],
        "event_id": row["event_id"],
        "stream_id": row["order_id"],
        "key": _text(row["message_key"]),
        "payload": _text(row["message_value"]),
        "headers": {name: _header_text(value) for name, value in row["headers"] or []},
    }


def _audit_entry(row: RowMapping) -> dict[str, Any]:
    entry = dict(row)
    entry["acted_at"] = format_timestamp(row["acted_at"])
    return entry


def _result(result: ActionResult) -> dict[str, Any]:
    return {
        "parked_id": result.parked_id,
        "action": result.action,
        "outcome": result.outcome,
        "audit_id": result.audit_id,
        "event_id": result.event_id,
        "stream_id": result.stream_id,
        "error": result.error,
    }


def _text(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode("utf-8", errors="replace")


def _header_text(value: str | None) -> str | None:
    return None if value is None else _text(base64.b64decode(value))


def _known(parked_id: int) -> int:
    if parked_id > MAX_ID:
        raise _not_found(parked_id)
    return parked_id


def _reason() -> str | None:
    """The optional JSON body's reason; 400/415/422 naming the problem."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise Problem(413, "body-too-large", "Body too large", f"At most {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        return None
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            "Send the body as Content-Type: application/json, or no body.",
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = f"Body is not valid JSON: {exc}"
        raise Problem(
            400, "malformed-json", "Malformed JSON", detail, {"errors": {"_body": [detail]}}
        ) from None
    if not isinstance(body, dict):
        detail = "Body must be a JSON object."
        raise Problem(
            400, "malformed-json", "Malformed JSON", detail, {"errors": {"_body": [detail]}}
        )
    try:
        loaded: dict[str, Any] = ParkedActionBody().load(body)
    except ValidationError as exc:
        raise validation_problem(flatten_messages(exc.messages)) from None
    reason: str | None = loaded.get("reason")
    return reason


def _not_found(parked_id: int) -> Problem:
    return Problem(
        404,
        "parked-event-not-found",
        "Parked event not found",
        f"No parked event has id {parked_id} (it may have been retried or discarded).",
        {"parked_id": parked_id},
    )
