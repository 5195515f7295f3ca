"""A loopback proxy in front of moto's server that makes an AWS JSON API (DynamoDB) fail, or stall, on chosen
operations.

Every request is forwarded unchanged, except that an operation with a planned fault (``X-Amz-Target``, e.g.
``DynamoDB_20120810.TransactWriteItems``) is answered by the proxy itself, as the service answers: a throttling
400 (which botocore retries) or a 500. A lost answer is a request that moto carries out and whose answer the proxy
replaces with a 500, as a read timeout would leave it: botocore retries a call that has already landed. boto3 is
not mocked: the code under test reaches the proxy through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

THROTTLED = (
    400,
    "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "Rate of requests exceeds the allowed throughput.",
)
UNAVAILABLE = (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error")


def send_upstream(
    handler: BaseHTTPRequestHandler, upstream: tuple[str, int], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send ``handler``'s request, with ``body``, to moto at ``upstream``: its answer's status, headers and body."""
    headers = {name: value for name, value in handler.headers.items() if name.lower() != "content-length"}
    headers["Content-Length"] = str(len(body))
    connection = http.client.HTTPConnection(*upstream, timeout=30)
    try:
        connection.request(handler.command, handler.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def forward(handler: BaseHTTPRequestHandler, upstream: tuple[str, int], body: bytes) -> None:
    """Send ``handler``'s request, with ``body``, to moto at ``upstream``, and its answer back to the client."""
    status, headers, data = send_upstream(handler, upstream, body)
    handler.send_response(status)
    for name, value in headers:
        if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@dataclass
class Gate:
    """Calls held after the first ``after``: let through once ``open``, or answered with a fault once ``refuse``."""

    after: int
    opened: threading.Event = field(default_factory=threading.Event)
    refusal: tuple[int, str, str] | None = None

    def open(self) -> None:
        self.opened.set()

    def refuse(self, fault: tuple[int, str, str]) -> None:
        self.refusal = fault
        self.opened.set()


@dataclass
class _Plan:
    status: int
    error_type: str
    message: str
    remaining: int | None  # None: every time
    skip: int = 0  # calls let through before the first fault
    carried_out: bool = False  # the request reaches moto first: only its answer is lost


class AwsFaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._stalls: dict[str, float] = {}
        self._holds: dict[str, Gate] = {}
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1]
                fault = proxy._take(operation)
                with proxy._lock:
                    stall_s = proxy._stalls.get(operation, 0.0)
                    hold = proxy._holds.get(operation)
                if hold is not None and proxy.calls[operation] > hold.after:
                    hold.opened.wait()
                    if hold.refusal is not None:
                        fault = _Plan(*hold.refusal, remaining=None)
                if stall_s:
                    time.sleep(stall_s)
                if fault is not None:
                    if fault.carried_out:
                        send_upstream(self, proxy._upstream, body)
                    self._answer(fault.status, {"__type": fault.error_type, "message": fault.message})
                    return
                self._forward(body)

            def do_GET(self) -> None:
                self._forward(b"")

            def _answer(self, status: int, document: dict[str, str]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body: bytes) -> None:
                forward(self, proxy._upstream, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _take(self, operation: str) -> _Plan | None:
        with self._lock:
            self.calls[operation] += 1
            plan = self._plans.get(operation)
            if plan is None or plan.remaining == 0:
                return None
            if plan.skip:
                plan.skip -= 1
                return None
            if plan.remaining is not None:
                plan.remaining -= 1
            self.faults[operation] += 1
            return plan

    def fail(self, operation: str, fault: tuple[int, str, str], times: int | None = None, *, after: int = 0) -> None:
        """Answer ``operation`` with ``fault`` the next ``times`` times (None: until ``heal``), once ``after`` calls
        of it have gone through."""
        with self._lock:
            self._plans[operation] = _Plan(*fault, remaining=times, skip=after)

    def lose_answers(self, operation: str, times: int = 1, *, after: int = 0) -> None:
        """Carry out the next ``times`` calls of ``operation`` (once ``after`` have gone through), and answer each
        with a retryable 500 instead of moto's answer."""
        with self._lock:
            self._plans[operation] = _Plan(*UNAVAILABLE, remaining=times, skip=after, carried_out=True)

    def stall(self, operation: str, seconds: float) -> None:
        """Hold every call of ``operation`` for ``seconds`` before answering it (until ``heal``)."""
        with self._lock:
            self._stalls[operation] = seconds

    def hold(self, operation: str, *, after: int) -> Gate:
        """Hold every call of ``operation`` after the first ``after`` until the returned gate is opened or refuses:
        the caller is then caught mid-way, for as long as the test needs, whatever the machine's speed."""
        gate = Gate(after)
        with self._lock:
            self._holds[operation] = gate
        return gate

    def heal(self) -> None:
        with self._lock:
            self._plans.clear()
            self._stalls.clear()
            for gate in self._holds.values():
                gate.opened.set()
            self._holds.clear()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AwsFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.heal()
        self._server.shutdown()
        self._server.server_close()
