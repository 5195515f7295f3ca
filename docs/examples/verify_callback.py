#!/usr/bin/env python3
"""Verify the completion callbacks the parser run deletion API sends a tenant, and a small server that takes them.

Standard library only. The tenant's callback-signing secret (``whsec_...``, handed over with its API key; never
its request-signing secret) comes from the environment:

    export DELETER_CALLBACK_SIGNING_SECRET=whsec_...

    # a server on loopback that verifies each callback: 204 and one JSON line on stdout for a good one,
    # 400 for anything else (put it behind your own https front, or use verify_callback() in your framework)
    python3 verify_callback.py serve --port 8080

    # or check a saved delivery: its headers as a JSON object, and its body's exact bytes
    python3 verify_callback.py check headers.json body.json

``check`` prints the event and exits 0 when the callback verifies, prints why not and exits 1 when it does not.

A callback is a Standard Webhooks (https://www.standardwebhooks.com) message: ``webhook-signature`` holds one or
more space-separated ``v1,<base64 HMAC-SHA256>`` of ``"{webhook-id}.{webhook-timestamp}.{raw body}"``, keyed with
the base64-decoded secret (without its ``whsec_`` prefix); one of them must match. Verify the raw bytes, before
parsing them. Deliveries are at least once, and every retry of one completion carries the same ``webhook-id``:
de-duplicate on it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SECRET_VARIABLE = "DELETER_CALLBACK_SIGNING_SECRET"  # noqa: S105 - the variable's name, not a secret
TOLERANCE_S = 300  # how far the timestamp may be from now, either way: an old capture cannot be replayed later
MAX_BODY_BYTES = 64 * 1024  # a completion event is well under 1 KiB


class CallbackRejected(Exception):
    """The callback is not signed with the tenant's callback-signing secret, or not recently. Says why."""


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The event in ``body`` when ``headers`` sign it with ``secret`` within ``tolerance_s`` of ``now``; else
    ``CallbackRejected``. Header names are matched case-insensitively."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (webhook_id and timestamp and signatures):
        raise CallbackRejected("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise CallbackRejected("webhook-timestamp is not Unix seconds")
    moment = time.time() if now is None else now
    if abs(moment - int(timestamp)) > tolerance_s:
        raise CallbackRejected(f"webhook-timestamp is more than {tolerance_s} seconds from now")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise CallbackRejected("the secret is not a whsec_ base64 secret") from None
    message = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())
    # During the sender's secret rotation there is one signature per secret: any one of them will do.
    offered = [token.partition(",")[2].encode() for token in signatures.split() if token.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise CallbackRejected("no signature matches: the body was changed, or it is signed with another secret")
    event: dict[str, Any] = json.loads(body)
    return event


def serve(secret: str, host: str, port: int) -> None:
    """Answer each verified callback 204 (once per ``webhook-id``), anything else 400."""
    seen: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per verified event is the output

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            try:
                event = verify_callback(dict(self.headers.items()), body, secret)
            except (CallbackRejected, ValueError) as error:
                print(f"rejected: {error}", file=sys.stderr, flush=True)
                self._answer(400)
                return
            webhook_id = self.headers["webhook-id"]
            with lock:
                first = webhook_id not in seen
                seen.add(webhook_id)
            if first:  # a retry of a delivery already handled is acknowledged, not acted on again
                print(json.dumps({"webhookId": webhook_id, "event": event}), flush=True)
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer((host, port), Handler)
    print(f"listening on http://{host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Verify the parser run deletion API's completion callbacks.")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="a server that verifies each callback it is sent")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8080, help="0: any free port (printed)")
    checking = commands.add_parser("check", help="verify one saved delivery")
    checking.add_argument("headers", type=Path, help="a JSON object of the delivery's headers")
    checking.add_argument("body", type=Path, help="the delivery's body, as received")
    arguments = parser.parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        print(f"set {SECRET_VARIABLE} first", file=sys.stderr)
        return 2
    if arguments.command == "serve":
        serve(secret, arguments.host, arguments.port)
        return 0
    headers = json.loads(arguments.headers.read_text(encoding="utf-8"))
    try:
        event = verify_callback(headers, arguments.body.read_bytes(), secret)
    except (CallbackRejected, ValueError) as error:
        print(f"rejected: {error}")
        return 1
    print(json.dumps(event))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
