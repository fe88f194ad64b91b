"""The lean request path keeps the wire: orjson renders exactly what jsonify did, and parses
bodies to exactly what the json module did (values and error details)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify

from command_service.http.json_body import _reject_constant, read_json_body
from shared.http.errors import Problem
from shared.http.json_responses import json_response

# What jsonify wrote before (Flask's default provider outside debug mode).
OLD_SETTINGS: dict[str, Any] = {"sort_keys": True, "ensure_ascii": True, "separators": (",", ":")}

BODIES: list[Any] = [
    {"order_id": "o-1", "version": 1, "position": 17, "status": "placed"},
    {"z": 1, "a": {"y": [3, 2, 1], "b": None, "a": True}, "m": False},
    {"name": "Zoë, 東京, emoji 😀, café"},  # non-ASCII: escaped, surrogate pairs for astral
    {"text": "".join(chr(i) for i in range(128))},  # controls, quote, backslash, DEL
    {"big": 2**63 - 1, "small": -(2**63), "bigger": 2**64, "huge": 10**30},
    {"float": 1.5, "tiny": 1e-7, "large": 1e16, "nan": float("nan")},
    {"price": Decimal("12.50")},
    {"nested": [{"k": [[], {}]}], "tuple": (1, "x")},
    {"ß": 1, "a": 2, "Z": 3},  # key order with non-ASCII keys
    {1: "int key"},
    {},
]


def old_bytes(body: Any) -> bytes:
    """The body as the previous jsonify rendered it, newline included."""
    return (json.dumps(body, default=str, **OLD_SETTINGS) + "\n").encode()


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_json_response_sends_the_bytes_and_headers_jsonify_sent(body: Any) -> None:
    app = Flask(__name__)
    with app.test_request_context("/"):
        fast = json_response(body)
        reference = jsonify(body)
    assert fast.get_data() == reference.get_data()
    if not isinstance(next(iter(body), ""), int):
        assert fast.get_data() == old_bytes(body)
    assert list(fast.headers.items()) == list(reference.headers.items())
    assert fast.headers["Content-Type"] == "application/json"
    assert fast.headers["Content-Length"] == str(len(fast.get_data()))
    assert fast.status_code == 200


def test_json_response_indents_in_debug_mode_as_jsonify_does() -> None:
    app = Flask(__name__)
    app.debug = True
    with app.test_request_context("/"):
        assert json_response({"b": 1, "a": 2}).get_data() == jsonify({"b": 1, "a": 2}).get_data()
        assert b"\n  " in json_response({"a": 1}).get_data()


def _parse(app: Flask, raw: bytes) -> Any:
    with app.test_request_context(
        "/orders", method="POST", data=raw, content_type="application/json"
    ):
        return read_json_body()


def _old_parse(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)


PARSED = [
    b'{"customer_id": "c-1", "lines": [{"product_id": "p", "quantity": 2, "unit_price": "1.50"}]}',
    b'{"unit_price": 12.50, "n": 1e2, "neg": -0.0}',  # fractions and exponents: Decimal
    b'{"big": 123456789012345678901234567890, "neg": -99999999999999999999}',
    b'{"a": 1, "a": 2}',  # the last duplicate wins, as in json
    b'\xef\xbb\xbf{"bom": true}',  # json accepts a UTF-8 BOM; orjson does not
    '{"utf16": "\u00e9"}'.encode("utf-16"),
    b'{"lone": "\\ud800"}',  # a lone surrogate: json accepts it
    b'{"x": "\xc3\xa9 \\u00e9 \\ud83d\\ude00"}',
    b' \n{"spaced": [1, 2, {"k": null}]}\t',
]


@pytest.mark.parametrize("raw", PARSED, ids=range(len(PARSED)))
def test_bodies_parse_to_what_the_json_module_made_of_them(raw: bytes) -> None:
    parsed = _parse(Flask(__name__), raw)
    expected = _old_parse(raw)
    assert parsed == expected
    assert json.dumps(parsed, default=repr) == json.dumps(expected, default=repr)  # types too


def _old_detail(raw: bytes) -> str:
    try:
        _old_parse(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"Body is not valid JSON: {exc}"
    except RecursionError:
        return "Body is nested too deeply to be a command."
    raise AssertionError("the old parser accepted it")


REFUSED = [
    b"{not json",
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"a": 1,}',
    b'{"a": "\x01"}',
    b"\xff\xfe\x00",
    b'{"a": 1} trailing',
    b"[" * 1100 + b"]" * 1100,  # deeper than orjson's limit, shallow enough for json
    b"[" * 3000 + b"]" * 3000,
]


@pytest.mark.parametrize("raw", REFUSED, ids=range(len(REFUSED)))
def test_malformed_bodies_get_the_400_and_the_detail_they_got_before(raw: bytes) -> None:
    app = Flask(__name__)
    try:
        accepted = _parse(app, raw)
    except Problem as refused:
        assert refused.status == 400
        assert refused.detail == _old_detail(raw)
        assert refused.extensions == {"errors": {"_body": [refused.detail]}}
    else:
        # Only a body json accepted too, as something other than an object, may get here.
        assert accepted == _old_parse(raw)


@pytest.mark.parametrize("depth", [400, 1000])
def test_nesting_json_accepts_is_accepted_and_deeper_is_the_old_400(depth: int) -> None:
    # orjson parses 1000 levels, json does not: json's answer stands, and the float check
    # must not recurse into a RecursionError either.
    raw = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    app = Flask(__name__)
    try:
        expected = _old_parse(raw)
    except RecursionError:
        with pytest.raises(Problem) as refused:
            _parse(app, raw)
        assert refused.value.detail == "Body is nested too deeply to be a command."
    else:
        assert _parse(app, raw) == expected
