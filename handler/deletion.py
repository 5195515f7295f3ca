"""Deletion logic shared by both triggers: what a request is, and how each outcome is logged and counted.

Nothing here knows about SQS records or HTTP events; the intake modules translate to and from these types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from deadline import Deadline
from extend_client import DeleteOutcome, DeleteResult, ExtendClient
from observability import MetricName, count, logger
from parser_run_ids import InvalidParserRunId, validate_parser_run_id

# Free-form fields a producer may attach for the audit trail; anything else in a message is ignored.
AUDIT_FIELDS: Final = ("requestedBy", "reason", "requestId", "callerApiKeyId", "webhookId", "sourceIp")
MAX_AUDIT_VALUE_LENGTH: Final = 256
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


class Trigger(StrEnum):
    SQS = "sqs"
    API = "api"


class Outcome(StrEnum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    INVALID = "invalid"
    QUEUED = "queued"


_OUTCOME_METRIC: Final = {
    Outcome.DELETED: MetricName.DELETED,
    Outcome.NOT_FOUND: MetricName.NOT_FOUND,
    Outcome.FAILED: MetricName.FAILED,
    Outcome.INVALID: MetricName.INVALID,
    Outcome.QUEUED: MetricName.QUEUED,
}


class InvalidDeletionRequest(ValueError):
    """The request cannot be acted on; the message is a reason fit for the caller and the DLQ."""


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    parser_run_id: str
    workspace_id: str | None = None
    audit: Mapping[str, str] = field(default_factory=dict)

    def to_message_body(self) -> str:
        document: dict[str, str] = {"parserRunId": self.parser_run_id}
        if self.workspace_id:
            document["workspaceId"] = self.workspace_id
        document.update(self.audit)
        return json.dumps(document, separators=(",", ":"))


def _audit_fields(document: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: value[:MAX_AUDIT_VALUE_LENGTH]
        for name in AUDIT_FIELDS
        if isinstance(value := document.get(name), str) and value
    }


def parse_deletion_message(body: str) -> DeletionRequest:
    """A queue message: JSON ``{"parserRunId": ..., "workspaceId"?: ..., audit...}`` or a bare id."""
    text = body.strip()
    if not text.startswith(("{", "[", '"')):
        return DeletionRequest(parser_run_id=_valid_id(text))
    try:
        document = json.loads(text)
    except ValueError:
        raise InvalidDeletionRequest("message body is not valid JSON") from None
    if isinstance(document, str):
        return DeletionRequest(parser_run_id=_valid_id(document))
    if not isinstance(document, dict):
        raise InvalidDeletionRequest("message body must be a JSON object with 'parserRunId', or a bare id")
    if "parserRunId" not in document:
        raise InvalidDeletionRequest("message body has no 'parserRunId'")
    workspace_id = document.get("workspaceId")
    if workspace_id is not None and not (isinstance(workspace_id, str) and _WORKSPACE_ID.fullmatch(workspace_id)):
        raise InvalidDeletionRequest("'workspaceId' must be a string of letters, digits, '_' and '-'")
    return DeletionRequest(
        parser_run_id=_valid_id(document["parserRunId"]),
        workspace_id=workspace_id,
        audit=_audit_fields(document),
    )


def _valid_id(value: object) -> str:
    try:
        return validate_parser_run_id(value)
    except InvalidParserRunId as error:
        raise InvalidDeletionRequest(str(error)) from None


def attempt_deletion(client: ExtendClient, request: DeletionRequest, deadline: Deadline) -> DeleteResult:
    """Delete through Extend; anything that stops the attempt itself (e.g. an unreadable secret) is a retryable
    failure rather than an exception, so both triggers keep the request: requeued, or returned to SQS."""
    try:
        return client.delete_parser_run(request.parser_run_id, deadline, workspace_id=request.workspace_id)
    except Exception as error:  # CredentialsError and the like carry no secret in their message
        return DeleteResult(
            request.parser_run_id,
            DeleteOutcome.FAILED,
            attempts=0,
            retryable=True,
            reason=f"{type(error).__name__}: {error}",
        )


def report_outcome(
    outcome: Outcome,
    *,
    trigger: Trigger,
    parser_run_id: str | None,
    duration_ms: float,
    result: DeleteResult | None = None,
    reason: str | None = None,
    audit: Mapping[str, str] | None = None,
    **extra: object,
) -> None:
    """The one log line and the metrics for one request's final outcome."""
    count(_OUTCOME_METRIC[outcome])
    if result is not None:
        count(MetricName.THROTTLED, result.throttled_responses)
        count(MetricName.RETRY, result.retries)
    fields: dict[str, object] = {
        "parser_run_id": parser_run_id,
        "outcome": outcome.value,
        "status_code": result.status_code if result else None,
        "attempts": result.attempts if result else 0,
        "duration_ms": round(duration_ms, 1),
        "trigger": trigger.value,
    }
    if result is not None and result.extend_request_id:
        fields["extend_request_id"] = result.extend_request_id
    if result is not None and result.error_code:
        fields["error_code"] = result.error_code
    if result is not None and outcome is Outcome.FAILED:
        fields["retryable"] = result.retryable
    if reason:
        fields["reason"] = reason
    if audit:
        fields["audit"] = dict(audit)
    fields.update(extra)
    level = logger.warning if outcome in (Outcome.FAILED, Outcome.INVALID) else logger.info
    level(f"parser run deletion {outcome.value}", extra=fields)
