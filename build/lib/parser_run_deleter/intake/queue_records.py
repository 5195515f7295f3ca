"""The SQS trigger: each record of a batch that SQS confirms as the deletion queue's (``record_source``) becomes one
``process_message`` call, concurrently within the batch, and a record that is not done with comes back in
``batchItemFailures``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters.wiring import get_dependencies
from parser_run_deleter.intake.record_source import SourceQueue, admission
from parser_run_deleter.intake.sqs_batch import RecordNotDone, SqsRecord, process_partial_batch
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.queue_deletion import QueueMessage, process_message
from parser_run_deleter.shared.observability import logger, metrics
from parser_run_deleter.shared.time_budget import Deadline

# What the answer itself needs after the last record is let go: the response, the metrics flush.
ANSWER_TIME_S = 0.2

_executor: ThreadPoolExecutor | None = None
_executor_workers = 0


def _batch_executor(max_workers: int) -> ThreadPoolExecutor:
    """One warm pool per container for the records of a batch (one worker: one at a time, still bounded in time)."""
    global _executor, _executor_workers  # noqa: PLW0603 - one warm pool per container
    if _executor is None or _executor_workers != max_workers:
        _executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="delete")
        _executor_workers = max_workers
    return _executor


def handle_sqs_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = get_dependencies()
    metrics.add_dimension(name="trigger", value=Trigger.SQS.value)
    deadline = Deadline.from_context(context, deps.settings.deadline_safety_margin_s)

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
            if not process_message(message, deps, deadline):
                raise RecordNotDone(record.message_id)
        finally:
            logger.thread_safe_remove_keys(["correlation_id"])

    # An all-failed batch is still a partial response, not an invocation error: Extend being down is not our
    # function failing, and a raised error would retry the batch anyway. Records are waited for until just before
    # Lambda's own deadline: the margin covers recording outcomes, and this covers a ledger slower than that.
    # With no time left to answer in anyway, Lambda's timeout is the bound, and the records, all past their
    # deadline, only turn themselves away: they are waited for, so that each is answered and logged.
    hard_stop_s = context.get_remaining_time_in_millis() / 1000 - ANSWER_TIME_S
    settings = deps.settings
    source = (
        SourceQueue(settings.deletion_queue_url, settings.source_queue_visibility_s)
        if settings.deletion_queue_url
        else None
    )
    return process_partial_batch(
        event,
        record_handler,
        executor=_batch_executor(settings.max_concurrency),
        wait_s=hard_stop_s if hard_stop_s > 0 else None,
        admit=admission(source),
    )
