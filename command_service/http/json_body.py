"""Reading a JSON request body strictly: right content type, size-limited, no floats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import request

from shared.http.errors import Problem

BODY = "_body"  # the name errors give the body as a whole, as validation problems do


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
    try:
        payload = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(f"Body is not valid JSON: {exc}") from None
    except RecursionError:
        # Not a ValueError: without this, a few KB of "[[[[..." would be a 500.
        raise _malformed("Body is nested too deeply to be a command.") from None
    if not isinstance(payload, dict):
        raise _malformed("Body must be a JSON object.")
    return payload


def _malformed(detail: str) -> Problem:
    return Problem(400, "malformed-json", "Malformed JSON", detail, {"errors": {BODY: [detail]}})
