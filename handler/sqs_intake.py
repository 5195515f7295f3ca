"""The SQS trigger: one deletion per message, concurrently within a batch, reported as partial failures.

Every message ends in exactly one place: consumed after ``deleted`` / ``not_found``; consumed after being
copied to the dead-letter queue with its reason (malformed, or failed on its last allowed receive); or
returned as a batch item failure for SQS to redeliver. A message whose dead-lettering fails is returned too.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from deadline import Deadline
from deletion import (
    InvalidDeletionRequest,
    Outcome,
    Trigger,
    attempt_deletion,
    parse_deletion_message,
    report_outcome,
)
from deletion_queue import QueueSendError, send_to_dead_letter_queue
from dependencies import Dependencies, get_dependencies
from extend_client import MIN_ATTEMPT_S, DeleteOutcome, DeleteResult
from observability import MetricName, count, logger, metrics
from sqs_batch import RecordNotDone, SqsRecord, process_partial_batch

_executor: ThreadPoolExecutor | None = None
_executor_workers = 0


def _batch_executor(max_workers: int) -> ThreadPoolExecutor | None:
    """One warm pool per container for the records of a batch (None: one at a time)."""
    global _executor, _executor_workers  # noqa: PLW0603 - one warm pool per container
    if max_workers == 1:
        return None
    if _executor is None or _executor_workers != max_workers:
        _executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="delete")
        _executor_workers = max_workers
    return _executor


def handle_sqs_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = get_dependencies()
    metrics.add_dimension(name="trigger", value=Trigger.SQS.value)
    deadline = Deadline.from_context(context, deps.settings.deadline_safety_margin_s)

    def record_handler(record: SqsRecord) -> None:
        _handle_record(record, deps, deadline)

    # An all-failed batch is still a partial response, not an invocation error: Extend being down is not our
    # function failing, and a raised error would retry the batch anyway.
    return process_partial_batch(event, record_handler, executor=_batch_executor(deps.settings.max_concurrency))


def _handle_record(record: SqsRecord, deps: Dependencies, deadline: Deadline) -> None:
    logger.thread_safe_append_keys(correlation_id=record.message_id)
    started = time.perf_counter()
    try:
        _process(record, deps, deadline, started)
    finally:
        logger.thread_safe_remove_keys(["correlation_id"])


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _process(record: SqsRecord, deps: Dependencies, deadline: Deadline, started: float) -> None:
    try:
        request = parse_deletion_message(record.body)
    except InvalidDeletionRequest as error:
        dlq_message_id = _dead_letter(record, deps, kind="invalid", reason=str(error))
        report_outcome(
            Outcome.INVALID,
            trigger=Trigger.SQS,
            parser_run_id=None,
            duration_ms=_elapsed_ms(started),
            reason=str(error),
            dead_letter_message_id=dlq_message_id,
        )
        if dlq_message_id is None:
            raise RecordNotDone(str(error)) from None
        return

    if deadline.remaining() < MIN_ATTEMPT_S:
        # Not started: there is no time left to finish it. SQS delivers it again.
        result = DeleteResult(request.parser_run_id, DeleteOutcome.FAILED, attempts=0, retryable=True)
        report_outcome(
            Outcome.FAILED,
            trigger=Trigger.SQS,
            parser_run_id=request.parser_run_id,
            duration_ms=_elapsed_ms(started),
            result=result,
            reason="out of time before the first attempt",
            audit=request.audit,
        )
        raise RecordNotDone("out of time")

    result = attempt_deletion(deps.extend_client, request, deadline)
    if result.outcome is not DeleteOutcome.FAILED:  # deleted or not found: the message is done
        report_outcome(
            Outcome(result.outcome.value),
            trigger=Trigger.SQS,
            parser_run_id=request.parser_run_id,
            duration_ms=_elapsed_ms(started),
            result=result,
            audit=request.audit,
        )
        return

    receive_count = record.approximate_receive_count
    last_receive = deps.settings.max_receive_count is not None and (receive_count >= deps.settings.max_receive_count)
    reason = result.reason or "deletion failed"
    dlq_message_id = None
    if last_receive:
        kind = "retries_exhausted" if result.retryable else "permanent"
        dlq_message_id = _dead_letter(record, deps, kind=kind, reason=reason, result=result)
    report_outcome(
        Outcome.FAILED,
        trigger=Trigger.SQS,
        parser_run_id=request.parser_run_id,
        duration_ms=_elapsed_ms(started),
        result=result,
        reason=reason,
        audit=request.audit,
        receive_count=receive_count,
        dead_letter_message_id=dlq_message_id,
    )
    if dlq_message_id is None:
        raise RecordNotDone(reason)


def _dead_letter(
    record: SqsRecord, deps: Dependencies, *, kind: str, reason: str, result: DeleteResult | None = None
) -> str | None:
    """Copy the message to the DLQ with its reason; the DLQ message id, or None to leave it to SQS redrive."""
    queue_url = deps.settings.dead_letter_queue_url
    if queue_url is None:
        return None
    attributes: dict[str, str | int | None] = {
        "FailureKind": kind,
        "FailureReason": reason,
        "SourceMessageId": record.message_id,
        "ApproximateReceiveCount": record.approximate_receive_count,
    }
    if result is not None:
        attributes["ParserRunId"] = result.parser_run_id
        attributes["ExtendStatusCode"] = result.status_code
        attributes["ExtendRequestId"] = result.extend_request_id
    try:
        dlq_message_id = send_to_dead_letter_queue(queue_url, record.body, attributes)
    except QueueSendError as error:
        logger.error("dead-lettering failed; leaving the message for SQS redrive", extra={"reason": str(error)})
        return None
    count(MetricName.DEAD_LETTERED)
    return dlq_message_id
