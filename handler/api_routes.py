"""The API Gateway trigger: routes, signature check, error mapping and the audit line, for REST and HTTP APIs.

The routes are declared once on a ``Router`` and included into an ``APIGatewayRestResolver`` (payload 1.0) and
an ``APIGatewayHttpResolver`` (payload 2.0, also Function URLs); ``handle_api_event`` picks one by the event's
``version``. Routes stay thin: they read the request and call ``api_intake``. Domain errors become responses
in one place (the ``exception_handler`` functions below). Every answer is JSON, and no client input yields a
5xx: only our own dependencies being down does (503 with ``Retry-After``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext

from api_intake import (
    BulkResult,
    InvalidRequestBody,
    QueueUnavailable,
    RequestAudit,
    delete_now_or_enqueue,
    echo,
    enqueue_bulk,
    parse_bulk_body,
    reject_invalid_id,
)
from deadline import Deadline
from deletion import MAX_AUDIT_VALUE_LENGTH, Outcome, Trigger
from dependencies import get_dependencies
from observability import MetricName, count, logger, metrics
from parser_run_ids import InvalidParserRunId
from settings import ConfigurationError, get_settings
from webhook_signature import SignatureRejected, SigningSecretUnavailable, WebhookVerifier

RETRY_AFTER_S: Final = 30
# 1,000 ids of 255 characters in JSON is about 260 KB; anything much larger is not a request we serve.
MAX_BODY_BYTES: Final = 512 * 1024
# Longest id list repeated in the request's audit line (each id also has its own outcome line).
MAX_LOGGED_IDS: Final = 100

# (method, rule) of every route, in Powertools' rule syntax; tests compare it with openapi.yaml.
ROUTES: Final = (("DELETE", "/parser_runs/<parser_run_id>"), ("POST", "/deletions"))


class BodyTooLarge(ValueError):
    """The request body exceeds ``MAX_BODY_BYTES``."""


class MethodNotAllowed(Exception):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"method not allowed; use {', '.join(allowed)}")
        self.allowed = allowed


@dataclass
class _Exchange:
    """What the request's audit line reports, filled in as the request is handled."""

    audit: RequestAudit
    parser_run_ids: list[str] = field(default_factory=list)
    outcome: str = "unhandled"


_exchange: ContextVar[_Exchange] = ContextVar("api_exchange")


def _note(outcome: str, parser_run_ids: list[str] | None = None) -> None:
    exchange = _exchange.get(None)
    if exchange is not None:
        exchange.outcome = outcome
        if parser_run_ids is not None:
            exchange.parser_run_ids = parser_run_ids


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


# ---- Authentication: every request, matched route or not, passes here first.


@cache
def _verifier(secret_id: str, max_age_s: int) -> WebhookVerifier:
    return WebhookVerifier(secret_id, max_age_s=max_age_s)


def raw_body(event: dict[str, Any]) -> bytes:
    """The body's bytes exactly as the client sent them (API Gateway base64-encodes binary bodies)."""
    body = event.get("body")
    if not isinstance(body, str):
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode()
    return body.encode()


def _require_signature(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
    settings = get_settings()
    if settings.webhook_signing_secret_id is not None:
        verifier = _verifier(settings.webhook_signing_secret_id, settings.secret_max_age_s)
        verifier.verify(app.current_event.headers, raw_body(app.current_event.raw_event))
    return next_middleware(app)


router.use([_require_signature])


# ---- Routes


def _audit() -> RequestAudit:
    exchange = _exchange.get(None)
    return exchange.audit if exchange is not None else RequestAudit()


@router.delete("/parser_runs/<parser_run_id>")
def delete_parser_run(parser_run_id: str) -> Response[Any]:
    """Delete now; on any other outcome queue it (202); 503 when even that fails."""
    audit = _audit()
    _note(Outcome.INVALID.value, [echo(parser_run_id)])
    parser_run_id = reject_invalid_id(parser_run_id, audit)
    deps = get_dependencies()
    settings = deps.settings
    invocation_deadline = Deadline.from_context(router.lambda_context, settings.deadline_safety_margin_s)
    _note(Outcome.FAILED.value, [parser_run_id])
    outcome = delete_now_or_enqueue(
        parser_run_id,
        client=deps.extend_client,
        settings=settings,
        deadline=invocation_deadline.capped(settings.api_sync_budget_s),
        invocation_deadline=invocation_deadline,
        audit=audit,
    )
    _note(outcome.value)
    status = {Outcome.DELETED: 200, Outcome.NOT_FOUND: 404}.get(outcome, 202)
    return _json(status, {"parserRunId": parser_run_id, "status": outcome.value})


@router.post("/deletions")
def create_deletions() -> Response[Any]:
    """Queue up to 1,000 ids; 202 with what was queued and what was rejected, and why."""
    body = raw_body(router.current_event.raw_event)
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes, got {len(body)}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestBody("the body must be UTF-8 JSON") from None
    values = parse_bulk_body(text)
    _note(Outcome.FAILED.value, list(dict.fromkeys(echo(value) for value in values if isinstance(value, str))))
    settings = get_settings()
    deadline = Deadline.from_context(router.lambda_context, settings.deadline_safety_margin_s)
    result: BulkResult = enqueue_bulk(values, settings=settings, audit=_audit(), deadline=deadline)
    _note(Outcome.QUEUED.value if not result.rejected else "partially_queued" if result.queued else "rejected")
    return _json(
        202,
        {
            "queued": len(result.queued),
            "rejected": [{"parserRunId": item.parser_run_id, "reason": item.reason} for item in result.rejected],
        },
    )


# ---- Errors to responses, in one place: ERROR_RESPONSES maps each domain error to its handler.


def _signature_rejected(error: SignatureRejected) -> Response[Any]:
    count(MetricName.SIGNATURE_REJECTED)
    _note("signature_rejected", [])
    return _json(401, {"message": f"invalid webhook signature: {error}"})


def _invalid_id(error: InvalidParserRunId) -> Response[Any]:
    return _json(400, {"message": str(error)})


def _invalid_body(error: InvalidRequestBody) -> Response[Any]:
    _note("bad_request", [])
    return _json(400, {"message": str(error)})


def _too_large(error: BodyTooLarge) -> Response[Any]:
    _note("bad_request", [])
    return _json(413, {"message": str(error)})


def _queue_unavailable(error: QueueUnavailable) -> Response[Any]:
    return _unavailable(f"{error}; retry later")


def _secret_unavailable(error: SigningSecretUnavailable) -> Response[Any]:
    logger.error("cannot verify webhook signatures", extra={"reason": str(error)})
    _note("unavailable", [])
    return _unavailable("request signatures cannot be verified right now; retry later")


def _misconfigured(error: ConfigurationError) -> Response[Any]:
    logger.error("the function is misconfigured", extra={"reason": str(error)})
    _note("unavailable")
    return _unavailable("the service is not available right now; retry later")


def _unavailable(message: str) -> Response[Any]:
    return _json(503, {"message": message}, headers={"Retry-After": str(RETRY_AFTER_S)})


def _method_not_allowed(error: MethodNotAllowed) -> Response[Any]:
    _note("no_route", [])
    return _json(405, {"message": str(error)}, headers={"Allow": ", ".join(error.allowed)})


_ROUTE_PATTERNS: Final = tuple((method, re.compile(re.sub(r"<\w+>", "[^/]+", rule))) for method, rule in ROUTES)


def _not_found(_: NotFoundError) -> Response[Any]:
    path = router.current_event.path
    allowed = tuple(method for method, pattern in _ROUTE_PATTERNS if pattern.fullmatch(path))
    if router.current_event.http_method.upper() in allowed:
        # The route exists but the router's pattern refused the id's characters: an invalid id (400), not a 405.
        _note(Outcome.INVALID.value, [echo(path.rsplit("/", 1)[-1])])
        reject_invalid_id(path.rsplit("/", 1)[-1], _audit())
    if allowed:
        raise MethodNotAllowed(allowed)
    _note("no_route", [])
    return _json(404, {"message": "no such route"})


def _unexpected(error: Exception) -> Response[Any]:
    # A bug or an outage we did not foresee: say so without details, and keep the details in the log.
    logger.exception("unexpected error while handling an API request")
    _note("error")
    return _json(500, {"message": "internal error"})


ERROR_RESPONSES: Final[dict[type[Exception], Callable[[Any], Response[Any]]]] = {
    SignatureRejected: _signature_rejected,
    InvalidParserRunId: _invalid_id,
    InvalidRequestBody: _invalid_body,
    BodyTooLarge: _too_large,
    QueueUnavailable: _queue_unavailable,
    SigningSecretUnavailable: _secret_unavailable,
    ConfigurationError: _misconfigured,
    MethodNotAllowed: _method_not_allowed,
    NotFoundError: _not_found,
    Exception: _unexpected,
}
for _error_class, _handler in ERROR_RESPONSES.items():
    router.exception_handler(_error_class)(_handler)

rest_app: Final = APIGatewayRestResolver()
rest_app.include_router(router)
http_app: Final = APIGatewayHttpResolver()
http_app.include_router(router)


# ---- Entry point


def _text(value: object) -> str | None:
    return value[:MAX_AUDIT_VALUE_LENGTH] if isinstance(value, str) and value else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def request_audit(event: dict[str, Any]) -> RequestAudit:
    """Caller, source IP, webhook id and request id from either payload version, tolerating missing parts."""
    context = _mapping(event.get("requestContext"))
    headers = {name.lower(): value for name, value in _mapping(event.get("headers")).items() if isinstance(name, str)}
    if event.get("version") == "2.0":
        authorizer = _mapping(context.get("authorizer"))
        caller = (
            _mapping(authorizer.get("lambda")).get("apiKeyId")
            or _mapping(_mapping(authorizer.get("jwt")).get("claims")).get("sub")
            or _mapping(authorizer.get("iam")).get("userId")
        )
        source_ip = _mapping(context.get("http")).get("sourceIp")
    else:
        identity = _mapping(context.get("identity"))
        caller = identity.get("apiKeyId")
        source_ip = identity.get("sourceIp")
    return RequestAudit(
        request_id=_text(context.get("requestId")),
        caller_api_key_id=_text(caller),
        webhook_id=_text(headers.get("webhook-id")),
        source_ip=_text(source_ip),
    )


def handle_api_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_dimension(name="trigger", value=Trigger.API.value)
    exchange = _Exchange(audit=request_audit(event))
    if exchange.audit.request_id:
        logger.set_correlation_id(exchange.audit.request_id)
    app = http_app if event.get("version") == "2.0" else rest_app
    token = _exchange.set(exchange)
    try:
        response: dict[str, Any] = app.resolve(event, context)
    finally:
        _exchange.reset(token)
    _log_request(event, response, exchange)
    return response


def _log_request(event: dict[str, Any], response: dict[str, Any], exchange: _Exchange) -> None:
    """The request's audit line: who, what, and how it ended."""
    context = _mapping(event.get("requestContext"))
    method = event.get("httpMethod") or _mapping(context.get("http")).get("method")
    path = event.get("path") if event.get("version") != "2.0" else event.get("rawPath")
    ids = exchange.parser_run_ids
    logger.info(
        "api request",
        extra={
            "http_method": _text(method),
            "path": echo(path) if isinstance(path, str) else None,
            "status_code": response.get("statusCode"),
            "request_outcome": exchange.outcome,
            "parser_run_ids": ids[:MAX_LOGGED_IDS],
            "parser_run_id_count": len(ids),
            "trigger": Trigger.API.value,
            "audit": exchange.audit.fields(),
        },
    )
