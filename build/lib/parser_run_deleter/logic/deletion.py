"""Deletion logic shared by both triggers: one attempt through Extend, and how each outcome is logged and counted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Final

from parser_run_deleter.adapters.extend_client import DeleteOutcome, DeleteResult, ExtendClient
from parser_run_deleter.adapters.extend_credentials import CredentialsError
from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.time_budget import Deadline


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


CONFIRMED_ON_RETRY: Final = "deleted, confirmed on retry: an earlier attempt's answer was lost, and the run is gone"


def attempt_deletion(client: ExtendClient, request: DeletionRequest, deadline: Deadline) -> DeleteResult:
    """Delete through Extend; anything that stops the attempt itself (e.g. an unreadable secret) is a retryable
    failure rather than an exception, so both triggers keep the request: requeued, or returned to SQS."""
    try:
        result = client.delete_parser_run(request.parser_run_id, deadline, workspace_id=request.workspace_id)
    except Exception as error:
        # The client held the key: only our own CredentialsError, whose messages never quote a secret, is
        # reported with its message; anything else by its type alone.
        reason = f"{type(error).__name__}: {error}" if isinstance(error, CredentialsError) else type(error).__name__
        return DeleteResult(request.parser_run_id, DeleteOutcome.FAILED, attempts=0, retryable=True, reason=reason)
    if result.outcome is DeleteOutcome.NOT_FOUND and result.answer_lost_before:
        # Our earlier DELETE reached Extend but its answer was lost; now the run is gone. Deleted, confirmed on
        # retry: the run is certainly gone, and most likely by that DELETE (docs/ledger.md).
        return replace(result, outcome=DeleteOutcome.DELETED, reason=CONFIRMED_ON_RETRY)
    return result


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
    if result is not None and result.not_owned:
        fields["ownership_refused"] = True
    if reason:
        fields["reason"] = reason
    if audit:
        fields["audit"] = dict(audit)
    fields.update(extra)
    level = logger.warning if outcome in (Outcome.FAILED, Outcome.INVALID) else logger.info
    level(f"parser run deletion {outcome.value}", extra=fields)
