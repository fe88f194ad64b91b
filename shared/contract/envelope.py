"""The event envelope: how an event travels from the log to Kafka and into the read side.

The Kafka value is the JSON envelope; the headers carry the same identity in CloudEvents
binary-mode form so any CloudEvents consumer can read the topic without knowing our format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CLOUDEVENTS_SPEC_VERSION = "1.0"
CLOUDEVENTS_TYPE_PREFIX = "orders."


class EnvelopeError(ValueError):
    """Bytes that are not a valid event envelope."""


@dataclass(frozen=True)
class EventEnvelope:
    """One stored event with its identity, position in the log and metadata."""

    event_id: str
    type: str
    stream_id: str
    version: int
    position: int
    occurred_at: datetime
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, as served over HTTP and written to Kafka."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "occurred_at": format_timestamp(self.occurred_at),
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the Kafka message value."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, raw: Any) -> EventEnvelope:
        """Parse the dict form, raising EnvelopeError on anything malformed."""
        if not isinstance(raw, dict):
            raise EnvelopeError("envelope must be a JSON object")
        try:
            # Positional: the read side parses every event of a rebuild through here.
            envelope = cls(
                _str(raw, "event_id"),
                _str(raw, "type"),
                _str(raw, "stream_id"),
                _int(raw, "version"),
                _int(raw, "position"),
                parse_timestamp(_str(raw, "occurred_at")),
                _int(raw, "schema_version"),
                _object(raw, "data"),
                _object(raw, "metadata"),
            )
        except (KeyError, ValueError) as exc:
            raise EnvelopeError(f"invalid envelope: {exc}") from exc
        return envelope

    @classmethod
    def from_json(cls, value: bytes) -> EventEnvelope:
        """Parse a Kafka message value."""
        try:
            raw = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"envelope is not JSON: {exc}") from exc
        return cls.from_dict(raw)

    def cloudevents_headers(self, source: str) -> list[tuple[str, bytes]]:
        """CloudEvents 1.0 Kafka binary-mode headers for this event."""
        return [
            ("ce_specversion", CLOUDEVENTS_SPEC_VERSION.encode()),
            ("ce_id", self.event_id.encode()),
            ("ce_source", source.encode()),
            ("ce_type", f"{CLOUDEVENTS_TYPE_PREFIX}{self.type}".encode()),
            ("ce_time", format_timestamp(self.occurred_at).encode()),
            ("ce_subject", self.stream_id.encode()),
            ("content-type", b"application/json"),
        ]


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 / ISO 8601 in UTC with microseconds and a Z suffix."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a timezone, returning UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return moment.astimezone(UTC)


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return value
