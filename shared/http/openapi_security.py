"""The OpenAPI document states the policy every route enforces: read from the routes themselves.

So the document cannot drift from the code: a scope policy becomes `security` with its scopes
and the 401/403 responses; a public route gets `security: []`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from shared.contract.principal import SCOPES
from shared.http.auth import policy_of
from shared.http.errors import PROBLEM_CONTENT_TYPE

SCHEME = "bearerAuth"
_FLASK_PARAMETER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]\w*)>")
_PROBLEM = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "RFC 6750 challenge: Bearer, with error= when a token was refused.",
        "schema": {"type": "string"},
    },
    "X-Correlation-ID": {"$ref": "#/components/headers/X-Correlation-ID"},
    "traceparent": {"$ref": "#/components/headers/traceparent"},
}


def with_security(document: dict[str, Any], app: Flask) -> dict[str, Any]:
    """`document` with the bearer scheme and each operation's policy from `app`'s routes."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An RFC 6750 bearer token (a JWT, ES256 or RS256). Scopes: "
            + ", ".join(SCOPES)
            + "; admin holds them all. An operation lists the scopes of which one is needed."
        ),
    }
    paths = document.get("paths", {})
    for rule in app.url_map.iter_rules():
        policy = policy_of(app.view_functions.get(rule.endpoint))
        operations = paths.get(_FLASK_PARAMETER.sub(r"{\1}", rule.rule))
        if policy is None or operations is None:
            continue
        for method in rule.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            if policy.public:
                operation["security"] = []
                continue
            operation["security"] = [{SCHEME: sorted(policy.scopes)}]
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "401",
                {
                    "description": "No bearer token, or one that is not accepted.",
                    "headers": _CHALLENGE,
                    "content": _PROBLEM,
                },
            )
            responses.setdefault(
                "403",
                {
                    "description": "The token lacks a scope this needs.",
                    "headers": _CHALLENGE,
                    "content": _PROBLEM,
                },
            )
    return document
