"""Command bodies too deeply nested to parse are the client's error (400), never a 500."""

from __future__ import annotations

import pytest
from flask import Flask

from command_service.http.idempotency import request_fingerprint
from command_service.http.json_body import read_json_body
from shared.http.errors import Problem

# 6 KB: under any body limit, but deeper than Python's JSON parser can recurse.
DEEP_BODIES = ["[" * 3000 + "]" * 3000, '{"customer_id": ' + "[" * 3000 + "]" * 3000 + "}"]


@pytest.mark.parametrize("body", DEEP_BODIES)
def test_a_deeply_nested_body_is_a_400_naming_the_body(body: str) -> None:
    app = Flask(__name__)
    with (
        app.test_request_context(
            "/orders", method="POST", data=body, content_type="application/json"
        ),
        pytest.raises(Problem) as refused,
    ):
        read_json_body()
    assert refused.value.status == 400
    assert refused.value.slug == "malformed-json"
    assert "nested too deeply" in refused.value.detail
    assert "_body" in refused.value.extensions["errors"]


@pytest.mark.parametrize("body", DEEP_BODIES)
def test_an_idempotency_fingerprint_of_such_a_body_compares_its_bytes(body: str) -> None:
    # Computed before the body is parsed: it must not raise, and the same bytes match.
    fingerprint = request_fingerprint("POST", "/orders", body.encode())
    assert fingerprint == request_fingerprint("POST", "/orders", body.encode())
    assert fingerprint != request_fingerprint("POST", "/orders", (body + " ").encode())


def test_other_malformed_bodies_name_the_body_too() -> None:
    app = Flask(__name__)
    for body in ("{not json", "[1, 2]", '{"x": NaN}'):
        with (
            app.test_request_context(
                "/orders", method="POST", data=body, content_type="application/json"
            ),
            pytest.raises(Problem) as refused,
        ):
            read_json_body()
        assert refused.value.status == 400
        assert "_body" in refused.value.extensions["errors"]
