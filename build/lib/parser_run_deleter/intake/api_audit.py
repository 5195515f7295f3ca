"""Who asked and how it ended: the caller's audit fields from an API Gateway event, and one audit line per request.

The request being served is held in a context variable. A route records the ids a request names when it has read
them, and its outcome once it is known; an error handler records the outcome of a request that ends in an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from parser_run_deleter.logic.api_use_cases import RequestAudit, echo
from parser_run_deleter.logic.authentication import CallerIdentity
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.queue_messages import MAX_AUDIT_VALUE_LENGTH
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.shared.observability import logger
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id

# Longest id list repeated in the request's audit line (each id also has its own outcome line).
MAX_LOGGED_IDS: Final = 100
UNHANDLED: Final = "unhandled"


@dataclass
class ApiRequest:
    """One request as its audit line reports it."""

    method: str
    path: str
    audit: RequestAudit
    # The path of the route, without a stage or a custom domain's base path: what a bodyless request signs.
    route_path: str = ""
    tenant: Tenant | None = None
    # The tenant a refused caller claimed to be (its key or claim named one): logged, so refusals can be traced.
    claimed_tenant_id: str | None = None
    parser_run_ids: list[str] = field(default_factory=list)
    outcome: str = UNHANDLED

    def name_ids(self, values: list[object]) -> None:
        """The ids the request names, in order, once each: valid ones whole, anything else as a bounded echo."""
        self.parser_run_ids = list(dict.fromkeys(_shown(value) for value in values if isinstance(value, str)))

    def finish(self, outcome: str) -> None:
        self.outcome = outcome

    def authenticated_as(self, tenant: Tenant) -> None:
        self.tenant = tenant
        logger.append_keys(tenant_id=tenant.tenant_id)

    def refused_as(self, tenant_id: str | None) -> None:
        if tenant_id is not None:
            self.claimed_tenant_id = tenant_id
            logger.append_keys(tenant_id=tenant_id)


_current: ContextVar[ApiRequest] = ContextVar("api_request")


def _shown(value: str) -> str:
    try:
        return validate_parser_run_id(value)
    except InvalidParserRunId:
        return echo(value)


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


def route_path(event: dict[str, Any], path: str) -> str:
    """The API's own path for the request: the route's template (``/parser_runs/{id}``) with its path parameters
    put back, so neither a stage nor a custom domain's base path is in it. Without a route, the path as given."""
    if event.get("version") == "2.0":
        route_key = event.get("routeKey")
        template = route_key.split(" ", 1)[1] if isinstance(route_key, str) and " " in route_key else None
    else:
        template = event.get("resource") if isinstance(event.get("resource"), str) else None
    if not template or "{proxy" in template or not template.startswith("/"):
        return path
    parameters = _mapping(event.get("pathParameters"))
    for name, value in parameters.items():
        if isinstance(value, str):
            template = template.replace("{" + str(name) + "}", value)
    return template if "{" not in template else path


def caller_identity(event: dict[str, Any], tenant_claim: str | None) -> CallerIdentity:
    """The REST API's key id, or (HTTP API) the tenant named by the JWT claim ``tenant_claim``."""
    context = _mapping(event.get("requestContext"))
    if event.get("version") == "2.0":
        claims = _mapping(_mapping(_mapping(context.get("authorizer")).get("jwt")).get("claims"))
        claim = claims.get(tenant_claim) if tenant_claim else None
        return CallerIdentity(tenant_claim=claim if isinstance(claim, str) and claim else None)
    key_id = _mapping(context.get("identity")).get("apiKeyId")
    return CallerIdentity(api_key_id=key_id if isinstance(key_id, str) and key_id else None)


def api_request(event: dict[str, Any]) -> ApiRequest:
    context = _mapping(event.get("requestContext"))
    if event.get("version") == "2.0":
        method, path = _mapping(context.get("http")).get("method"), event.get("rawPath")
    else:
        method, path = event.get("httpMethod"), event.get("path")
    path = path if isinstance(path, str) else ""
    return ApiRequest(
        method=_text(method) or "",
        path=path,
        audit=request_audit(event),
        route_path=route_path(event, path),
    )


@contextmanager
def serving(request: ApiRequest) -> Iterator[ApiRequest]:
    """Make ``request`` the one ``current_request`` returns while it is served."""
    token = _current.set(request)
    try:
        yield request
    finally:
        _current.reset(token)


def current_request() -> ApiRequest:
    """The request being served; outside ``serving`` (a route called directly), an anonymous one."""
    request = _current.get(None)
    return request if request is not None else ApiRequest(method="", path="", audit=RequestAudit())


def log_request(request: ApiRequest, status_code: object) -> None:
    """The request's audit line: who, what, and how it ended."""
    ids = request.parser_run_ids
    logger.info(
        "api request",
        extra={
            "http_method": request.method or None,
            "path": echo(request.path) if request.path else None,
            "status_code": status_code,
            "request_outcome": request.outcome,
            "parser_run_ids": ids[:MAX_LOGGED_IDS],
            "parser_run_id_count": len(ids),
            "trigger": Trigger.API.value,
            "tenant_id": request.tenant.tenant_id if request.tenant else request.claimed_tenant_id,
            "audit": request.audit.fields(),
        },
    )
