"""Response headers every answer of both services carries, errors and 404s included.

`X-Content-Type-Options: nosniff` everywhere. `Cache-Control: no-store` on everything but the
few public, non-personal documents: orders, accounts and balances must not linger in a shared
cache or a browser's history, and listing what is safe is safer than listing what is not.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, request

CACHEABLE_PATHS = frozenset({"/openapi.json", "/docs", "/healthz"})


def install_security_headers(app: Flask, cacheable: Iterable[str] = CACHEABLE_PATHS) -> None:
    """Add the headers to every response `app` sends (see the module docstring)."""
    may_cache = frozenset(cacheable)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path not in may_cache:
            response.headers["Cache-Control"] = "no-store"
        return response
