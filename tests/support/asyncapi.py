"""Checking AsyncAPI documents and Kafka records: against the vendored AsyncAPI 3.0.0
specification schema (asyncapi_spec/, pinned, with its licence), and each record against the
message of the document for its event type and schema version."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_FILE = Path(__file__).parent / "asyncapi_spec" / "asyncapi-3.0.0.json"
# Where the document is registered, so the messages' "#/components/..." refs resolve in it.
DOCUMENT_URI = "https://orders.invalid/asyncapi.json"


@cache
def _spec_validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SPEC_FILE.read_text()))


def spec_errors(document: Mapping[str, Any]) -> list[str]:
    """Where `document` breaks the AsyncAPI 3.0.0 specification schema (empty if nowhere)."""
    return [f"{e.json_path}: {e.message[:300]}" for e in _spec_validator().iter_errors(document)]


def unresolved_refs(document: Mapping[str, Any]) -> list[str]:
    """Every local $ref of `document` that points at nothing (the schema cannot check these)."""
    return [ref for ref in _refs(document) if not _resolves(document, ref)]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolves(document: Mapping[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class TopicContract:
    """The messages of an AsyncAPI document, as validators of Kafka records."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT7)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self.messages: dict[tuple[str, int], str] = {}
        for name, message in document["components"]["messages"].items():
            payload = message["payload"]["properties"]
            shape = (payload["type"]["const"], payload["schema_version"]["const"])
            self.messages[shape] = name

    def validator(self, pointer: str) -> Draft7Validator:
        """A validator for the schema at `pointer` in the document (#/components/...)."""
        schema = {"$ref": f"{DOCUMENT_URI}#{pointer}"}
        return Draft7Validator(schema, registry=self._registry)

    def record_errors(self, key: bytes, headers: Mapping[str, bytes], value: bytes) -> list[str]:
        """What is wrong with one Kafka record (empty if it is one of the document's messages)."""
        envelope = json.loads(value)
        name = self.messages.get((envelope.get("type"), envelope.get("schema_version")))
        if name is None:
            return [f"no message for {envelope.get('type')} v{envelope.get('schema_version')}"]
        message = f"/components/messages/{name}"
        text_headers = {header: raw.decode() for header, raw in headers.items()}
        errors = [
            f"{part}: {e.json_path}: {e.message}"
            for part, pointer, instance in (
                ("payload", f"{message}/payload", envelope),
                ("headers", f"{message}/headers", text_headers),
                ("key", f"{message}/bindings/kafka/key", key.decode()),
            )
            for e in self.validator(pointer).iter_errors(instance)
        ]
        # What JSON Schema cannot say: the identities the headers repeat.
        if not text_headers.get("ce_subject") == key.decode() == envelope["stream_id"]:
            errors.append("ce_subject, the key and stream_id differ")
        if text_headers.get("ce_id") != envelope["event_id"]:
            errors.append("ce_id is not the event_id")
        return errors
