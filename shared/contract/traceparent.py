"""W3C Trace Context `traceparent` values: parsed, formatted and started in plain Python.

`00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>`. Requests carry one in the
`traceparent` header, events keep one in `metadata.traceparent`, Kafka messages in
`ce_traceparent` (the CloudEvents distributed-tracing extension). Parsing follows the W3C
rules for a receiver: anything invalid is None (start a new trace), never an error.
"""

from __future__ import annotations

import os
from typing import NamedTuple

TRACEPARENT = "traceparent"  # the HTTP header and the event metadata key
KAFKA_TRACEPARENT_HEADER = "ce_traceparent"
SAMPLED = "01"

_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
_VERSION_00_LENGTH = 55


class TraceParent(NamedTuple):
    """One span's identity within a trace, as W3C `traceparent` carries it."""

    # A NamedTuple rather than a frozen dataclass: one is made per request, and a frozen
    # dataclass's __init__ costs several times more.

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero (the W3C "parent-id")
    flags: str = SAMPLED  # 2 hex digits; bit 0 is "sampled"

    def header(self) -> str:
        """The value to send: always version 00, the version this code speaks."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    @property
    def sampled(self) -> bool:
        """Whether the caller recorded (and asks us to record) this trace."""
        return bool(int(self.flags, 16) & 1)

    def child(self) -> TraceParent:
        """A new span in the same trace, with the same flags."""
        return TraceParent(self.trace_id, new_span_id(), self.flags)


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """The traceparent in `value`, or None if it is missing or invalid (per W3C: ignore it)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = value.strip(" \t")
    if len(value) < _VERSION_00_LENGTH:
        return None
    version, trace_id, span_id, flags = value[:2], value[3:35], value[36:52], value[53:55]
    if value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    if not _is_hex(version) or version == "ff":
        return None
    # Version 00 is exactly 55 characters; a later version may append fields after a dash.
    if len(value) > _VERSION_00_LENGTH and (version == "00" or value[55] != "-"):
        return None
    if not (_is_hex(trace_id) and _is_hex(span_id) and _is_hex(flags)):
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return TraceParent(trace_id, span_id, flags)


def start_trace() -> TraceParent:
    """The root span of a new, sampled trace."""
    digits = os.urandom(24).hex()  # one call for both ids: this runs on every request
    trace_id, span_id = digits[:32], digits[32:]
    # All zeros is a 2**-128 (2**-64) chance, but the value would be invalid.
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return start_trace()
    return TraceParent(trace_id, span_id)


def continue_trace(parent: TraceParent | None) -> TraceParent:
    """A new span: a child of `parent`, or the root of a new trace when there is none."""
    return parent.child() if parent is not None else start_trace()


def new_span_id() -> str:
    """16 random lowercase hex digits, not all zero."""
    span_id = os.urandom(8).hex()
    while span_id == _ZERO_SPAN_ID:
        span_id = os.urandom(8).hex()
    return span_id


def _is_hex(text: str) -> bool:
    return _HEX.issuperset(text)
