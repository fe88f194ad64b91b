"""Serving a service's OpenAPI document at /openapi.json and an interactive page at /docs.

The page is Swagger UI, vendored in static/swagger-ui (pinned, with its licence) and served by
the service itself, so it works on a machine without internet access.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, send_from_directory

from shared.http.auth import public

SWAGGER_UI_DIR = Path(__file__).parent / "static" / "swagger-ui"
# Relative to /docs, so the page also works behind a path prefix.
ASSETS = "docs/static"
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="{assets}/favicon-32x32.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript>The interactive page needs JavaScript; the document is at
    <a href="openapi.json">openapi.json</a>.</noscript>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/docs.js"></script>
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
        page = DOCS_PAGE.format(title=html.escape(title), assets=ASSETS)
        return Response(page, mimetype="text/html")

    @docs.get("/docs/static/<path:filename>")
    @public
    def docs_asset(filename: str) -> Response:
        # send_from_directory refuses paths that leave the folder (404).
        return send_from_directory(SWAGGER_UI_DIR, filename, max_age=3600)

    return docs
