"""A loopback proxy in front of moto's server that makes SQS itself reject chosen SendMessageBatch entries.

moto accepts every well-formed batch entry; the one per-entry failure it reports is an invalid
``DelaySeconds``. The proxy forwards every request unchanged, except that in a ``SendMessageBatch`` it sets
``DelaySeconds`` to 901 on the entries whose body names a marked parser run id. moto then answers as SQS does:
HTTP 200 with those entries under ``Failed`` (``SenderFault``, ``InvalidParameterValue``) and the others
really enqueued. boto3 is not mocked: the handler reaches the proxy through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support.aws_fault_proxy import forward

INVALID_DELAY_S = 901  # SQS allows 0..900


class SqsFaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._failures: dict[str, int | None] = {}
        self.rejected_entries: Counter[str] = Counter()
        self.batch_calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("X-Amz-Target") == "AmazonSQS.SendMessageBatch":
                    body = proxy._rewrite_batch(body)
                forward(self, proxy._upstream, body)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reject(self, parser_run_id: str, times: int | None = None) -> None:
        """Make SQS reject the entry naming ``parser_run_id``: the next ``times`` times, or always (None)."""
        with self._lock:
            self._failures[parser_run_id] = times

    def _rewrite_batch(self, body: bytes) -> bytes:
        document = json.loads(body)
        with self._lock:
            self.batch_calls += 1
            for entry in document.get("Entries", []):
                parser_run_id = json.loads(entry["MessageBody"]).get("parserRunId")
                if parser_run_id not in self._failures:
                    continue
                remaining = self._failures[parser_run_id]
                if remaining == 0:
                    continue
                if remaining is not None:
                    self._failures[parser_run_id] = remaining - 1
                entry["DelaySeconds"] = INVALID_DELAY_S
                self.rejected_entries[parser_run_id] += 1
        return json.dumps(document).encode()

    def __enter__(self) -> SqsFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
