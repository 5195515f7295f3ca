"""API-path helpers: API Gateway events from devstack.events, invocation, signing, and queue reads.

Every response that ``invoke`` returns has been checked against openapi.yaml, so each API test is also a
contract test.
"""

from __future__ import annotations

import base64
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

import standardwebhooks

from devstack.events import SAMPLE_API_KEY_ID, SAMPLE_SOURCE_IP, sample_http_event, sample_rest_event
from devstack.lambda_context import LocalLambdaContext
from parser_run_deleter.entrypoints import api_function
from tests.support.openapi_contract import check_response
from tests.support.secret_guard import register_secret
from tests.support.stacks import InProcessStack

EVENTS = Path(__file__).resolve().parents[2] / "events"
API_KEY_ID = SAMPLE_API_KEY_ID  # requestContext.identity.apiKeyId in the REST samples
SOURCE_IP = SAMPLE_SOURCE_IP


@cache
def _sample(name: str) -> str:
    return (EVENTS / name).read_text()


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(_sample(name))
    return event


def _with_content_type(body: str | bytes | None, headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """A body goes out declared as JSON, as any client sends one, unless the test declares it otherwise."""
    if body is None or any(name.lower() == "content-type" for name in headers or {}):
        return dict(headers) if headers is not None else None
    return {"content-type": "application/json", **(headers or {})}


def _route(path: str) -> tuple[str, dict[str, str] | None]:
    """The template's resource for ``path`` and its path parameters (a path matching no route is its own)."""
    if path.startswith("/parser_runs/"):
        return "/parser_runs/{id}", {"id": path.removeprefix("/parser_runs/")}
    return path, None


def rest_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    base64_body: bool = False,
    api_key_id: str | None = API_KEY_ID,
) -> dict[str, Any]:
    """A REST API (payload 1.0) proxy event, as events/apigw_rest_delete.json is built."""
    resource, parameters = _route(path)
    return sample_rest_event(
        method,
        path,
        resource=resource,
        path_parameters=parameters,
        request_id=request_id or str(uuid.uuid4()),
        body=body,
        base64_body=base64_body,
        headers=_with_content_type(body, headers),
        api_key_id=api_key_id,
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
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event, as events/apigw_http_delete.json is built."""
    resource, parameters = _route(path)
    return sample_http_event(
        method,
        path,
        route_key=f"{method} {resource}",
        path_parameters=parameters,
        request_id=request_id or uuid.uuid4().hex[:16],
        body=body,
        base64_body=base64_body,
        headers=_with_content_type(body, headers),
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
        method, path = event["httpMethod"], event["path"]
    check_response(method, path, answer.status, answer.headers, answer.body)
    return answer


def new_webhook_secret() -> str:
    encoded = base64.b64encode(secrets.token_bytes(24)).decode()
    register_secret(encoded)
    return register_secret(f"whsec_{encoded}")


def signature_headers(
    secret: str, body: str | bytes | None, *, webhook_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, made by the standardwebhooks library (an independent signer)."""
    timestamp = at or datetime.now(tz=UTC)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    payload = body.decode() if isinstance(body, bytes) else (body or "")
    signature = standardwebhooks.Webhook(secret).sign(webhook_id, timestamp, payload)
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
    secret: str
    secret_arn: str

    def headers(self, body: str | bytes | None, **kwargs: Any) -> dict[str, str]:
        return signature_headers(self.secret, body, **kwargs)
