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
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.queue_messages import MAX_AUDIT_VALUE_LENGTH
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
    parser_run_ids: list[str] = field(default_factory=list)
    outcome: str = UNHANDLED

    def name_ids(self, values: list[object]) -> None:
        """The ids the request names, in order, once each: valid ones whole, anything else as a bounded echo."""
        self.parser_run_ids = list(dict.fromkeys(_shown(value) for value in values if isinstance(value, str)))

    def finish(self, outcome: str) -> None:
        self.outcome = outcome


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


def api_request(event: dict[str, Any]) -> ApiRequest:
    context = _mapping(event.get("requestContext"))
    if event.get("version") == "2.0":
        method, path = _mapping(context.get("http")).get("method"), event.get("rawPath")
    else:
        method, path = event.get("httpMethod"), event.get("path")
    return ApiRequest(
        method=_text(method) or "",
        path=path if isinstance(path, str) else "",
        audit=request_audit(event),
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
            "audit": request.audit.fields(),
        },
    )
