"""A tiny HTTP gateway on 127.0.0.1 in front of a real service, failing on purpose: it answers
503, or forwards a request and then drops the connection without answering (the command was
applied, the client never heard), as scripted; everything else it forwards untouched.

Only the transport is faked: the service behind it, and its event log, are the real ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import requests

Fault = Literal["503", "drop-after-forward"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Seen:
    """One request the gateway received."""

    method: str
    path: str
    idempotency_key: str | None


class FlakyGateway:
    """Forwards to `upstream`; the next requests meet the queued faults, one each."""

    def __init__(self, upstream: str, retry_after: str | None = "1") -> None:
        self.upstream = upstream.rstrip("/")
        self.retry_after = retry_after
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, *faults: Fault) -> None:
        """The next len(faults) requests meet these faults, in order."""
        with self._lock:
            self._faults.extend(faults)

    def keys_seen(self) -> list[str | None]:
        """The Idempotency-Key of every request received, in order."""
        with self._lock:
            return [s.idempotency_key for s in self.seen]

    def _next_fault(self, seen: Seen) -> Fault | None:
        with self._lock:
            self.seen.append(seen)
            return self._faults.pop(0) if self._faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, self.headers.get("Idempotency-Key"))
                fault = gateway._next_fault(seen)
                if fault == "503":
                    self._answer_503()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = requests.request(
                    self.command,
                    gateway.upstream + self.path,
                    data=body,
                    headers=headers,
                    timeout=30,
                )
                if fault == "drop-after-forward":
                    self.close_connection = True
                    return  # applied upstream; the client gets no answer at all
                self.send_response(upstream.status_code)
                for name, value in upstream.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def _answer_503(self) -> None:
                problem = {
                    "type": "urn:event-sourced-orders:problem:event-store-unavailable",
                    "title": "Event store unavailable",
                    "status": 503,
                    "detail": "The gateway's scripted outage; nothing was forwarded.",
                }
                content = json.dumps(problem).encode()
                self.send_response(503)
                self.send_header("Content-Type", "application/problem+json")
                if gateway.retry_after is not None:
                    self.send_header("Retry-After", gateway.retry_after)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads `seen`, not stderr

        return Handler

    def __enter__(self) -> FlakyGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@contextmanager
def flaky_gateway(upstream: str, retry_after: str | None = "1") -> Iterator[FlakyGateway]:
    """A running FlakyGateway in front of `upstream`, stopped afterwards."""
    with FlakyGateway(upstream, retry_after) as gateway:
        yield gateway
