"""API-path helpers: API Gateway events from devstack.events, invocation, signing, and queue reads.

Every API request is a tenant's: an event is signed, by default, with the signing secret of the test's tenant
(``use_signer``, set by the ``stack`` fixture), as that tenant's client would sign it (signing contract v2):
``"{METHOD} {path}"``, and after a line feed its body when it has one. A test that needs another signature passes
its own headers, or ``sign=False``. Every response that ``invoke`` returns has been checked against openapi.yaml, so
each API test is also a contract test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from math import floor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import standardwebhooks

from devstack.events import SAMPLE_API_KEY_ID, SAMPLE_SOURCE_IP, sample_http_event, sample_rest_event
from devstack.lambda_context import LocalLambdaContext
from parser_run_deleter.entrypoints import api_function
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.logic.webhook_signature import parse_signing_secrets, sign
from parser_run_deleter.shared.parser_run_ids import is_request_id
from tests.support.openapi_contract import check_response
from tests.support.secret_guard import register_secret
from tests.support.stacks import InProcessStack

EVENTS = Path(__file__).resolve().parents[2] / "events"
API_KEY_ID = SAMPLE_API_KEY_ID  # requestContext.identity.apiKeyId in the REST samples
SOURCE_IP = SAMPLE_SOURCE_IP
TENANT_CLAIM = "tenant_id"  # the JWT claim that names the tenant in HTTP API events
TENANT_ID = "acme"  # the test's tenant, which the stack fixture registers with API_KEY_ID

# The signing secret of the test's tenant: events are signed with it unless a test says otherwise.
_signer: dict[str, str] = {}


def use_signer(secret: str | None) -> None:
    _signer.clear()
    if secret is not None:
        _signer["secret"] = secret


@cache
def _sample(name: str) -> str:
    return (EVENTS / name).read_text()


def sample_event(name: str, *, sign: bool = True) -> dict[str, Any]:
    """A sample from events/, signed afresh by the test's tenant (a sample's own signature is long stale)."""
    event: dict[str, Any] = json.loads(_sample(name))
    return sign_event(event) if sign and "secret" in _signer else event


def sign_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the test tenant's signature over its method, path and body, in its headers."""
    body = event.get("body")
    raw = base64.b64decode(body) if body and event.get("isBase64Encoded") else (body or "").encode()
    if event.get("version") == "2.0":
        method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    else:
        method, path = event["httpMethod"], event["path"]
    signed = signature_headers(_signer["secret"], raw, method=method, path=path)
    headers = {k: v for k, v in (event.get("headers") or {}).items() if not k.lower().startswith("webhook-")}
    event["headers"] = {**headers, **signed}
    if event.get("multiValueHeaders") is not None:
        multi = {k: v for k, v in event["multiValueHeaders"].items() if not k.lower().startswith("webhook-")}
        event["multiValueHeaders"] = {**multi, **{name: [value] for name, value in signed.items()}}
    return event


def _with_content_type(body: str | bytes | None, headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """A body goes out declared as JSON, as any client sends one, unless the test declares it otherwise."""
    if body is None or any(name.lower() == "content-type" for name in headers or {}):
        return dict(headers) if headers is not None else None
    return {"content-type": "application/json", **(headers or {})}


def _route(path: str) -> tuple[str, dict[str, str] | None]:
    """The template's resource for ``path`` and its path parameters (a path matching no route is its own)."""
    segments = path.split("/")[1:]
    if len(segments) == 3 and segments[0] == "deletions" and segments[2] == "cancel":
        return "/deletions/{id}/cancel", {"id": segments[1]}
    if len(segments) == 2 and segments[0] == "deletions":
        return "/deletions/{id}", {"id": segments[1]}
    if len(segments) == 2:
        return "/{resource}/{id}", {"resource": segments[0], "id": segments[1]}
    return path, None


def _signed(
    method: str, path: str, body: str | bytes | None, headers: Mapping[str, str] | None, sign: bool
) -> dict[str, str] | None:
    """The headers, with the test tenant's signature added unless one is there, or ``sign`` is False."""
    headers = _with_content_type(body, headers)
    if not sign or "secret" not in _signer or any(name.lower() == "webhook-signature" for name in headers or {}):
        return headers
    given_id = next((value for name, value in (headers or {}).items() if name.lower() == "webhook-id"), None)
    signed = signature_headers(_signer["secret"], body, method=method, path=path, webhook_id=given_id)
    return {**(headers or {}), **signed}


def rest_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    base64_body: bool = False,
    api_key_id: str | None = API_KEY_ID,
    sign: bool = True,
) -> dict[str, Any]:
    """A REST API (payload 1.0) proxy event, as events/apigw_rest_delete.json is built, signed by default. A query
    string in ``path`` becomes the event's query parameters: a GET's is not signed, a DELETE's is."""
    path, _, query = path.partition("?")
    signed_path = f"{path}?{query}" if method.upper() == "DELETE" and query else path
    resource, parameters = _route(path)
    return sample_rest_event(
        method,
        path,
        resource=resource,
        path_parameters=parameters,
        request_id=request_id or str(uuid.uuid4()),
        body=body,
        base64_body=base64_body,
        headers=_signed(method, signed_path, body, headers, sign),
        api_key_id=api_key_id,
        query=query,
    )


def http_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    base64_body: bool = False,
    authorizer: dict[str, Any] | None = None,
    sign: bool = True,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event, as events/apigw_http_delete.json is built, signed by default, from a JWT
    whose ``tenant_id`` claim names the test's tenant unless ``authorizer`` says otherwise."""
    resource, parameters = _route(path)
    if authorizer is None:
        authorizer = {"jwt": {"claims": {TENANT_CLAIM: TENANT_ID}, "scopes": None}}
    return sample_http_event(
        method,
        path,
        route_key=f"{method} {resource}",
        path_parameters=parameters,
        request_id=request_id or uuid.uuid4().hex[:16],
        body=body,
        base64_body=base64_body,
        headers=_signed(method, path, body, headers, sign),
        authorizer=authorizer,
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def invoke(event: dict[str, Any], context: LocalLambdaContext | None = None) -> Answer:
    """Run the event through api_function.lambda_handler, and check the response against openapi.yaml."""
    response = api_function.lambda_handler(event, context or LocalLambdaContext(timeout_s=30))
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(values)
    answer = Answer(response["statusCode"], headers, json.loads(response["body"]))
    if event.get("version") == "2.0":
        method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    else:
        # A REST API, as API Gateway's REST APIs do, routes "/deletions/" as "/deletions".
        method, path = event["httpMethod"], event["path"].rstrip("/") or "/"
    check_response(method, path, answer.status, answer.headers, answer.body)
    return answer


def new_webhook_secret() -> str:
    encoded = base64.b64encode(secrets.token_bytes(24)).decode()
    register_secret(encoded)
    return register_secret(f"whsec_{encoded}")


def request_payload(method: str, path: str, body: str | bytes | None) -> bytes:
    """What a tenant signs (signing contract v2, written here apart from the function's own code)."""
    raw = body if isinstance(body, bytes) else (body or "").encode()
    request_line = f"{method.upper()} {path}".encode()
    return request_line + b"\n" + raw if raw else request_line


def signature_headers(
    secret: str,
    body: str | bytes | None,
    *,
    method: str = "POST",
    path: str = "/deletions",
    webhook_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers, made by the standardwebhooks library (an independent signer), over
    signing contract v2's payload: ``"{METHOD} {path}"``, and for a request with a body, ``"\n"`` and the body."""
    timestamp = at or datetime.now(tz=UTC)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    raw = request_payload(method, path, body)
    try:
        signature = standardwebhooks.Webhook(secret).sign(webhook_id, timestamp, raw.decode())
    except UnicodeDecodeError:  # the library signs text only: bytes that are not UTF-8 are signed by ours
        signature = sign(parse_signing_secrets(secret)[0], webhook_id, floor(timestamp.timestamp()), raw)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(floor(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def queued_messages(stack: InProcessStack) -> list[dict[str, Any]]:
    """Every message on the deletion queue, parsed (they become invisible to later reads)."""
    sqs = stack.sqs()
    bodies: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=300
        ).get("Messages", [])
        if not batch:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in batch)


def queue_depth(stack: InProcessStack) -> int:
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=stack.queues.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@dataclass
class Signing:
    """The test tenant's signing secret, and where it lives in Secrets Manager."""

    secret: str
    secret_arn: str

    def headers(self, body: str | bytes | None, **kwargs: Any) -> dict[str, str]:
        return signature_headers(self.secret, body, **kwargs)


class TenantSigner(requests.auth.AuthBase):
    """Signs each request a ``requests`` session sends as the tenant's client does: its body, or
    ``"{METHOD} {route path}"``, the path without the stage (``stage_prefix``) and with its escapes decoded, and a
    ``DELETE``'s query after it."""

    def __init__(self, secret: str, stage_prefix: str) -> None:
        self.secret = secret
        self.stage_prefix = stage_prefix.rstrip("/")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.path_url)
        path = unquote(parts.path)
        if self.stage_prefix and path.startswith(self.stage_prefix):
            path = path.removeprefix(self.stage_prefix) or "/"
        if request.method == "DELETE" and parts.query:  # a DELETE's query (include=file) is signed
            path = f"{path}?{unquote(parts.query)}"
        body = request.body.encode() if isinstance(request.body, str) else request.body
        if not (body is None or isinstance(body, bytes)):
            raise TypeError(f"a streamed request body cannot be signed: {type(body).__name__}")
        for name in [name for name in request.headers if name.lower().startswith("webhook-")]:
            del request.headers[name]
        request.headers.update(signature_headers(self.secret, body, method=request.method or "GET", path=path))
        return request


def hold_in_progress(
    stack: InProcessStack,
    tenant: Tenant,
    key: str,
    *,
    method: str,
    path: str,
    body: bytes = b"",
    idempotency_key: bool = False,
) -> None:
    """Record, as Powertools does when a request starts, that this tenant's ``webhook-id`` (or, with
    ``idempotency_key``, its ``Idempotency-Key``) is being served now: what a twin sent meanwhile finds."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from parser_run_deleter.logic import replay_guard
    from parser_run_deleter.logic.authentication import AuthenticatedRequest

    assert stack.tables is not None
    layer = DynamoDBPersistenceLayer(table_name=stack.tables.idempotency_table)
    payload_sha256 = hashlib.sha256(request_payload(method, path, body)).hexdigest()
    request = {"method": method.upper(), "route": path, "payloadSha256": payload_sha256}
    if idempotency_key:
        layer.configure(replay_guard.idempotency_key_config(), key_prefix=replay_guard.IDEMPOTENCY_KEY_PREFIX)
        data = {"tenantId": tenant.tenant_id, "idempotencyKey": key, **request}
    else:
        layer.configure(replay_guard.replay_config(), key_prefix=replay_guard.KEY_PREFIX)
        authenticated = AuthenticatedRequest(tenant, key, method.upper(), path, payload_sha256)
        data = replay_guard.replay_record(authenticated)
    layer.save_inprogress(data=data, remaining_time_in_millis=60_000)


def accepted(answer: Answer) -> dict[str, Any]:
    """The body of an answer that accepted work, once its deletion request is checked: a well-formed
    ``deletionRequestId``, the ``Location`` of its status resource, and (bulk) a request status. Returns the body
    without those, for the test to compare."""
    body = dict(answer.body)
    request_id = body.pop("deletionRequestId")
    assert is_request_id(request_id), request_id
    assert answer.headers["location"] == f"/deletions/{request_id}"
    if "queued" in body:
        assert body.pop("status") in {"accepted", "in_progress", "completed", "completed_with_failures"}
    return body
