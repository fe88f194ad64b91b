"""GET /asyncapi.json: the AsyncAPI 3.0 document of the topic, public like /openapi.json."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, jsonify

from command_service.outbox.asyncapi import asyncapi_document
from shared.http.auth import public
from shared.infra.config import Settings


def asyncapi_docs(settings: Settings) -> Blueprint:
    """A blueprint serving the document for this deployment's topic and brokers."""
    docs = Blueprint("asyncapi", __name__)
    document = functools.cache(lambda: asyncapi_document(settings))

    @docs.get("/asyncapi.json")
    @public
    def asyncapi_json() -> Response:
        return jsonify(document())

    return docs
