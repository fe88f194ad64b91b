"""Serving a service's OpenAPI document at /openapi.json and an interactive page at /docs.

The page is Swagger UI loaded from a public CDN, so the browser showing it needs internet
access; the document itself is built in-process and needs nothing.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from shared.http.auth import public

SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{cdn}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript>The interactive page needs JavaScript; the document is at
    <a href="openapi.json">openapi.json</a>.</noscript>
  <script src="{cdn}/swagger-ui-bundle.js" crossorigin></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""


def api_docs(build_document: Callable[[], dict[str, Any]], title: str) -> Blueprint:
    """A blueprint serving the document `build_document` makes (built once, on first use)."""
    docs = Blueprint("api_docs", __name__)
    document = functools.cache(build_document)

    @docs.get("/openapi.json")
    @public
    def openapi_json() -> Response:
        return jsonify(document())

    @docs.get("/docs")
    @public
    def docs_page() -> Response:
        page = DOCS_PAGE.format(title=html.escape(title), cdn=SWAGGER_UI)
        return Response(page, mimetype="text/html")

    return docs
