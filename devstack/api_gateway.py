"""API Gateway (REST API, payload 1.0, proxy integration) on loopback, in front of one local function.

A ``ThreadingHTTPServer`` serves ``/{StageName}/...`` for the template's ``Api`` events: a request to a route
becomes a proxy event (``devstack.events``) and the function's result becomes the HTTP answer. Unknown routes
get the template's 404 gateway response, a missing or wrong ``x-api-key`` gets 403 ``{"message": "Forbidden"}``
(``ApiKeyRequired``), a function error 502 ``Internal server error``, a timeout 504. An API key is valid, as in API
Gateway, when it is enabled and in a usage plan of this API's stage: ``UsagePlanKeys`` reads them from moto's
API Gateway, where ``extend-deleter tenants add --create-api-key`` puts them.

Not emulated: usage-plan throttling and quotas.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.events import apigw_rest_event
from devstack.functions import FunctionPool, InvocationResult


@dataclass(frozen=True)
class Route:
    resource: str  # e.g. /parser_runs/{id}
    method: str
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))

    @classmethod
    def of(cls, resource: str, method: str) -> Route:
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", resource)
        )
        return cls(resource, method.upper(), re.compile(f"^{regex}$"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        found = self.pattern.match(path)
        return None if found is None else {name: unquote(value) for name, value in found.groupdict().items()}


class UsagePlanKeys:
    """API keys as API Gateway accepts them for one stage: enabled, and in a usage plan of that stage. Read from
    (moto's) API Gateway, at most once a second."""

    def __init__(self, apigateway: Any, rest_api_id: str, stage: str, max_age_s: float = 1.0) -> None:
        self._apigateway = apigateway
        self._stage = {"apiId": rest_api_id, "stage": stage}
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}
        self._read_at = float("-inf")

    def __call__(self, value: str) -> str | None:
        with self._lock:
            if time.monotonic() - self._read_at >= self._max_age_s:
                self._keys = self._read()
                self._read_at = time.monotonic()
            return self._keys.get(value)

    def _read(self) -> dict[str, str]:
        plans = [
            plan["id"]
            for plan in self._apigateway.get_usage_plans()["items"]
            if self._stage in [{"apiId": s["apiId"], "stage": s["stage"]} for s in plan.get("apiStages", [])]
        ]
        in_plans = {
            key["id"] for plan in plans for key in self._apigateway.get_usage_plan_keys(usagePlanId=plan)["items"]
        }
        return {
            key["value"]: key["id"]
            for key in self._apigateway.get_api_keys(includeValues=True)["items"]
            if key.get("enabled") and key["id"] in in_plans
        }


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_answer(status: int, document: Mapping[str, Any], request_id: str) -> HttpAnswer:
    return HttpAnswer(
        status,
        [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        json.dumps(document).encode(),
    )


def proxy_result_to_http(result: InvocationResult, request_id: str) -> HttpAnswer:
    """Map a proxy integration's result to HTTP as API Gateway does (502 when it cannot)."""
    bad = _json_answer(502, {"message": "Internal server error"}, request_id)
    payload = result.payload
    if not result.ok:
        if result.error_type == "Sandbox.Timedout":
            return _json_answer(504, {"message": "Endpoint request timed out"}, request_id)
        return bad
    if not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        return bad
    headers: list[tuple[str, str]] = []
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return bad
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend((name, str(value)) for name, value in single.items() if name.lower() not in seen)
    body = payload.get("body") or ""
    if not isinstance(body, str):
        return bad
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    return HttpAnswer(payload["statusCode"], headers, raw)


class ApiGatewayFront:
    """API Gateway (REST, proxy integration) on loopback for one function's ``Api`` routes."""

    def __init__(
        self,
        pool: FunctionPool,
        routes: Iterable[Route],
        *,
        stage: str,
        api_keys: Mapping[str, str] | Callable[[str], str | None] | None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.pool = pool
        self.routes = list(routes)
        self.stage = stage
        # key value -> key id (a mapping, or a lookup such as UsagePlanKeys); None: no key required
        self.api_keys: Callable[[str], str | None] | None = (
            dict(api_keys).get if isinstance(api_keys, Mapping) else api_keys
        )
        self.requests: Counter[int] = Counter()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-apigateway"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                answer = front.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Date", formatdate(usegmt=True))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY ...) is routed too, so it gets the gateway's JSON 404, not a 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    def start(self) -> ApiGatewayFront:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="apigateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpAnswer:
        request_id = str(uuid.uuid4())
        answer = self._answer(method, target, headers=headers, body=body, source_ip=source_ip, request_id=request_id)
        self.requests[answer.status] += 1
        return answer

    def _answer(
        self, method: str, target: str, *, headers: list[tuple[str, str]], body: bytes, source_ip: str, request_id: str
    ) -> HttpAnswer:
        parts = urlsplit(target)
        prefix = f"/{self.stage}"
        if not (parts.path == prefix or parts.path.startswith(prefix + "/")):
            return _json_answer(404, {"message": "Not found"}, request_id)
        path = parts.path[len(prefix) :] or "/"
        for route in self.routes:
            path_parameters = route.match(method, path)
            if path_parameters is not None:
                break
        else:
            # MISSING_AUTHENTICATION_TOKEN, which the template maps to a JSON 404
            return _json_answer(404, {"message": "Not found"}, request_id)
        api_key = next((value for name, value in headers if name.lower() == "x-api-key"), None)
        api_key_id = None
        if self.api_keys is not None:
            api_key_id = self.api_keys(api_key or "")
            if api_key_id is None:
                return _json_answer(403, {"message": "Forbidden"}, request_id)
        forwarded = [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(self._server.server_address[1])),
            ("X-Forwarded-Proto", "http"),
        ]
        present = {name.lower() for name, _ in headers}
        event = apigw_rest_event(
            method=method,
            path=path,
            query=parts.query,
            headers=headers + [(n, v) for n, v in forwarded if n.lower() not in present],
            body=body,
            resource=route.resource,
            path_parameters=path_parameters,
            stage=self.stage,
            source_ip=source_ip,
            api_key=api_key if self.api_keys is not None else None,
            api_key_id=api_key_id,
            request_id=request_id,
        )
        try:
            result = self.pool.invoke(event)
        except RuntimeError:
            return _json_answer(503, {"message": "Service Unavailable"}, request_id)
        return proxy_result_to_http(result, request_id)
