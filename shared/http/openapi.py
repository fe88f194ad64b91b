"""Building the OpenAPI 3.1 documents of both services with apispec, from marshmallow schemas.

What both services share lives here: the headers every response carries, and small builders
for parameters, responses, operations and the health paths (the Problem and Health schemas
they refer to are in response_schemas.py). Each service's own openapi module (in its http
package) lists its operations with them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields

from shared.http.errors import PROBLEM_CONTENT_TYPE
from shared.http.response_schemas import HealthSchema, ProblemSchema

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"

CORRELATION_HEADER = {
    "description": "The request's X-Correlation-ID (or X-Request-ID) if it was usable, else a "
    "new UUID; stored in the metadata of the events the request caused.",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:/+=-]{1,128}$"},
}
CORRELATION_PARAMETER = {
    "name": "X-Correlation-ID",
    "in": "header",
    "required": False,
    "description": "Traces the request (X-Request-ID is read too). Up to 128 of "
    "A-Za-z0-9._:/+=- is kept; anything else is replaced by a generated id, never rejected.",
    "schema": {"type": "string"},
}
TRACEPARENT_HEADER = {
    "description": "W3C Trace Context of the server's span for this request: the caller's "
    "trace continued, or a new one; the events the request caused store it.",
    "required": True,
    "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
}
TRACEPARENT_PARAMETER = {
    "name": "traceparent",
    "in": "header",
    "required": False,
    "description": "W3C Trace Context of the caller's span; the request continues its trace. "
    "An invalid value is ignored (a new trace is started), never rejected.",
    "schema": {"type": "string"},
}


# Gunicorn refuses these before the application sees the request, with its own HTML page (and
# no X-Correlation-ID); any operation can get them.
HTTP_SERVER_ERRORS = {
    "RequestLineTooLong": {
        "description": "The request line (method, path and query) is over 4094 bytes; "
        "answered by the HTTP server as text/html.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    "HeadersTooLarge": {
        "description": "A header is over 8190 bytes, or there are over 100 headers; answered "
        "by the HTTP server as text/html.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}
HTTP_SERVER_STATUSES = {414: "RequestLineTooLong", 431: "HeadersTooLarge"}
# How both services answer errors; part of each document's description.
ERROR_CONVENTIONS = (
    "Errors are application/problem+json (RFC 9457); an unknown route is a 404 and a wrong "
    "method a 405 (with Allow). Only the HTTP server's own refusals of an over-long request "
    "line (414) or headers (431) are text/html."
)
ETAG_SCHEMA = {"type": "string", "pattern": r'^"[0-9]+"$'}


def new_spec(title: str, about: str, *notes: str) -> APISpec:
    """An empty document with the Problem schema and the shared headers registered; its
    description is `about`, then ERROR_CONVENTIONS, then `notes`."""
    spec = APISpec(
        title=title,
        version=_package_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": " ".join([about, ERROR_CONVENTIONS, *notes])},
    )
    _add_field_attributes(spec, _ecma_pattern)
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.schema("Health", schema=HealthSchema)
    for name, response in HTTP_SERVER_ERRORS.items():
        spec.components.response(name, response)
    spec.components.header("X-Correlation-ID", CORRELATION_HEADER)
    spec.components.parameter("X-Correlation-ID", "header", CORRELATION_PARAMETER)
    spec.components.header("traceparent", TRACEPARENT_HEADER)
    spec.components.parameter("traceparent", "header", TRACEPARENT_PARAMETER)
    return spec


def register_schemas(spec: APISpec, schemas: Mapping[str, type[Schema]]) -> None:
    """Register response schemas under their component names."""
    for name, schema in schemas.items():
        spec.components.schema(name, schema=schema)


def query_parameters(spec: APISpec, schema: type[Schema]) -> list[dict[str, Any]]:
    """One query parameter per field of a marshmallow query-string schema."""
    parameters: list[dict[str, Any]] = _converter(spec).schema2parameters(schema, location="query")
    return parameters


def describe_custom_fields(spec: APISpec, shapes: Mapping[type[fields.Field[Any]], Any]) -> None:
    """Give custom marshmallow fields, which apispec cannot know, their JSON Schema shape: a
    mapping, or a function of the field for shapes that depend on its arguments (bounds)."""

    def custom_field_shape(
        self: OpenAPIConverter, field: fields.Field[Any], **kwargs: Any
    ) -> dict[str, Any]:
        shape = next((s for cls, s in shapes.items() if isinstance(field, cls)), None)
        if callable(shape):
            shape = shape(field)
        return dict(shape) if shape is not None else {}

    _add_field_attributes(spec, custom_field_shape)


def path_parameter(name: str, pattern: str, description: str, example: str) -> dict[str, Any]:
    """A required string path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
        "example": example,
    }


def id_parameter(name: str, pattern: str, what: str, example: str) -> dict[str, Any]:
    """A required path parameter naming a resource by its id ("The order's id.")."""
    return path_parameter(name, pattern, f"The {what}'s id.", example)


def parameter(
    name: str, location: str, description: str, schema: Mapping[str, Any]
) -> dict[str, Any]:
    """An optional query or header parameter."""
    return {
        "name": name,
        "in": location,
        "required": False,
        "description": description,
        "schema": dict(schema),
    }


def header(description: str, schema: Mapping[str, Any], required: bool = False) -> dict[str, Any]:
    """A response header object."""
    return {"description": description, "required": required, "schema": dict(schema)}


def etag_header(description: str) -> dict[str, Any]:
    """The required ETag response header: a version as a quoted integer."""
    return header(description, ETAG_SCHEMA, required=True)


def success(
    description: str, schema: str, headers: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A JSON success response with a registered schema, plus X-Correlation-ID."""
    return {
        "description": description,
        "headers": _with_correlation(headers),
        "content": {JSON: {"schema": schema}},
    }


def problem(
    description: str, headers: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """An application/problem+json error response."""
    return {
        "description": description,
        "headers": _with_correlation(headers),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": "Problem"}},
    }


RETRY_AFTER = header("Seconds to wait before retrying.", {"type": "string", "pattern": "^[0-9]+$"})


def unavailable(what: str) -> dict[str, Any]:
    """503: a database cannot answer; nothing happened, retry after Retry-After."""
    return problem(f"{what} Retry after Retry-After seconds.", {"Retry-After": RETRY_AFTER})


def add_operation(
    spec: APISpec,
    method: str,
    path: str,
    operation_id: str,
    summary: str,
    tag: str,
    responses: Mapping[int, Mapping[str, Any]],
    parameters: Iterable[Mapping[str, Any]] = (),
    request_body: Mapping[str, Any] | None = None,
) -> None:
    """Add one operation at `path`, its responses in status order, with the optional
    X-Correlation-ID header and the HTTP server's own refusals that every operation has."""
    # Deep copies: apispec resolves references in place, and the parts are shared.
    parameters = copy.deepcopy(list(parameters))
    responses = copy.deepcopy(dict(sorted(responses.items())))
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [*parameters, "X-Correlation-ID", "traceparent"],  # names become $refs
        "responses": {
            **{str(status): response for status, response in responses.items()},
            **{str(status): name for status, name in HTTP_SERVER_STATUSES.items()},
        },
    }
    if request_body is not None:
        operation["requestBody"] = copy.deepcopy(dict(request_body))
    spec.path(path, operations={method: operation})


def add_health_paths(spec: APISpec, ready_schema: str, unready: str) -> None:
    """GET /healthz (the process answers) and GET /readyz (200 with `ready_schema`, else 503)."""
    alive = {200: success("Alive.", "Health")}
    add_operation(spec, "get", "/healthz", "health", "Liveness", "health", alive)
    readiness = {200: success("Ready.", ready_schema), 503: problem(unready)}
    add_operation(spec, "get", "/readyz", "ready", "Readiness", "health", readiness)


def json_body(schema: str, description: str, required: bool = True) -> dict[str, Any]:
    """A request body of Content-Type application/json with a registered schema."""
    return {
        "description": description,
        "required": required,
        "content": {JSON: {"schema": schema}},
    }


def _with_correlation(
    headers: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, Any]:
    return {
        **{name: dict(value) for name, value in (headers or {}).items()},
        "X-Correlation-ID": "X-Correlation-ID",  # a $ref to the registered header
        "traceparent": "traceparent",
    }


def _ecma_pattern(
    self: OpenAPIConverter, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    # JSON Schema patterns are ECMA 262, where Python's \Z (end of string, which the request
    # schemas use because $ also matches before a final newline) is spelled $.
    pattern = ret.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("\\Z"):
        return {"pattern": pattern[:-2] + "$"}
    return {}


def _add_field_attributes(spec: APISpec, function: Callable[..., dict[str, Any]]) -> None:
    """Run `function(converter, field, ret=...)` on every field after apispec's own rules."""
    _converter(spec).add_attribute_function(function)  # type: ignore[no-untyped-call]


def _converter(spec: APISpec) -> OpenAPIConverter:
    plugin = next(p for p in spec.plugins if isinstance(p, MarshmallowPlugin))
    assert plugin.converter is not None  # set when the plugin joined the spec
    return plugin.converter


def _package_version() -> str:
    try:
        return metadata.version("event-sourced-orders")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0"
