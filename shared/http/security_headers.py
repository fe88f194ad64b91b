"""Response headers every answer of both services carries, errors and 404s included.

`X-Content-Type-Options: nosniff` everywhere. `Cache-Control: no-store` on everything but the
few public, non-personal documents: orders, accounts and balances must not linger in a shared
cache or a browser's history, and listing what is safe is safer than listing what is not.
`Content-Security-Policy`: an API answer may load nothing at all; the /docs page may load its
own scripts, styles and images from the service itself, and nothing from anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, request

CACHEABLE_PATHS = frozenset({"/openapi.json", "/docs", "/healthz"})
# The vendored Swagger UI files (shared/http/api_docs.py) are public and versioned.
CACHEABLE_PREFIXES = ("/docs/static/",)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI sets style attributes and draws some icons as data: URLs; it fetches the
# document and "try it out" requests from the same origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)


def install_security_headers(app: Flask, cacheable: Iterable[str] = CACHEABLE_PATHS) -> None:
    """Add the headers to every response `app` sends (see the module docstring)."""
    may_cache = frozenset(cacheable)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path not in may_cache and not request.path.startswith(CACHEABLE_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", _csp_for(request.path))
        return response


def _csp_for(path: str) -> str:
    return DOCS_CSP if path == "/docs" or path.startswith("/docs/") else API_CSP
