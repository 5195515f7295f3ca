"""Deletion logic shared by both triggers: one attempt through Extend, and the one log line and metric that report
what became of it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from parser_run_deleter.logic.extend_results import CredentialsError, DeleteResult, failed_before_extend
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ports import ExtendItems
from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.time_budget import Deadline


class Trigger(StrEnum):
    SQS = "sqs"
    API = "api"
    SCHEDULE = "schedule"  # the sweeper


_OUTCOME_METRIC: Final = {
    Outcome.DELETED: MetricName.DELETED,
    Outcome.NOT_FOUND: MetricName.NOT_FOUND,
    Outcome.FAILED: MetricName.FAILED,
    Outcome.INVALID: MetricName.INVALID,
    Outcome.QUEUED: MetricName.QUEUED,
    # Dead-lettering and rejections are failures to the caller; the DLQ has its own metric.
    Outcome.DEAD_LETTERED: MetricName.FAILED,
    Outcome.REJECTED: MetricName.FAILED,
    Outcome.CANCELLED: MetricName.CANCELLED,
    Outcome.WOULD_DELETE: MetricName.WOULD_DELETE,
}


CONFIRMED_ON_RETRY: Final = "deleted, confirmed on retry: an earlier attempt's answer was lost, and the run is gone"


def attempt_deletion(extend: ExtendItems, request: DeletionRequest, deadline: Deadline) -> DeleteResult:
    """Delete through Extend; anything that stops the attempt itself (e.g. an unreadable secret) is a retryable
    failure rather than an exception, so both triggers keep the request: requeued, or returned to SQS."""
    try:
        result = extend.delete(
            request.parser_run_id, deadline, resource=request.resource, workspace_id=request.workspace_id
        )
    except Exception as error:
        # The client held the key: only our own CredentialsError, whose messages never quote a secret, is
        # reported with its message; anything else by its type alone.
        reason = f"{type(error).__name__}: {error}" if isinstance(error, CredentialsError) else type(error).__name__
        return failed_before_extend(request.parser_run_id, reason)
    if result.outcome is Outcome.NOT_FOUND and result.answer_lost_before:
        # Our earlier DELETE reached Extend but its answer was lost; now the run is gone. Deleted, confirmed on
        # retry: the run is certainly gone, and most likely by that DELETE (docs/ledger.md).
        return replace(result, outcome=Outcome.DELETED, reason=CONFIRMED_ON_RETRY)
    return result


@dataclass(frozen=True, slots=True)
class Report:
    """What one attempt (one run id, on one trigger) came to: reported once, as one log line and its metrics."""

    trigger: Trigger
    parser_run_id: str | None
    started: float = field(default_factory=time.perf_counter)
    audit: Mapping[str, str] | None = None

    def report(
        self, outcome: Outcome, *, result: DeleteResult | None = None, reason: str | None = None, **extra: object
    ) -> None:
        count(_OUTCOME_METRIC[outcome])
        if result is not None:
            count(MetricName.THROTTLED, result.throttled_responses)
            count(MetricName.RETRY, result.retries)
        fields: dict[str, object] = {
            "parser_run_id": self.parser_run_id,
            "outcome": outcome.value,
            "status_code": result.status_code if result else None,
            "attempts": result.attempts if result else 0,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
            "trigger": self.trigger.value,
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
        if self.audit:
            fields["audit"] = dict(self.audit)
        fields.update({name: value for name, value in extra.items() if value is not None})
        level = logger.warning if outcome in (Outcome.FAILED, Outcome.INVALID) else logger.info
        level(f"parser run deletion {outcome.value}", extra=fields)
