"""The API's routes and the check every request passes first, declared once on a Powertools ``Router``.

Every request is a tenant's: the middleware authenticates it (``logic.authentication``) and serves it once
(``logic.replay_guard``), before any route runs. Routes stay thin: they read the request, call one use case in
``logic.api_use_cases`` on the tenant's behalf, record the outcome, and shape the answer. Errors are raised, and
``api_errors`` turns each into its response.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from parser_run_deleter.intake.api_audit import caller_identity, current_request
from parser_run_deleter.intake.api_bodies import InvalidRequestBody, parse_bulk_body
from parser_run_deleter.logic.api_use_cases import (
    ApiServices,
    BulkResult,
    ItemRefused,
    RequestPage,
    cancel_deletion_request,
    delete_now_or_enqueue,
    enqueue_bulk,
    read_deletion_request,
    reject_invalid_id,
)
from parser_run_deleter.logic.ledger_records import RequestRecord
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ownership import require_supported_policy
from parser_run_deleter.logic.replay_guard import StoredResponse
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.shared.extend_resources import Resource, has_source_file, parse_run_resource, resolve_resource
from parser_run_deleter.shared.settings import ConfigurationError
from parser_run_deleter.shared.time_budget import Deadline

# 1,000 ids of 255 characters in JSON is about 260 KB; anything much larger is not a request we serve.
MAX_BODY_BYTES: Final = 512 * 1024

# (method, rule) of every route, in Powertools' rule syntax; tests compare it with openapi.yaml.
ROUTES: Final = (
    ("DELETE", "/<resource>/<item_id>"),
    ("POST", "/deletions"),
    ("GET", "/deletions/<deletion_request_id>"),
    ("POST", "/deletions/<deletion_request_id>/cancel"),
)
# A page of the status resource's items: 100 unless the caller asks for between 1 and 1,000.
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255
# Methods whose requests carry no body: one that does is refused (400) before authentication.
BODYLESS_METHODS: Final = frozenset({"DELETE", "GET"})


class BodyTooLarge(ValueError):
    """The request body exceeds ``MAX_BODY_BYTES``."""


class UnsupportedMediaType(ValueError):
    """The body is declared as something other than JSON."""


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/merge-patch+json``, parameters aside."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _location(request_id: str) -> dict[str, str]:
    return {"Location": f"/deletions/{request_id}"}


class MethodNotAllowed(Exception):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"method not allowed; use {', '.join(allowed)}")
        self.allowed = allowed


# The one path segment that is this API's own, never an Extend resource type.
OWN_COLLECTION: Final = "deletions"


class InvalidQuery(ValueError):
    """A query parameter is not what the route accepts; the message says which, and is safe to return."""


router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated
# The API function's services, for the request being served (``serving_with``). A context variable, not the
# resolver's context: the router is shared by two resolvers (REST and HTTP APIs), and reads only the last one's.
_services: ContextVar[Callable[[], ApiServices]] = ContextVar("api_services")


@contextmanager
def serving_with(services: Callable[[], ApiServices]) -> Iterator[None]:
    token = _services.set(services)
    try:
        yield
    finally:
        _services.reset(token)


def services() -> ApiServices:
    """Built on first use: a misconfigured function is a 503 from the error table, not a crash."""
    return _services.get()()


# ---- Authentication: every request, matched route or not, passes here first.


def raw_body(event: dict[str, Any]) -> bytes:
    """The body's bytes exactly as the client sent them (API Gateway base64-encodes binary bodies)."""
    body = event.get("body")
    if not isinstance(body, str):
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestBody("the body is flagged as base64 but is not valid base64") from None
    return body.encode()


def _stored(response: Response[Any]) -> StoredResponse:
    """A response as the replay guard remembers it: JSON-serialisable, the body as it would be sent."""
    body = response.body
    # Serialised as Powertools serialises a JSON body, so that a replay is the first response byte for byte.
    text = (
        body.decode()
        if isinstance(body, bytes)
        else body
        if isinstance(body, str)
        else json.dumps(body, separators=(",", ":"))
    )
    headers = {name: value if isinstance(value, str) else ", ".join(value) for name, value in response.headers.items()}
    return {"status": response.status_code, "headers": headers, "body": text}


def _from_stored(stored: StoredResponse) -> Response[Any]:
    return Response(status_code=int(stored["status"]), body=stored["body"], headers=dict(stored["headers"]))


def _authenticate_and_serve_once(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """No request gets past here without a tenant and that tenant's signature; a replayed one gets the first
    response back without running again."""
    api = services()
    request = current_request()
    event = app.current_event
    body = raw_body(event.raw_event)
    if body and request.method.upper() in BODYLESS_METHODS:
        # Refused before anything is looked up: a body here could only be an attempt to pass off another
        # request's signed payload (signing contract v1 signed a body alone).
        raise InvalidRequestBody(f"a {request.method.upper()} request takes no body")
    caller = caller_identity(event.raw_event, api.settings.tenant_claim)
    signed_path = request.route_path + _signed_query(request.method, event.query_string_parameters)
    authenticated = api.authenticator.authenticate(
        caller, event.headers, method=request.method, route_path=signed_path, body=body
    )
    request.authenticated_as(authenticated.tenant)
    require_supported_policy(authenticated.tenant, api.settings.extend.extend_api_version)
    idempotency_key = _idempotency_key(event.headers or {}) if request.method.upper() != "GET" else None
    guard = api.replay_guard

    def execute() -> StoredResponse:
        if idempotency_key is None:
            return _stored(next_middleware(app))
        return guard.serve_once_per_key(
            authenticated, idempotency_key, lambda: _stored(next_middleware(app)), lambda_context=app.lambda_context
        )

    stored = guard.serve_once(authenticated, execute, lambda_context=app.lambda_context)
    return _from_stored(stored)


# The one query a DELETE takes. Unlike a GET's paging, it changes what is deleted: it is part of the signed request
# line, in this one spelling, so that no one can add it to (or strip it from) a signed request.
INCLUDE_FILE_QUERY: Final = "?include=file"


def _signed_query(method: str, parameters: dict[str, str] | None) -> str:
    """What of the query a request's signature covers: a DELETE's ``include=file``; nothing of a GET's paging."""
    if method.upper() != "DELETE" or not parameters:
        return ""
    if parameters != {"include": "file"}:
        raise InvalidQuery("a DELETE takes one query parameter, include=file (delete the run's source file too)")
    return INCLUDE_FILE_QUERY


def _idempotency_key(headers: dict[str, str]) -> str | None:
    """The ``Idempotency-Key`` header: up to 255 printable ASCII characters, or none."""
    value = next((v for name, v in headers.items() if name.lower() == "idempotency-key"), None)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidRequestBody(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
    return value


router.use([_authenticate_and_serve_once])


def _tenant() -> Tenant:
    tenant = current_request().tenant
    if tenant is None:  # the middleware runs first, so a route never meets this
        raise ConfigurationError("a route ran without an authenticated tenant")
    return tenant


# ---- Routes


@router.delete("/<resource>/<item_id>")
def delete_item(resource: str, item_id: str) -> Response[Any]:
    """Delete one item of any of Extend's resource types now; on any other outcome queue it (202); 503 when even
    that fails."""
    if resource == OWN_COLLECTION:
        raise MethodNotAllowed(("GET",))  # a deletion request is followed or cancelled, never deleted
    request = current_request()
    api = services()
    settings = api.settings
    extend_resource = resolve_resource(resource, settings.extend.extend_api_version)
    request.name_ids([item_id])
    parser_run_id = reject_invalid_id(item_id, request.audit)
    if router.current_event.query_string_parameters:  # include=file, as the middleware checked
        return _delete_with_source_file(parser_run_id, extend_resource)
    invocation_deadline = Deadline.from_context(router.lambda_context, settings.deadline_safety_margin_s)
    result = delete_now_or_enqueue(
        parser_run_id,
        resource=extend_resource,
        tenant=_tenant(),
        services=api,
        deadline=invocation_deadline.capped(settings.api_sync_budget_s),
        invocation_deadline=invocation_deadline,
        audit=request.audit,
    )
    request.finish(result.outcome.value)
    body: dict[str, Any] = {
        "id": parser_run_id,
        "resource": extend_resource.value,
        "status": result.outcome.value,
        "deletionRequestId": result.request.request_id,
    }
    if extend_resource is parse_run_resource(settings.extend.extend_api_version):
        body["parserRunId"] = parser_run_id  # as answered before there were other types: callers read it
    if result.outcome is Outcome.FAILED:
        # Extend refused the deletion for good: retrying, now or from the queue, would meet the same answer.
        body["reason"] = result.reason or "Extend refused the deletion"
    status = {Outcome.DELETED: 200, Outcome.NOT_FOUND: 404, Outcome.FAILED: 502}.get(result.outcome, 202)
    return json_response(status, body, _location(result.request.request_id))


@router.post("/deletions")
def create_deletions() -> Response[Any]:
    """Queue up to 1,000 ids; 202 with what was queued and what was rejected, and why."""
    headers = {name.lower(): value for name, value in (router.current_event.headers or {}).items()}
    if not is_json_media_type(headers.get("content-type")):
        raise UnsupportedMediaType("the body must be sent as Content-Type: application/json")
    body = raw_body(router.current_event.raw_event)
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes, got {len(body)}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestBody("the body must be UTF-8 JSON") from None
    bulk = parse_bulk_body(text)
    request = current_request()
    request.name_ids(bulk.values)
    api = services()
    deadline = Deadline.from_context(router.lambda_context, api.settings.deadline_safety_margin_s)
    result: BulkResult = enqueue_bulk(
        bulk.values,
        tenant=_tenant(),
        services=api,
        audit=request.audit,
        deadline=deadline,
        typed_by_prefix=bulk.typed_by_prefix,
        dry_run=bulk.dry_run,
        include_file=bulk.include_file,
    )
    request.finish(Outcome.QUEUED.value if not result.rejected else "partially_queued" if result.queued else "rejected")
    return json_response(
        202,
        {
            "deletionRequestId": result.request.request_id,
            "status": result.request.status().value,
            "queued": len(result.queued),
            "rejected": [_rejection(item.parser_run_id, item.reason, bulk.typed_by_prefix) for item in result.rejected],
            **({"dryRun": True} if bulk.dry_run else {}),
        },
        _location(result.request.request_id),
    )


def _delete_with_source_file(item_id: str, resource: Resource) -> Response[Any]:
    """A run and its source file: two items, the file deleted after the run and found through the run's ``GET``. It
    is a request of its own on the queue (202), followed at ``Location`` like a bulk request."""
    if not has_source_file(resource):
        raise InvalidQuery(f"include=file is for runs, which have a source file; {resource.value} have none")
    request = current_request()
    api = services()
    deadline = Deadline.from_context(router.lambda_context, api.settings.deadline_safety_margin_s)
    result = enqueue_bulk(
        [item_id],
        tenant=_tenant(),
        services=api,
        audit=request.audit,
        deadline=deadline,
        resource=resource,
        include_file=True,
    )
    if result.rejected:  # the tenant's policy cannot prove a run of this type its own (never queued)
        raise ItemRefused(result.rejected[0].reason)
    request.finish(Outcome.QUEUED.value)
    body = {"id": item_id, "resource": resource.value, "status": Outcome.QUEUED.value}
    return json_response(
        202, {**body, "deletionRequestId": result.request.request_id}, _location(result.request.request_id)
    )


def _rejection(value: str, reason: str, typed_by_prefix: bool) -> dict[str, str]:
    return {"id" if typed_by_prefix else "parserRunId": value, "reason": reason}


@router.post("/deletions/<deletion_request_id>/cancel")
def cancel_deletions(deletion_request_id: str) -> Response[Any]:
    """Cancel what of the tenant's request is not yet attempted: 202 with the request's status."""
    if raw_body(router.current_event.raw_event).strip():
        raise InvalidRequestBody("a cancel takes no body")
    request = current_request()
    api = services()
    deadline = Deadline.from_context(router.lambda_context, api.settings.deadline_safety_margin_s)
    cancellation = cancel_deletion_request(
        deletion_request_id, tenant=_tenant(), services=api, audit=request.audit, deadline=deadline
    )
    request.finish(Outcome.CANCELLED.value)
    record = cancellation.request
    body = {**_status_fields(record), "cancelled": cancellation.cancelled}
    return json_response(202, body, _location(record.request_id))


def _status_fields(record: RequestRecord) -> dict[str, Any]:
    """What the status resource and a cancel's answer say of a request."""
    fields: dict[str, Any] = {
        "deletionRequestId": record.request_id,
        "status": record.status().value,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at or record.created_at,
        "counts": record.shown_counts(),
        "overdue": record.overdue(),
    }
    if record.due_by is not None:
        fields["dueBy"] = record.due_by
    if record.dry_run:
        fields["dryRun"] = True
    if record.cancelled_at is not None:
        fields["cancelledAt"] = record.cancelled_at
    return fields


@router.get("/deletions/<deletion_request_id>")
def get_deletion_request(deletion_request_id: str) -> Response[Any]:
    """The request's status, its counts, and a page of its runs: the tenant's own requests only."""
    request = current_request()
    parameters = router.current_event.query_string_parameters or {}
    limit = _page_size(parameters.get("limit"))
    after = _token_value(parameters.get("nextToken"))
    page: RequestPage = read_deletion_request(
        deletion_request_id, tenant=_tenant(), services=services(), limit=limit, after=after
    )
    request.finish("read")
    record = page.request
    body: dict[str, Any] = {**_status_fields(record), "items": [_item(run) for run in page.runs]}
    if page.next_after is not None:
        body["nextToken"] = base64.urlsafe_b64encode(page.next_after.encode()).decode().rstrip("=")
    if record.callback:
        body["callback"] = dict(record.callback)
    return json_response(200, body)


def _item(run: Any) -> dict[str, Any]:
    item = {
        "parserRunId": run.parser_run_id,
        "id": run.parser_run_id,
        "resource": run.resource,
        "outcome": run.outcome.value,
        "completedAt": run.completed_at,
        "extendRequestId": run.extend_request_id,
        "attempts": run.attempts,
    }
    if run.reason:
        item["reason"] = run.reason
    return item


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def _token_value(token: str | None) -> str | None:
    """The run id a ``nextToken`` continues after; a token this API did not issue is refused."""
    if token is None:
        return None
    try:
        value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidQuery("nextToken is not one this API issued") from None
    if not value or len(value) > 300 or not value.isprintable():
        raise InvalidQuery("nextToken is not one this API issued")
    return value
