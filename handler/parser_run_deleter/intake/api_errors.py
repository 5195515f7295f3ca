"""Errors to responses, in one place: each domain error, its status, and the request outcome it records.

Every answer is JSON, and no client input yields a 5xx: only our own dependencies being down does (503 with
``Retry-After``), or a bug (500, details in the log only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError

from parser_run_deleter.intake.api_audit import current_request
from parser_run_deleter.intake.api_bodies import InvalidRequestBody
from parser_run_deleter.intake.api_routes import (
    OWN_COLLECTION,
    ROUTES,
    BodyTooLarge,
    InvalidQuery,
    MethodNotAllowed,
    UnsupportedMediaType,
    json_response,
)
from parser_run_deleter.logic.api_use_cases import (
    DeletionRequestNotFound,
    ItemRefused,
    QueueUnavailable,
    reject_invalid_id,
)
from parser_run_deleter.logic.authentication import AuthenticationUnavailable, Forbidden, NotAuthenticated
from parser_run_deleter.logic.ledger_records import LedgerUnavailable, OverCap
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.replay_guard import ReplayConflict, ReplayInProgress
from parser_run_deleter.shared.extend_resources import UnknownResource
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId
from parser_run_deleter.shared.settings import ConfigurationError

RETRY_AFTER_S: Final = 30
# ``<resource>`` is any segment but the API's own collection (``/deletions/{id}`` is not an Extend resource).
_ROUTE_PATTERNS: Final = tuple(
    (method, re.compile(re.sub(r"<\w+>", "[^/]+", rule.replace("<resource>", f"(?!{OWN_COLLECTION}/)[^/]+"))))
    for method, rule in ROUTES
)


def _answer(outcome: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    current_request().finish(outcome)
    return json_response(status, {"message": message}, headers)


def _unavailable(outcome: str, message: str) -> Response[Any]:
    return _answer(outcome, 503, message, {"Retry-After": str(RETRY_AFTER_S)})


# One message for every refusal of the caller: which check failed (an unknown key, a disabled tenant, a stale or
# wrong signature) goes to the log and a metric, never to the caller.
FORBIDDEN_MESSAGE: Final = "forbidden"
UNAUTHENTICATED_MESSAGE: Final = "the request is not signed with a current signing secret of this API key's tenant"


def _forbidden(error: Forbidden) -> Response[Any]:
    current_request().refused_as(error.tenant_id)
    count(MetricName.TENANT_REFUSED)
    logger.warning("caller refused", extra={"reason": str(error)})
    return _answer("forbidden", 403, FORBIDDEN_MESSAGE)


def _not_authenticated(error: NotAuthenticated) -> Response[Any]:
    current_request().refused_as(error.tenant_id)
    count(MetricName.SIGNATURE_REJECTED)
    logger.warning("signature refused", extra={"reason": str(error)})
    return _answer("signature_rejected", 401, UNAUTHENTICATED_MESSAGE)


def _replay_conflict(error: ReplayConflict) -> Response[Any]:
    return _answer("replay_conflict", 422, f"{error}: a new request needs a new one")


def _replay_in_progress(error: ReplayInProgress) -> Response[Any]:
    return _answer("replay_in_progress", 409, f"{error}; retry it later, unchanged")


def _replay_store_unavailable(error: IdempotencyPersistenceLayerError) -> Response[Any]:
    logger.error("cannot read or write the replay store", extra={"error_type": type(error).__name__})
    return _unavailable("unavailable", "requests cannot be checked for replays right now; retry later")


def _invalid_id(error: InvalidParserRunId) -> Response[Any]:
    return _answer(Outcome.INVALID.value, 400, str(error))


def _invalid_body(error: InvalidRequestBody) -> Response[Any]:
    return _answer("bad_request", 400, str(error))


def _too_large(error: BodyTooLarge) -> Response[Any]:
    return _answer("bad_request", 413, str(error))


def _unsupported_media_type(error: UnsupportedMediaType) -> Response[Any]:
    return _answer("bad_request", 415, str(error))


def _invalid_query(error: InvalidQuery) -> Response[Any]:
    return _answer("bad_request", 400, str(error))


def _unknown_resource(error: UnknownResource) -> Response[Any]:
    return _answer("no_route", 404, str(error))


def _refused_item(error: ItemRefused) -> Response[Any]:
    return _answer(Outcome.REJECTED.value, 422, str(error))


def _no_such_request(_: DeletionRequestNotFound) -> Response[Any]:
    return _answer("not_found", 404, "no such deletion request")


def _over_cap(error: OverCap) -> Response[Any]:
    # The tenant's own numbers: how far over it would go, so that it can wait or send fewer.
    count(MetricName.OVER_CAP)
    current_request().finish("over_cap")
    body = {
        "message": "too many deletions outstanding for this tenant; retry once some have completed",
        "outstanding": error.outstanding,
        "cap": error.cap,
        "requested": error.requested,
    }
    return json_response(429, body, {"Retry-After": str(RETRY_AFTER_S)})


def _ledger_unavailable(error: LedgerUnavailable) -> Response[Any]:
    logger.error("cannot read or write the ledger", extra={"reason": str(error)})
    return _unavailable("unavailable", "deletions cannot be recorded right now; retry later")


def _queue_unavailable(error: QueueUnavailable) -> Response[Any]:
    return _unavailable(Outcome.FAILED.value, f"{error}; retry later")


def _authentication_unavailable(error: AuthenticationUnavailable) -> Response[Any]:
    logger.error("cannot authenticate callers", extra={"reason": str(error)})
    return _unavailable("unavailable", "callers cannot be authenticated right now; retry later")


def _misconfigured(error: ConfigurationError) -> Response[Any]:
    logger.error("the function is misconfigured", extra={"reason": str(error)})
    return _unavailable("unavailable", "the service is not available right now; retry later")


def _method_not_allowed(error: MethodNotAllowed) -> Response[Any]:
    return _answer("no_route", 405, str(error), {"Allow": ", ".join(error.allowed)})


def _not_found(_: NotFoundError) -> Response[Any]:
    request = current_request()
    allowed = tuple(method for method, pattern in _ROUTE_PATTERNS if pattern.fullmatch(request.path))
    if request.method.upper() in allowed:
        # The route exists but the router's pattern refused the id's characters: an invalid id (400), not a 405.
        raw_id = request.path.rsplit("/", 1)[-1]
        request.name_ids([raw_id])
        reject_invalid_id(raw_id, request.audit)
    if allowed:
        raise MethodNotAllowed(allowed)
    return _answer("no_route", 404, "no such route")


def _unexpected(error: Exception) -> Response[Any]:
    # A bug or an outage we did not foresee: say so without details, and keep the details in the log.
    logger.exception("unexpected error while handling an API request")
    return _answer("error", 500, "internal error")


ERROR_RESPONSES: Final[dict[type[Exception], Callable[[Any], Response[Any]]]] = {
    Forbidden: _forbidden,
    NotAuthenticated: _not_authenticated,
    ReplayConflict: _replay_conflict,
    ReplayInProgress: _replay_in_progress,
    IdempotencyPersistenceLayerError: _replay_store_unavailable,
    InvalidParserRunId: _invalid_id,
    InvalidRequestBody: _invalid_body,
    BodyTooLarge: _too_large,
    UnsupportedMediaType: _unsupported_media_type,
    QueueUnavailable: _queue_unavailable,
    InvalidQuery: _invalid_query,
    DeletionRequestNotFound: _no_such_request,
    UnknownResource: _unknown_resource,
    ItemRefused: _refused_item,
    OverCap: _over_cap,
    LedgerUnavailable: _ledger_unavailable,
    AuthenticationUnavailable: _authentication_unavailable,
    ConfigurationError: _misconfigured,
    MethodNotAllowed: _method_not_allowed,
    NotFoundError: _not_found,
    Exception: _unexpected,
}
