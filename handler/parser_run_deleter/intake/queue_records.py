"""The SQS trigger: each record of a batch that SQS confirms as the deletion queue's (``record_source``) becomes one
``process_message`` call, concurrently within the batch, and a record that is not done with comes back in
``batchItemFailures``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.intake.record_source import admission
from parser_run_deleter.intake.sqs_batch import RecordNotDone, SqsRecord, process_partial_batch
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.queue_deletion import BatchCounts, QueueMessage, QueueServices, process_message
from parser_run_deleter.shared.observability import logger, metrics
from parser_run_deleter.shared.time_budget import Deadline

# What the answer itself needs after the last record is let go: the response, the metrics flush.
ANSWER_TIME_S = 0.2


def handle_sqs_event(
    event: dict[str, Any],
    context: LambdaContext,
    services: QueueServices,
    executor: ThreadPoolExecutor,
) -> dict[str, Any]:
    """``executor`` runs a batch's records side by side: the function's one warm pool, its own across invocations."""
    metrics.add_dimension(name="trigger", value=Trigger.SQS.value)
    deadline = Deadline.from_context(context, services.settings.deadline_safety_margin_s)
    # The settled runs' counts, written once per request and tenant after the records have run.
    counts = BatchCounts(services)

    def record_handler(record: SqsRecord) -> None:
        logger.thread_safe_append_keys(correlation_id=record.message_id)
        try:
            message = QueueMessage(
                record.message_id,
                record.body,
                record.approximate_receive_count,
                record.deletion_request_id,
                record.source_message_id,
            )
            if not process_message(message, services, deadline, counts):
                raise RecordNotDone(record.message_id)
        finally:
            logger.thread_safe_remove_keys(["correlation_id"])

    # An all-failed batch is still a partial response, not an invocation error: Extend being down is not our
    # function failing, and a raised error would retry the batch anyway. Records are waited for until just before
    # Lambda's own deadline: the margin covers recording outcomes, and this covers a ledger slower than that.
    # With no time left to answer in anyway, Lambda's timeout is the bound, and the records, all past their
    # deadline, only turn themselves away: they are waited for, so that each is answered and logged.
    hard_stop_s = context.get_remaining_time_in_millis() / 1000 - ANSWER_TIME_S
    return process_partial_batch(
        event,
        record_handler,
        executor=executor,
        wait_s=hard_stop_s if hard_stop_s > 0 else None,
        admit=admission(services.source),
        finish=_Finish(counts, deadline),
    )


class _Finish:
    """The batch's counts, flushed once its records have run (``sqs_batch.BatchFinish``)."""

    def __init__(self, counts: BatchCounts, deadline: Deadline) -> None:
        self._counts, self._deadline = counts, deadline

    def abandon(self) -> set[str]:
        return self._counts.abandon()

    def __call__(self) -> set[str]:
        return self._counts.flush(self._deadline)
