"""An OTLP/HTTP receiver that only counts what it is sent: the far end of a traced service.

Measuring what tracing costs the service needs somewhere for its spans to go; a collector
or Phoenix would take CPU of its own from the same two cores, and the tests
(tests/system/test_tracing.py) already check the spans against Phoenix. This answers every
``POST /v1/traces`` with an empty ``ExportTraceServiceResponse`` (an empty protobuf message,
zero bytes) and counts requests and bytes. Written by hand: a thread of the bench process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.lock = threading.Lock()


class OtlpSink:
    """A running sink: its URL (``OTEL_EXPORTER_OTLP_ENDPOINT``) and what it received."""

    def __init__(self, server: ThreadingHTTPServer, counts: _Counts) -> None:
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._counts = counts

    @property
    def requests(self) -> int:
        return self._counts.requests

    @property
    def bytes(self) -> int:
        return self._counts.bytes


@contextlib.contextmanager
def running_otlp_sink() -> Iterator[OtlpSink]:
    """Serve a sink on a free loopback port for the ``with`` block."""
    counts = _Counts()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(size)
            with counts.lock:
                counts.requests += 1
                counts.bytes += size
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: one line per export would drown the bench's own output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield OtlpSink(server, counts)
    finally:
        server.shutdown()
        server.server_close()
