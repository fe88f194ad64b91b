"""W3C traceparent values: what a receiver keeps, what it ignores, and what it sends."""

from __future__ import annotations

import pytest

from shared.contract.traceparent import (
    TraceParent,
    continue_trace,
    new_span_id,
    parse_traceparent,
    start_trace,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"


def test_a_valid_value_is_parsed_into_its_fields() -> None:
    assert parse_traceparent(VALID) == TraceParent(TRACE_ID, SPAN_ID, "01")
    assert parse_traceparent(VALID.encode()) == TraceParent(TRACE_ID, SPAN_ID, "01")


def test_formatting_gives_the_value_back() -> None:
    parsed = parse_traceparent(VALID)
    assert parsed is not None and parsed.header() == VALID


def test_the_sampled_flag_is_bit_zero() -> None:
    assert TraceParent(TRACE_ID, SPAN_ID, "01").sampled
    assert TraceParent(TRACE_ID, SPAN_ID, "03").sampled
    assert not TraceParent(TRACE_ID, SPAN_ID, "00").sampled


def test_a_later_version_is_read_as_version_00_and_its_extra_fields_ignored() -> None:
    parsed = parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-adds")
    assert parsed == TraceParent(TRACE_ID, SPAN_ID, "01")
    assert parsed.header() == VALID  # we answer in the version we speak


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        VALID[:-1],  # too short
        VALID + "0",  # version 00 is exactly 55 characters
        VALID + "-extra",  # ... even with a dash
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is invalid
        f"0g-{TRACE_ID}-{SPAN_ID}-01",
        f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",  # lowercase hex only
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-{SPAN_ID}-0x",
        f"00_{TRACE_ID}-{SPAN_ID}-01",
        f"00-{TRACE_ID}_{SPAN_ID}-01",
        f"00-{TRACE_ID}-{SPAN_ID}_01",
        f"cc-{TRACE_ID}-{SPAN_ID}-01x",  # a later version's extra fields follow a dash
        b"\xff" * 55,
    ],
)
def test_an_invalid_value_is_ignored(value: str | bytes | None) -> None:
    assert parse_traceparent(value) is None


def test_surrounding_spaces_and_tabs_are_allowed() -> None:
    assert parse_traceparent(f" \t{VALID} ") == TraceParent(TRACE_ID, SPAN_ID, "01")


def test_a_new_trace_is_sampled_with_fresh_ids_that_parse_back() -> None:
    first, second = start_trace(), start_trace()
    assert first.trace_id != second.trace_id and first.span_id != second.span_id
    assert first.sampled
    assert parse_traceparent(first.header()) == first


def test_continuing_keeps_the_trace_and_flags_with_a_new_span() -> None:
    parent = TraceParent(TRACE_ID, SPAN_ID, "00")
    child = continue_trace(parent)
    assert (child.trace_id, child.flags) == (TRACE_ID, "00")
    assert child.span_id != SPAN_ID and len(child.span_id) == 16
    assert continue_trace(None).trace_id != TRACE_ID


def test_span_ids_are_16_lowercase_hex_digits() -> None:
    span_id = new_span_id()
    assert len(span_id) == 16 and set(span_id) <= set("0123456789abcdef")
