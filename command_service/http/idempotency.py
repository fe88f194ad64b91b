"""Idempotency-Key on command requests: the first response is stored with the command's events
(one transaction) and replayed for a retry with the same key and request.

The record is written inside the append, under the event log's write lock, so a key can never
be recorded without its events or the events without the key; two concurrent requests with the
same key cannot both write (the second sees the key under the lock and replays instead).
Only commands that wrote events are stored: a refused command leaves no trace, so retrying it
runs it again. The key with another request is a 409 (idempotency-key-reused). Keys expire
after IDEMPOTENCY_KEY_TTL_SECONDS. A key is the caller's own (its token's `sub`): two callers
sending the same key never see each other's response.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStoreUnavailable
from command_service.adapters.idempotency_store import IdempotencyKeys, StoredResponse, scoped_key
from shared.http.auth import current_principal
from shared.http.errors import Problem

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
REPLAYED_HEADERS = ("Location", "ETag")


@dataclass(frozen=True)
class IdempotencyClaim:
    """Records one command's rendered response under its caller's key, inside the append."""

    keys: IdempotencyKeys
    key: str  # scoped_key(sub, header value)
    fingerprint: str
    render: Callable[[Any], Response]

    def before(self, conn: Connection) -> None:
        """Refuse to write if the key was recorded meanwhile; clear its expired record."""
        self.keys.claim(conn, self.key)

    def record(self, conn: Connection, result: Any) -> None:
        """Store the response the command's result renders to."""
        response = self.render(result)
        headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
        stored = StoredResponse(
            self.fingerprint, response.status_code, response.get_json(), headers
        )
        self.keys.record(conn, self.key, stored)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """A hash of what the request asks for; JSON bodies are compared by content, not spacing."""
    try:
        content: Any = json.loads(body, parse_float=Decimal) if body else None
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    except (ValueError, RecursionError):
        # Not JSON we can canonicalise (a deeply nested body too): compare the bytes; the
        # route's body parser then refuses it with a 400.
        canonical = body.decode("latin-1")
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Give a command endpoint Idempotency-Key support (see the module docstring)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not KEY_PATTERN.fullmatch(key):
            raise Problem(
                400,
                "invalid-header",
                "Invalid header",
                f"{HEADER} must be 1 to 255 printable ASCII characters without spaces, "
                "e.g. a UUID.",
                {"errors": {HEADER: ["Must be 1 to 255 printable ASCII characters."]}},
            )
        keys: IdempotencyKeys = current_app.extensions["idempotency_keys"]
        fingerprint = request_fingerprint(request.method, request.path, request.get_data())
        owned = scoped_key(current_principal().sub, key)
        stored = keys.lookup(owned)
        if stored is not None:
            return _replay(key, stored, fingerprint)
        g.idempotency_claim = (keys, owned, fingerprint)
        try:
            return view(*args, **kwargs)
        except Exception:
            # A concurrent request with the same key may have won meanwhile: then this one's
            # refusal (a conflict, "already paid") is not the answer; the first response is.
            stored = _lookup_quietly(keys, owned)
            if stored is not None:
                return _replay(key, stored, fingerprint)
            raise

    return wrapper


def recorder_for(render: Callable[[Any], Response]) -> IdempotencyClaim | None:
    """The claim of the current request, if it carries an Idempotency-Key."""
    claim = g.get("idempotency_claim")
    if claim is None:
        return None
    keys, key, fingerprint = claim
    return IdempotencyClaim(keys, key, fingerprint, render)


def _lookup_quietly(keys: IdempotencyKeys, key: str) -> StoredResponse | None:
    try:
        return keys.lookup(key)
    except (SQLAlchemyError, EventStoreUnavailable):
        return None  # the database is the problem; let the original error answer


def _replay(key: str, stored: StoredResponse, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        # 409, not 422: the request is valid in itself and clashes only with what the server
        # stored for the key (state), so 422 stays "this request is invalid", whatever was sent
        # before; the OpenAPI document says so, and schemathesis can check 422 strictly.
        raise Problem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            f"{HEADER} {key[:100]!r} was first used for a different request; use a new key "
            "for a new request, or resend exactly the first request to get its response.",
            {"errors": {HEADER: ["Already used for a different request."]}},
        )
    return _replayed(stored)


def _replayed(stored: StoredResponse) -> Response:
    """The stored response, marked as a replay."""
    response = Response(json.dumps(stored.body), stored.status, mimetype="application/json")
    response.headers.update(stored.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response
