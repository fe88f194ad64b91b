"""Request, query and response schemas of the parked-event endpoints (marshmallow)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

MAX_PAGE = 200
MAX_REASON = 500
NOT_NEGATIVE = validate.Range(min=0)
OUTCOMES = ["applied", "duplicate", "failed", "discarded"]


class ParkedListArgs(Schema):
    """GET /parked: oldest first, a page at a time."""

    after = fields.Integer(load_default=0, validate=validate.Range(0, 2**62))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_PAGE))


class AuditListArgs(Schema):
    """GET /parked/actions: the newest first."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_PAGE))


class ParkedActionBody(Schema):
    """POST /parked/{id}/retry and /discard: why (optional, kept in the audit log)."""

    reason = fields.String(validate=validate.Length(1, MAX_REASON))


class ParkedEventSchema(Schema):
    """A message or event the projection could not apply, as it was stored."""

    id = fields.Integer(required=True)
    origin = fields.String(required=True, metadata={"description": "kafka, gap-repair or rebuild"})
    first_seen_at = fields.DateTime(required=True)
    last_seen_at = fields.DateTime(required=True)
    error = fields.String(required=True)
    topic = fields.String(required=True, allow_none=True)
    partition = fields.Integer(required=True, allow_none=True)
    offset = fields.Integer(required=True, allow_none=True)
    event_id = fields.String(required=True, allow_none=True)
    stream_id = fields.String(required=True, allow_none=True)
    key = fields.String(required=True, allow_none=True, metadata={"description": "As text."})
    payload = fields.String(
        required=True, allow_none=True, metadata={"description": "The message value as text."}
    )
    headers = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))


class ParkedPageSchema(Schema):
    """A page of parked events, oldest first."""

    parked = fields.List(fields.Nested(ParkedEventSchema), required=True)
    total = fields.Integer(required=True, validate=NOT_NEGATIVE)
    next_after = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Pass as ?after= for more."}
    )


class ParkedActionSchema(Schema):
    """What a retry or discard did, and its audit line."""

    parked_id = fields.Integer(required=True)
    action = fields.String(required=True, validate=validate.OneOf(["retry", "discard"]))
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    audit_id = fields.Integer(required=True)
    event_id = fields.String(required=True, allow_none=True)
    stream_id = fields.String(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)


class AuditEntrySchema(Schema):
    """One operator action on a parked event: who, when, what, why, how it went."""

    id = fields.Integer(required=True)
    parked_id = fields.Integer(required=True)
    action = fields.String(required=True)
    outcome = fields.String(required=True)
    acted_at = fields.DateTime(required=True)
    by_sub = fields.String(required=True)
    by_iss = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    event_id = fields.String(required=True, allow_none=True)
    stream_id = fields.String(required=True, allow_none=True)
    detail = fields.String(required=True, allow_none=True)


class AuditLogSchema(Schema):
    """The newest operator actions first."""

    actions = fields.List(fields.Nested(AuditEntrySchema), required=True)
