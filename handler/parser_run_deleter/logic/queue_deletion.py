"""The queue path's use case: one message in, one fate carried out, one outcome reported.

Every message ends in exactly one place: consumed after ``deleted`` / ``not_found``; consumed after being copied
to the dead-letter queue with its reason (malformed, or failed on its last allowed receive); or returned for SQS
to deliver again. A message whose dead-lettering fails is returned too: it is never dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parser_run_deleter.adapters.deletion_queue import QueueSendError, send_to_dead_letter_queue
from parser_run_deleter.adapters.extend_client import MIN_ATTEMPT_S, DeleteOutcome, DeleteResult
from parser_run_deleter.adapters.wiring import Dependencies
from parser_run_deleter.logic.deletion import Outcome, Trigger, attempt_deletion, report_outcome
from parser_run_deleter.logic.message_fate import FailureKind, Fate, decide_fate
from parser_run_deleter.logic.queue_messages import DeletionRequest, InvalidDeletionRequest, parse_deletion_message
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.time_budget import Deadline

OUT_OF_TIME_REASON = "out of time before the first attempt"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    message_id: str
    body: str
    receive_count: int = 1


def process_message(message: QueueMessage, deps: Dependencies, deadline: Deadline) -> bool:
    """Carry out one message's deletion and fate. True when it is done with; False to have SQS deliver it again."""
    started = time.perf_counter()
    request: DeletionRequest | None = None
    result: DeleteResult | None = None
    attempted = True
    try:
        request = parse_deletion_message(message.body)
    except InvalidDeletionRequest as error:
        reason: str | None = str(error)
    else:
        if deadline.remaining() < MIN_ATTEMPT_S:
            attempted = False  # no time left to finish it: leave it for the next delivery
            result = DeleteResult(request.parser_run_id, DeleteOutcome.FAILED, attempts=0, retryable=True)
            reason = OUT_OF_TIME_REASON
        else:
            result = attempt_deletion(deps.extend_client, request, deadline)
            failed = result.outcome is DeleteOutcome.FAILED
            reason = (result.reason or "deletion failed") if failed else None

    decision = decide_fate(
        result,
        receive_count=message.receive_count,
        max_receive_count=deps.settings.max_receive_count,
        started=attempted,
    )
    dead_letter_message_id = None
    if decision.failure_kind is not None:  # set exactly when the fate is DEAD_LETTER
        dead_letter_message_id = _dead_letter(message, deps, decision.failure_kind, reason or "", result)

    outcome = Outcome.INVALID if result is None else Outcome(result.outcome.value)
    extra: dict[str, object] = {}
    if decision.fate is not Fate.CONSUME:
        extra = {"receive_count": message.receive_count, "dead_letter_message_id": dead_letter_message_id}
    report_outcome(
        outcome,
        trigger=Trigger.SQS,
        parser_run_id=request.parser_run_id if request else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        result=result,
        reason=reason,
        audit=request.audit if request else None,
        **extra,
    )
    return decision.fate is Fate.CONSUME or dead_letter_message_id is not None


def _dead_letter(
    message: QueueMessage, deps: Dependencies, kind: FailureKind, reason: str, result: DeleteResult | None
) -> str | None:
    """Copy the message to the DLQ with its reason; the DLQ message id, or None to leave it to SQS redrive."""
    queue_url = deps.settings.dead_letter_queue_url
    if queue_url is None:
        return None
    attributes: dict[str, str | int | None] = {
        "FailureKind": kind.value,
        "FailureReason": reason,
        "SourceMessageId": message.message_id,
        "ApproximateReceiveCount": message.receive_count,
    }
    if result is not None:
        attributes["ParserRunId"] = result.parser_run_id
        attributes["ExtendStatusCode"] = result.status_code
        attributes["ExtendRequestId"] = result.extend_request_id
    try:
        dead_letter_message_id = send_to_dead_letter_queue(queue_url, message.body, attributes)
    except QueueSendError as error:
        logger.error("dead-lettering failed; leaving the message for SQS redrive", extra={"reason": str(error)})
        return None
    count(MetricName.DEAD_LETTERED)
    return dead_letter_message_id
