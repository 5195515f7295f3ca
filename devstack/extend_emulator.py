"""A real HTTP server on loopback that behaves like Extend's deletion endpoints for every deletable resource (parse
or parser runs, extract, classify, split, edit, workflow and processor runs, files), both API versions, with faults
injectable per id or at random (``ExtendEmulator``, ``Fault``).

Its routes, the choices made where Extend's docs are silent, the order in which a request is evaluated, the
faults and what is recorded are specified in ``extend_emulator.md``, beside this file.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import random
import socket
import string
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote

__all__ = [
    "API_VERSION_2025",
    "API_VERSION_2026",
    "DEFAULT_WORKSPACE_ID",
    "SUPPORTED_API_VERSIONS",
    "ExtendEmulator",
    "Fault",
    "ProcessingDelete",
    "RecordedRequest",
]

API_VERSION_2025 = "2025-04-21"
API_VERSION_2026 = "2026-02-09"
SUPPORTED_API_VERSIONS = (API_VERSION_2025, API_VERSION_2026)
DEFAULT_WORKSPACE_ID = "ws_default"

_DELETED_MESSAGE = "Parser run data has been successfully deleted."
_PROCESSOR_RUN_DELETED_MESSAGE = "Processor run data has been successfully deleted."
_STILL_PROCESSING_MESSAGE = "cannot delete a run that is still processing; cancel it first"
# A run in one of these states is still being worked on: it can be cancelled (and, with processing_delete="refuse",
# must be before it is deleted).
_IN_PROGRESS = frozenset({"PENDING", "PROCESSING"})

ProcessingDelete = Literal["allow", "refuse"]


@dataclass(frozen=True)
class _Kind:
    """One deletable resource type; ``name`` is its canonical resource name (``seed(resource=...)``)."""

    name: str
    noun: str  # in error messages: "File 'x' not found."
    object_2026: str  # the "object" field of its 2026-02-09 body
    object_2025: str  # the same under 2025-04-21
    envelope_2025: str  # the key wrapping it in a 2025-04-21 GET body
    is_run: bool
    cancellable: bool
    noun_2025: str | None = None  # when 2025-04-21 names it differently


_KINDS: dict[str, _Kind] = {
    kind.name: kind
    for kind in (
        _Kind("parse_runs", "Parse run", "parse_run", "parser_run", "parserRun", True, True, noun_2025="Parser run"),
        _Kind("extract_runs", "Extract run", "extract_run", "extract_run", "extractRun", True, True),
        _Kind("classify_runs", "Classify run", "classify_run", "classify_run", "classifyRun", True, True),
        _Kind("split_runs", "Split run", "split_run", "split_run", "splitRun", True, True),
        _Kind("edit_runs", "Edit run", "edit_run", "edit_run", "editRun", True, False),
        _Kind("workflow_runs", "Workflow run", "workflow_run", "workflow_run", "workflowRun", True, True),
        _Kind(
            "processor_runs",
            "Processor run",
            "document_processor_run",
            "document_processor_run",
            "processorRun",
            True,
            True,
        ),
        _Kind("files", "File", "file", "file", "file", False, False),
    )
}
# seed(resource=...) accepts either name of the parse run, which is one resource whose path depends on the version.
_RESOURCE_ALIASES = {"parser_runs": "parse_runs"}

# Per version: the path's resource segment -> the kind it serves.
_ROUTES: dict[str, dict[str, str]] = {
    API_VERSION_2025: {
        "parser_runs": "parse_runs",
        "processor_runs": "processor_runs",
        "workflow_runs": "workflow_runs",
        "files": "files",
    },
    API_VERSION_2026: {
        "parse_runs": "parse_runs",
        "extract_runs": "extract_runs",
        "classify_runs": "classify_runs",
        "split_runs": "split_runs",
        "edit_runs": "edit_runs",
        "workflow_runs": "workflow_runs",
        "files": "files",
    },
}
# Segments removed in 2026-02-09 -> the segment that replaces them (named in the 410's message).
_REMOVED_2026 = {"parser_runs": "parse_runs", "processor_runs": "extract_runs"}
_KNOWN_SEGMENTS = frozenset(segment for routes in _ROUTES.values() for segment in routes)
_REQUEST_ID_ALPHABET = string.ascii_letters + string.digits

_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "The request is invalid."),
    401: ("UNAUTHORIZED", "Invalid or missing API key."),
    402: ("USAGE_BLOCKED", "Insufficient credits."),
    403: ("FORBIDDEN", "You do not have permission to access this resource."),
    404: ("NOT_FOUND", "The requested resource was not found."),
    408: ("REQUEST_TIMEOUT", "The request timed out."),
    409: ("CONFLICT", "The request conflicts with the current state of the resource."),
    410: ("ENDPOINT_REMOVED", "This endpoint has been removed."),
    422: ("UNPROCESSABLE_ENTITY", "The request could not be processed."),
    429: ("RATE_LIMIT_EXCEEDED", "Too many requests. Back off and retry."),
    500: ("INTERNAL_ERROR", "An internal error occurred. Please retry."),
    502: ("BAD_GATEWAY", "Bad gateway. Please retry."),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable. Please retry."),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout. Please retry."),
}

FaultKind = Literal[
    "status", "error", "rate_limited", "reset", "answer_lost", "latency", "stall", "non_json", "json", "redirect"
]


def _default_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _code_for(status: int) -> tuple[str, str]:
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    if status >= 500:
        return _STATUS_CODES[500]
    return _STATUS_CODES[400]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build it with the class methods, not the constructor."""

    kind: FaultKind
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    retryable: bool | None = None
    retry_after: int | None = None
    retry_after_http_date: bool = False
    seconds: float = 0.0
    document: str | None = None  # the JSON body of a ``json`` fault
    with_request_id: bool = True
    location: str | None = None  # where a ``redirect`` points

    @classmethod
    def status(cls, http_status: int) -> Fault:
        """An error JSON with the usual code for ``http_status`` (see the module docstring)."""
        if not 400 <= http_status <= 599:
            raise ValueError(f"a fault status must be 4xx or 5xx, got {http_status}")
        return cls("status", http_status=http_status)

    @classmethod
    def error(cls, http_status: int, code: str, message: str | None = None, *, retryable: bool = False) -> Fault:
        """An error JSON with exactly this status, code, message and ``retryable``."""
        if not 400 <= http_status <= 599:
            raise ValueError(f"a fault status must be 4xx or 5xx, got {http_status}")
        return cls("error", http_status=http_status, code=code, message=message, retryable=retryable)

    @classmethod
    def rate_limited(cls, retry_after: int | None = 1, *, retry_after_http_date: bool = False) -> Fault:
        """429 RATE_LIMIT_EXCEEDED; ``Retry-After`` in seconds, as an HTTP date, or (None) absent."""
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        return cls(
            "rate_limited",
            http_status=429,
            retry_after=retry_after,
            retry_after_http_date=retry_after_http_date,
        )

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) instead of answering."""
        return cls("reset")

    @classmethod
    def answer_lost(cls) -> Fault:
        """Do what was asked (delete or cancel), then reset the connection: the caller never hears it was done."""
        return cls("answer_lost")

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then answer normally."""
        return cls("latency", seconds=float(seconds))

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Like latency, meant to be longer than the client's read timeout."""
        return cls("stall", seconds=float(seconds))

    @classmethod
    def non_json(cls, http_status: int = 502) -> Fault:
        """An HTML error page with this status, as a load balancer or gateway would send."""
        return cls("non_json", http_status=http_status)

    @classmethod
    def json(cls, http_status: int, document: Any, *, with_request_id: bool = False) -> Fault:
        """Exactly this JSON body with this status, as something in front of Extend (a proxy, a CDN, a WAF, a
        framework default) answers: by default without Extend's ``x-extend-request-id`` header."""
        return cls("json", http_status=http_status, document=json.dumps(document), with_request_id=with_request_id)

    @classmethod
    def redirect(cls, http_status: int = 302, location: str = "https://elsewhere.example/parser_runs") -> Fault:
        """A 3xx with a ``Location`` header and no JSON body, as a misconfigured proxy or a moved host answers."""
        if not 300 <= http_status <= 399:
            raise ValueError(f"a redirect's status must be 3xx, got {http_status}")
        return cls("redirect", http_status=http_status, location=location)

    @property
    def name(self) -> str:
        """A short label, used in ``RecordedRequest.fault``: ``status:503``, ``reset``, ``stall`` ..."""
        if self.kind in ("status", "non_json", "json", "redirect"):
            return f"{self.kind}:{self.http_status}"
        if self.kind == "error":
            return f"error:{self.http_status}:{self.code}"
        return self.kind


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received. ``headers`` has lower-case names.

    ``parser_run_id`` is the id in the path whatever its resource type (the name predates the other types);
    ``resource`` is the path's resource segment (``"files"``, ``"parse_runs"`` ...), None when the path has none.
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    timestamp: float
    parser_run_id: str | None
    fault: str | None
    api_version: str | None = None
    workspace_id: str | None = None
    request_id: str | None = None
    resource: str | None = None


@dataclass
class _Key:
    workspace_id: str | None
    org_scoped: bool
    legacy: bool
    revoked: bool = False


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    request_id: str | None
    content_type: str = "application/json"
    retry_after: str | None = None
    location: str | None = None


@dataclass
class _Object:
    """One seeded resource: a run (with its optional file) or a file."""

    kind: str
    status: str
    metadata: dict[str, Any] | None
    file_id: str | None


@dataclass
class _Context:
    method: str
    target: str
    headers: dict[str, str]
    request_id: str
    run_id: str | None = None  # the path's id, whatever its type
    version: str | None = None
    workspace: str | None = None
    resource: str | None = None  # the path's resource segment
    kind: str | None = None  # the kind that segment serves in this version, once routed
    cancel: bool = False  # POST .../{id}/cancel


class _Answer(Exception):
    """Raised by a check step to answer early (``reply`` None: reset the connection)."""

    def __init__(self, reply: _Reply | None, fault: str | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.fault = fault


class _TokenBucket:
    def __init__(self, rps: float) -> None:
        self.rps = rps
        self.capacity = max(1.0, rps)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self, now: float) -> float:
        """Take a token: 0.0 if granted, else the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rps)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rps


def _abort_socket(sock: socket.socket) -> None:
    """Close with SO_LINGER (1, 0), so the peer gets a TCP RST and no response."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "extend-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _discard_body(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # not worth decoding: answer, then close
            return
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = 0
            self.close_connection = True
        if length > 0:
            self.rfile.read(length)

    def _serve(self, method: str) -> None:
        arrival = time.monotonic()
        self._discard_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.emulator._handle(method, self.path, headers, arrival)
        if reply is None:
            self.close_connection = True
            _abort_socket(self.connection)
            return
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {reply.status} {reason}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"Server: {self.server_version}",
        ]
        if reply.request_id is not None:
            lines.append(f"x-extend-request-id: {reply.request_id}")
        if reply.retry_after is not None:
            lines.append(f"Retry-After: {reply.retry_after}")
        if reply.location is not None:
            lines.append(f"Location: {reply.location}")
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: ExtendEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.emulator.unreachable:
            self.emulator._count("unreachable")
            _abort_socket(request)
            return False
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Quiet: clients hanging up mid-response are normal here. Keep anything else for inspection.
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.emulator.server_errors.append(repr(error))

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)


class ExtendEmulator:
    """Extend's deletion endpoints (every deletable resource type) on 127.0.0.1, with injectable faults.
    Thread-safe."""

    def __init__(
        self,
        latency_s: float = 0.0,
        rate_limit_rps: float | None = None,
        rate_limit_retry_after: bool = True,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        read_rate_limit_rps: float | None = None,
        processing_delete: ProcessingDelete = "allow",
    ) -> None:
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._latency_s = float(latency_s)
        self._rate_limit_rps: float | None = None
        self._bucket: _TokenBucket | None = None
        self._read_rate_limit_rps: float | None = None
        self._read_bucket: _TokenBucket | None = None
        self.rate_limit_rps = rate_limit_rps
        self.read_rate_limit_rps = read_rate_limit_rps
        self.rate_limit_retry_after = rate_limit_retry_after
        self._processing_delete: ProcessingDelete = "allow"
        self.processing_delete = processing_delete
        self._rng = random.Random(seed)
        self._keys: dict[str, _Key] = {}
        # (workspace, id) -> the object: Extend's ids are unique across types, so one id is one object.
        self._objects: dict[tuple[str, str], _Object] = {}
        self._scripts: dict[tuple[str, str], deque[Fault]] = {}  # (method, run id) -> faults
        self._random_probability = 0.0
        self._random_faults: tuple[Fault, ...] = ()
        self._random_rng = random.Random(seed)
        self._unreachable = False
        self._requests: list[RecordedRequest] = []
        self._stats: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.server_errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ExtendEmulator:
        """Bind 127.0.0.1 on a free port (unless ``port`` was given) and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self._host, self._port), self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="extend-emulator", daemon=True
        )
        self._server = server
        self._thread = thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, reset kept-alive connections and close the listening socket. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        deadline = time.monotonic() + 1.0
        while server.open_connections() and time.monotonic() < deadline:
            time.sleep(0.005)
        self._server = None
        self._thread = None

    def __enter__(self) -> ExtendEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://{self._host}:{self.port}"

    # ------------------------------------------------------------------ configuration

    @property
    def latency_s(self) -> float:
        return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_s must be >= 0")
        self._latency_s = float(value)

    @property
    def rate_limit_rps(self) -> float | None:
        return self._rate_limit_rps

    @rate_limit_rps.setter
    def rate_limit_rps(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("rate_limit_rps must be > 0 or None")
        with self._lock:
            self._rate_limit_rps = None if value is None else float(value)
            self._bucket = None if value is None else _TokenBucket(float(value))

    @property
    def read_rate_limit_rps(self) -> float | None:
        """Under 2026-02-09, the limit on GETs, apart from ``rate_limit_rps`` (None: GETs are not limited)."""
        return self._read_rate_limit_rps

    @read_rate_limit_rps.setter
    def read_rate_limit_rps(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("read_rate_limit_rps must be > 0 or None")
        with self._lock:
            self._read_rate_limit_rps = None if value is None else float(value)
            self._read_bucket = None if value is None else _TokenBucket(float(value))

    @property
    def processing_delete(self) -> ProcessingDelete:
        """What a DELETE of a PENDING or PROCESSING run does: ``"allow"`` deletes it, ``"refuse"`` answers 409."""
        return self._processing_delete

    @processing_delete.setter
    def processing_delete(self, value: ProcessingDelete) -> None:
        if value not in ("allow", "refuse"):
            raise ValueError(f"processing_delete must be 'allow' or 'refuse', got {value!r}")
        self._processing_delete = value

    @property
    def unreachable(self) -> bool:
        return self._unreachable

    def set_unreachable(self, unreachable: bool = True) -> None:
        """While True, new connections are accepted and reset, and requests on kept-alive ones too."""
        self._unreachable = unreachable

    def add_key(
        self,
        key: str,
        workspace_id: str | None = None,
        *,
        org_scoped: bool = False,
        legacy: bool = False,
    ) -> None:
        """Register an API key: workspace-scoped (default workspace ``ws_default``) or organization-scoped."""
        if org_scoped and workspace_id is not None:
            raise ValueError("an organization-scoped key has no workspace; pass x-extend-workspace-id instead")
        with self._lock:
            self._keys[key] = _Key(
                workspace_id=None if org_scoped else (workspace_id or DEFAULT_WORKSPACE_ID),
                org_scoped=org_scoped,
                legacy=legacy,
            )

    def revoke_key(self, key: str) -> None:
        """Make ``key`` answer 401 from now on."""
        with self._lock:
            if key in self._keys:
                self._keys[key].revoked = True

    def seed(
        self,
        parser_run_ids: Iterable[str],
        workspace_id: str = DEFAULT_WORKSPACE_ID,
        *,
        metadata: dict[str, Any] | None = None,
        resource: str | None = None,
        file_id: str | None = None,
        status: str = "PROCESSED",
    ) -> None:
        """Create objects that exist in ``workspace_id`` (seeding an existing id replaces it).

        ``resource`` None (or ``"parse_runs"``/``"parser_runs"``) is a parse run, served on ``/parser_runs/``
        under 2025-04-21 and ``/parse_runs/`` under 2026-02-09; any other resource name (``"files"``,
        ``"extract_runs"``, ``"processor_runs"`` ...) is served only on its own path. ``metadata`` is the custom
        metadata a GET returns, ``file_id`` the file a run was made from (runs only), ``status`` its status (an
        open set: ``PENDING``, ``PROCESSING``, ``PROCESSED``, ``FAILED``, ``CANCELLED`` ...).
        """
        kind = _kind_name(resource)
        if file_id is not None and not _KINDS[kind].is_run:
            raise ValueError(f"only runs have a file; {kind} cannot be seeded with file_id")
        if not status:
            raise ValueError("status must not be empty")
        with self._lock:
            for object_id in list(parser_run_ids):
                self._objects[(workspace_id, object_id)] = _Object(
                    kind=kind,
                    status=status,
                    metadata=None if metadata is None else dict(metadata),
                    file_id=file_id,
                )

    def seed_file(
        self, file_id: str, workspace_id: str = DEFAULT_WORKSPACE_ID, *, metadata: dict[str, Any] | None = None
    ) -> None:
        """Create one file in ``workspace_id`` (``seed([file_id], workspace_id, resource="files")``)."""
        self.seed([file_id], workspace_id, metadata=metadata, resource="files")

    def exists(self, parser_run_id: str, workspace_id: str = DEFAULT_WORKSPACE_ID) -> bool:
        """Whether an object of any type has this id in ``workspace_id``."""
        with self._lock:
            return (workspace_id, parser_run_id) in self._objects

    def resource_of(self, object_id: str, workspace_id: str = DEFAULT_WORKSPACE_ID) -> str | None:
        """The canonical resource name of the object (``"parse_runs"`` for a parse run, ``"files"`` ...), or None
        if it does not exist."""
        with self._lock:
            found = self._objects.get((workspace_id, object_id))
            return None if found is None else found.kind

    def status_of(self, object_id: str, workspace_id: str = DEFAULT_WORKSPACE_ID) -> str | None:
        """The object's status (``"CANCELLED"`` after a cancel), or None if it does not exist."""
        with self._lock:
            found = self._objects.get((workspace_id, object_id))
            return None if found is None else found.status

    def inject(self, parser_run_id: str, *faults: Fault, method: str = "DELETE") -> None:
        """Append faults to the id's script for ``method``: each request of that method and id consumes the next
        one (a ``GET`` has a script of its own, so the read before a deletion can fail apart from the DELETE;
        ``"POST"`` scripts the cancels). Works for an id of any resource type."""
        with self._lock:
            self._scripts.setdefault((method.upper(), parser_run_id), deque()).extend(faults)

    def pending_faults(self, parser_run_id: str, method: str = "DELETE") -> list[Fault]:
        with self._lock:
            return list(self._scripts.get((method.upper(), parser_run_id), ()))

    def refuse_connections(self) -> None:
        """Close the listening socket, keeping its port: every new connection is refused (ECONNREFUSED), as by a
        host that is down, until ``accept_connections``. The request never left the caller: nothing can be done."""
        if self._server is None:
            return
        port = self._server.server_port
        self.stop()
        self._port = port

    def accept_connections(self) -> None:
        """Listen again, on the same port, after ``refuse_connections``."""
        self.start()

    def inject_random(self, probability: float, faults: Sequence[Fault], seed: int = 0) -> None:
        """Chaos: each DELETE without a scripted fault gets ``faults[i]`` with this probability.

        Deterministic for a given seed and request order. ``probability=0`` turns it off.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be in [0, 1]")
        if probability > 0 and not faults:
            raise ValueError("faults must not be empty")
        with self._lock:
            self._random_probability = probability
            self._random_faults = tuple(faults)
            self._random_rng = random.Random(seed)

    def clear_faults(self) -> None:
        """Drop every scripted fault and turn random faults off."""
        with self._lock:
            self._scripts.clear()
            self._random_probability = 0.0
            self._random_faults = ()

    # ------------------------------------------------------------------ observation

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every recorded request, in the order their responses were decided."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, parser_run_id: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.parser_run_id == parser_run_id]

    def stats(self) -> dict[str, int]:
        """Counts by status (``"200"``) or, when nothing was answered, by reason (``"reset"``)."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        """Clear ``requests`` and ``stats()``."""
        with self._lock:
            self._requests.clear()
            self._stats.clear()

    # ------------------------------------------------------------------ request handling (server threads)

    def _count(self, label: str) -> None:
        with self._lock:
            self._stats[label] += 1

    def _new_request_id(self) -> str:
        with self._lock:
            return "req_" + "".join(self._rng.choices(_REQUEST_ID_ALPHABET, k=20))

    def _wait(self, seconds: float) -> bool:
        """Sleep; True if stop() interrupted it."""
        return self._stopping.wait(seconds)

    def _handle(self, method: str, target: str, headers: dict[str, str], arrival: float) -> _Reply | None:
        """Decide the answer to one request (steps in the module docstring); None means reset."""
        ctx = _Context(method=method, target=target, headers=headers, request_id=self._new_request_id())
        try:
            reply, fault = self._evaluate(ctx)
        except _Answer as answer:
            reply, fault = answer.reply, answer.fault
        record = RecordedRequest(
            method=method,
            path=target,
            headers=headers,
            status=None if reply is None else reply.status,
            timestamp=arrival,
            parser_run_id=ctx.run_id,
            fault=fault,
            api_version=ctx.version,
            workspace_id=ctx.workspace,
            request_id=ctx.request_id,
            resource=ctx.resource,
        )
        with self._lock:
            self._requests.append(record)
            self._stats[str(reply.status) if reply is not None else (fault or "reset")] += 1
        return reply

    def _evaluate(self, ctx: _Context) -> tuple[_Reply | None, str | None]:
        if self._unreachable:
            return None, "unreachable"
        if self._latency_s > 0 and self._wait(self._latency_s):
            return None, "aborted"
        key = self._authenticate(ctx)
        ctx.version = self._api_version(ctx, key)
        ctx.workspace = self._workspace(ctx, key)
        run_id = self._route(ctx)
        self._rate_limit(ctx)
        fault = self._next_fault(ctx.method, run_id)
        if fault is not None:
            if fault.kind == "reset":
                return None, "reset"
            if fault.kind == "answer_lost":
                self._behave(ctx, run_id)
                return None, "answer_lost"
            if fault.kind not in ("latency", "stall"):
                return self._fault_reply(fault, ctx.request_id), fault.name
            if self._wait(fault.seconds):
                return None, "aborted"
        reply = self._behave(ctx, run_id)
        return reply, None if fault is None else fault.name

    def _reject(self, ctx: _Context, status: int, message: str, fault: str | None = None) -> _Answer:
        code, _ = _code_for(status)
        reply = self._error_reply(status, code, message, _default_retryable(status), ctx.request_id)
        return _Answer(reply, fault)

    def _authenticate(self, ctx: _Context) -> _Key:
        scheme, _, token = ctx.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            message = "Missing or malformed Authorization header. Expected 'Bearer <api key>'."
            raise self._reject(ctx, 401, message)
        with self._lock:
            key = self._keys.get(token)
            if key is not None and not key.revoked:
                return key
        raise self._reject(ctx, 401, "Invalid, expired or revoked API key.")

    def _api_version(self, ctx: _Context, key: _Key) -> str:
        version = ctx.headers.get("x-extend-api-version", "").strip()
        supported = ", ".join(SUPPORTED_API_VERSIONS)
        if not version:
            if key.legacy:
                return API_VERSION_2025
            raise self._reject(ctx, 400, f"The x-extend-api-version header is required. Supported: {supported}.")
        if version not in SUPPORTED_API_VERSIONS:
            raise self._reject(ctx, 400, f"Unsupported API version '{version}'. Supported: {supported}.")
        return version

    def _workspace(self, ctx: _Context, key: _Key) -> str:
        header = ctx.headers.get("x-extend-workspace-id", "").strip()
        if key.org_scoped:
            if not header:
                message = "The x-extend-workspace-id header is required when using an organization-scoped API key."
                raise self._reject(ctx, 400, message)
            return header
        workspace = key.workspace_id or DEFAULT_WORKSPACE_ID
        if header and header != workspace:
            raise self._reject(ctx, 403, f"This API key does not have access to workspace '{header}'.")
        return workspace

    def _route(self, ctx: _Context) -> str:
        """The id of a ``GET``/``DELETE /{resource}/{id}`` or ``POST /{resource}/{id}/cancel`` this version serves;
        else 410 (a path 2026-02-09 removed) or 404."""
        path = ctx.target.split("?", 1)[0]
        segment, _, rest = path.removeprefix("/").partition("/")
        raw_id, *action = rest.split("/")
        if segment in _KNOWN_SEGMENTS and raw_id and action in ([], ["cancel"]):
            ctx.resource = segment
            ctx.run_id = unquote(raw_id, errors="replace")
            ctx.cancel = bool(action)
            version = ctx.version or API_VERSION_2025
            if version == API_VERSION_2026 and segment in _REMOVED_2026:
                suffix = "/cancel" if ctx.cancel else ""
                message = (
                    f"{ctx.method} /{segment}/{{id}}{suffix} was removed in API version {API_VERSION_2026}. "
                    f"Use {ctx.method} /{_REMOVED_2026[segment]}/{{id}}{suffix} instead."
                )
                raise self._reject(ctx, 410, message)
            kind = _ROUTES[version].get(segment)
            if kind is not None and self._serves(ctx.method, ctx.cancel, _KINDS[kind]):
                ctx.kind = kind
                return ctx.run_id
        raise self._reject(ctx, 404, f"No route for {ctx.method} {path} in API version {ctx.version}.")

    @staticmethod
    def _serves(method: str, cancel: bool, kind: _Kind) -> bool:
        if cancel:
            return method == "POST" and kind.cancellable
        return method in ("DELETE", "GET")

    def _rate_limit(self, ctx: _Context) -> None:
        # Under 2026-02-09 reads have a limit of their own (Extend limits GET apart from WRITE); under 2025-04-21 one
        # limit covers every request.
        read = ctx.version == API_VERSION_2026 and ctx.method == "GET"
        with self._lock:
            bucket = self._read_bucket if read else self._bucket
            wait = bucket.take(time.monotonic()) if bucket is not None else 0.0
        if wait > 0:
            answer = self._reject(ctx, 429, _STATUS_CODES[429][1], "rate_limit:read" if read else "rate_limit")
            if self.rate_limit_retry_after and answer.reply is not None:
                answer.reply = _with_retry_after(answer.reply, str(max(1, math.ceil(wait))))
            raise answer

    def _next_fault(self, method: str, run_id: str) -> Fault | None:
        with self._lock:
            script = self._scripts.get((method, run_id))
            if script:
                fault = script.popleft()
                if not script:
                    del self._scripts[(method, run_id)]
                return fault
            if method != "DELETE":
                return None  # random faults are the deletions' alone
            if self._random_probability > 0 and self._random_rng.random() < self._random_probability:
                return self._random_rng.choice(self._random_faults)
        return None

    def _behave(self, ctx: _Context, object_id: str) -> _Reply:
        """The real answer to a routed request: read, delete or cancel the object, or say why not."""
        # _route set the kind, and the version and workspace steps ran before it.
        assert ctx.kind is not None
        assert ctx.version is not None
        assert ctx.workspace is not None
        kind = _KINDS[ctx.kind]
        noun = kind.noun_2025 if ctx.version == API_VERSION_2025 and kind.noun_2025 else kind.noun
        key = (ctx.workspace, object_id)
        with self._lock:
            found = self._objects.get(key)
            if found is not None and found.kind != kind.name:
                found = None  # another type's id: Extend looks it up among this type's objects only
            refusal = self._refusal(ctx, kind, noun, object_id, found)
            if found is not None and refusal is None:
                if ctx.method == "DELETE":
                    del self._objects[key]  # only this object: runs and files never cascade
                elif ctx.cancel:
                    found.status = "CANCELLED"
            snapshot = None if found is None else _Object(found.kind, found.status, found.metadata, found.file_id)
        if refusal is not None:
            return refusal
        if snapshot is None:
            return self._error_reply(404, "NOT_FOUND", f"{noun} '{object_id}' not found.", False, ctx.request_id)
        if ctx.method == "DELETE":
            body = _deleted_body(kind, ctx.version, object_id)
        else:
            body = _object_body(kind, ctx.version, object_id, snapshot)
        return _Reply(200, json.dumps(body).encode(), ctx.request_id)

    def _refusal(self, ctx: _Context, kind: _Kind, noun: str, object_id: str, found: _Object | None) -> _Reply | None:
        """The error for a cancel of a run that is not in progress, or (``processing_delete="refuse"``) a deletion
        of one that is; None when the request may go ahead."""
        if found is None:
            return None
        if ctx.cancel and found.status not in _IN_PROGRESS:
            message = (
                f"{noun} '{object_id}' is not processing (status {found.status}); "
                "only PENDING or PROCESSING runs can be cancelled."
            )
            return self._error_reply(400, "INVALID_REQUEST", message, False, ctx.request_id)
        if (
            ctx.method == "DELETE"
            and kind.is_run
            and found.status in _IN_PROGRESS
            and self._processing_delete == "refuse"
        ):
            return self._error_reply(409, "CONFLICT", _STILL_PROCESSING_MESSAGE, False, ctx.request_id)
        return None

    @staticmethod
    def _error_reply(status: int, code: str, message: str, retryable: bool, request_id: str) -> _Reply:
        body = {"code": code, "message": message, "retryable": retryable, "requestId": request_id}
        return _Reply(status, json.dumps(body).encode(), request_id)

    def _fault_reply(self, fault: Fault, request_id: str) -> _Reply:
        status = fault.http_status or 500
        if fault.kind == "non_json":
            phrase = _phrase(status)
            html = f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
            return _Reply(status, html.encode(), request_id, content_type="text/html; charset=utf-8")
        if fault.kind == "json":
            assert fault.document is not None
            return _Reply(status, fault.document.encode(), request_id if fault.with_request_id else None)
        if fault.kind == "redirect":
            return _Reply(status, b"", None, content_type="text/plain", location=fault.location)
        default_code, default_message = _code_for(status)
        if fault.kind == "error":
            retryable = bool(fault.retryable)
            return self._error_reply(
                status, fault.code or default_code, fault.message or default_message, retryable, request_id
            )
        reply = self._error_reply(status, default_code, default_message, _default_retryable(status), request_id)
        if fault.kind == "rate_limited" and fault.retry_after is not None:
            if fault.retry_after_http_date:
                when = math.ceil(time.time()) + max(1, fault.retry_after)
                reply = _with_retry_after(reply, email.utils.formatdate(when, usegmt=True))
            else:
                reply = _with_retry_after(reply, str(fault.retry_after))
        return reply


def _kind_name(resource: str | None) -> str:
    """The canonical name of a resource given to ``seed`` (None: the parse run)."""
    if resource is None:
        return "parse_runs"
    name = _RESOURCE_ALIASES.get(resource, resource)
    if name not in _KINDS:
        names = ", ".join(sorted({*_KINDS, *_RESOURCE_ALIASES}))
        raise ValueError(f"unknown resource {resource!r}; one of: {names}")
    return name


def _deleted_body(kind: _Kind, version: str, object_id: str) -> dict[str, Any]:
    if version == API_VERSION_2026:
        return {"id": object_id}
    if kind.name == "parse_runs":
        return {"success": True, "parserRunId": object_id, "message": _DELETED_MESSAGE}
    if kind.name == "processor_runs":
        return {"success": True, "documentProcessorRunId": object_id, "message": _PROCESSOR_RUN_DELETED_MESSAGE}
    # The 2025-04-21 bodies of the other deletes are not in the reference: assumed to follow the same pattern.
    return {"success": True, "id": object_id, "message": f"{kind.noun} data has been successfully deleted."}


def _object_body(kind: _Kind, version: str, object_id: str, found: _Object) -> dict[str, Any]:
    """What a GET (or a successful cancel) answers: the bare object under 2026-02-09, wrapped under 2025-04-21."""
    body: dict[str, Any] = {
        "object": kind.object_2026 if version == API_VERSION_2026 else kind.object_2025,
        "id": object_id,
    }
    if kind.is_run:
        body["status"] = found.status
    else:
        body["name"] = f"{object_id}.pdf"
    if found.metadata is not None:
        body["metadata"] = found.metadata
    if found.file_id is not None:
        summary = {"object": "file", "id": found.file_id}
        body["file"] = summary
        if kind.name == "workflow_runs":
            body["files"] = [summary]  # Extend's workflow run lists its files; "file" is kept for uniform readers
    if version == API_VERSION_2026:
        return body
    return {"success": True, kind.envelope_2025: body}


def _with_retry_after(reply: _Reply, value: str) -> _Reply:
    return _Reply(reply.status, reply.body, reply.request_id, reply.content_type, retry_after=value)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
