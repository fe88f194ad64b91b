"""Reading a JSON request body strictly: right content type, size-limited, no floats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from flask import request

from shared.http.errors import Problem

BODY = "_body"  # the name errors give the body as a whole, as validation problems do
# Bodies with more brackets than this go to json alone: they may nest deeper than json's
# recursion limit allows, where orjson (1024 levels) would accept what json refused.
_ORJSON_MAX_OPENINGS = 500


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(*, required: bool = True) -> Any:
    """The parsed body; numbers with a fraction become Decimal so money never passes a float.

    Raises Problem 415 for a non-JSON content type and 400 for malformed JSON; an oversized
    body is refused with 413 by Flask's MAX_CONTENT_LENGTH before it is read.
    """
    raw = request.get_data(cache=True)
    if not raw:
        if required:
            raise Problem(400, "malformed-request", "Empty body", "Send a JSON object body.")
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            f"Send the body as Content-Type: application/json (got {mimetype or 'none'}).",
        )
    payload = _parsed(raw)
    if not isinstance(payload, dict):
        raise _malformed("Body must be a JSON object.")
    return payload


def _parsed(raw: bytes) -> Any:
    # orjson parses the common body (UTF-8, strings and small ints) several times faster. It
    # gives floats where the json module gives Decimal (fractions, exponents, ints beyond 64
    # bits), refuses what json accepts (a BOM, UTF-16, lone surrogates), refuses with other
    # words (NaN, bad syntax) and nests deeper than json can: every such body goes through
    # json, so what a client sees, parsed values and error details alike, is exactly json's.
    if raw.count(b"[") + raw.count(b"{") <= _ORJSON_MAX_OPENINGS:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if not _holds_float(payload):
                return payload
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(f"Body is not valid JSON: {exc}") from None
    except RecursionError:
        # Not a ValueError: without this, a few KB of "[[[[..." would be a 500.
        raise _malformed("Body is nested too deeply to be a command.") from None


def _holds_float(value: Any) -> bool:
    # A loop, not recursion: orjson accepts 1024 levels of nesting, deeper than Python's stack.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
    return False


def _malformed(detail: str) -> Problem:
    return Problem(400, "malformed-json", "Malformed JSON", detail, {"errors": {BODY: [detail]}})
