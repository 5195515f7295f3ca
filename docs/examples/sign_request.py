#!/usr/bin/env python3
"""Send one signed request to the parser run deletion API as a tenant, and print the answer.

Standard library only. The credentials come from the environment, never from the code:

    export DELETER_API_URL=https://abc123defg.execute-api.us-east-1.amazonaws.com/v1   # the stack's ApiUrl
    export DELETER_API_KEY=...                    # the tenant's API key
    export DELETER_SIGNING_SECRET=whsec_...       # the tenant's request-signing secret

    python3 sign_request.py DELETE /parser_runs/pr_123
    python3 sign_request.py POST /deletions '{"parserRunIds": ["pr_1", "pr_2"]}'
    python3 sign_request.py GET '/deletions/dr_01m8txz3dbf4pjzs66y9cq5jv4?limit=10'

It prints the status (``HTTP 202``) on one line and the body after it, and exits 0 on a 2xx, 1 on any other
answer, 2 when it cannot send the request at all.

Signing contract v2, as Standard Webhooks (https://www.standardwebhooks.com) signs a message: the payload is
``"{METHOD} {route path}"``, followed, for a request with a body, by one line feed and the body's exact bytes. The
route path is the API's own path: no stage (``/v1``), no custom domain base path, no query string. The signature is
``v1,`` and the base64 HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{payload}"``, keyed with the base64-decoded
secret (without its ``whsec_`` prefix).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

CREDENTIALS = ("DELETER_API_URL", "DELETER_API_KEY", "DELETER_SIGNING_SECRET")
USAGE = f"usage: sign_request.py METHOD ROUTE_PATH [JSON_BODY], with {', '.join(CREDENTIALS)} set"


def signed_payload(method: str, route_path: str, body: bytes = b"") -> bytes:
    """``"{METHOD} {route path}"``, and for a request with a body, a line feed and the body's bytes."""
    request_line = f"{method.upper()} {route_path}".encode()
    return request_line + b"\n" + body if body else request_line


def signature_headers(
    secret: str,
    method: str,
    route_path: str,
    body: bytes = b"",
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers that sign one request with the tenant's ``whsec_`` secret."""
    webhook_id = webhook_id or f"msg_{secrets.token_hex(16)}"  # new for every request: the API serves an id once
    timestamp = int(time.time()) if timestamp is None else timestamp
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    message = f"{webhook_id}.{timestamp}.".encode() + signed_payload(method, route_path, body)
    signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}


@dataclass(frozen=True)
class Credentials:
    api_url: str  # the stack's ApiUrl (with its stage), or the custom domain's URL (with its base path)
    api_key: str
    signing_secret: str

    @classmethod
    def from_environment(cls) -> Credentials:
        return cls(*(os.environ[name] for name in CREDENTIALS))


def send(credentials: Credentials, method: str, route: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send ``method route`` (a path under the API, query string allowed) signed, and return the status and body."""
    method = method.upper()
    url = credentials.api_url.rstrip("/") + route
    if urlsplit(url).scheme not in ("https", "http"):
        raise ValueError(f"DELETER_API_URL must be an https URL: {credentials.api_url!r}")
    # What is signed is the path alone, percent-escapes decoded; the query string is sent but not signed.
    route_path = unquote(urlsplit(route).path)
    headers = {"x-api-key": credentials.api_key}
    headers.update(signature_headers(credentials.signing_secret, method, route_path, body or b""))
    if body:
        headers["content-type"] = "application/json"
    # The exact bytes that were signed go out as the body: never re-serialize the JSON after signing.
    request = urllib.request.Request(url, data=body or None, headers=headers, method=method)  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - http(s) only, checked above
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:  # a 4xx or 5xx is an answer too, with a JSON body
        return error.code, error.read()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].startswith("/"):
        print(USAGE, file=sys.stderr)
        return 2
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:
        print(f"set {', '.join(missing)} first", file=sys.stderr)
        return 2
    method, route = argv[0], argv[1]
    body = argv[2].encode() if len(argv) == 3 else None
    try:
        status, answer = send(Credentials.from_environment(), method, route, body)
    except (OSError, ValueError) as error:  # no answer at all: the name does not resolve, nothing listens, ...
        print(f"no answer: {error}", file=sys.stderr)
        return 2
    print(f"HTTP {status}")
    print(answer.decode("utf-8", errors="replace"))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
