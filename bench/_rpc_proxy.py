"""A JSON-RPC proxy that forwards every call to a node and counts the calls by method.

Used to measure how often a gateway asks the chain for something (``eth_blockNumber`` polls),
by the benchmarks and by tests::

    with RecordingRpcProxy(anvil.rpc_url) as proxy:
        ...  # point the gateway at proxy.url
        proxy.counts["eth_blockNumber"]
"""

from __future__ import annotations

import collections
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["RecordingRpcProxy"]


class RecordingRpcProxy:
    """Forwards JSON-RPC POSTs (single or batch) to ``upstream`` and counts their methods.

    Args:
        upstream: The node's JSON-RPC URL.

    Attributes:
        url: The proxy's URL (``http://127.0.0.1:<port>``), valid between start and close.
        counts: Method name -> calls seen since the last :meth:`reset`.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        proxy = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy._record(body)
                request = urllib.request.Request(
                    proxy.upstream, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    payload = answer.read()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client went away
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, body: bytes) -> None:
        try:
            calls = json.loads(body)
        except ValueError:
            return
        with self._lock:
            for call in calls if isinstance(calls, list) else [calls]:
                if isinstance(call, dict):
                    self.counts[str(call.get("method"))] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts now.

        Returns:
            Method name -> calls since the last reset.
        """
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.counts.clear()

    def __enter__(self) -> RecordingRpcProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
