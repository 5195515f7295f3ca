"""SQS partial batch responses (``ReportBatchItemFailures``) on a bounded thread pool, without Powertools' batch
utility.

Same contract as Powertools' ``BatchProcessor`` + ``process_partial_response``: the record handler raises to
mark its record failed, every failed record's ``messageId`` comes back in ``batchItemFailures``, and an
all-failed batch is still a partial response, never an invocation error. Why not Powertools' own: importing
``aws_lambda_powertools.utilities.batch`` also imports ``asyncio`` and every event data class Powertools has
(Kinesis, DynamoDB, Kafka, S3, SNS, ...), a measurable share of this function's cold start for what the one
function below does (docs/performance.md). ``SqsRecord`` keeps the names of Powertools' ``SQSRecord`` that the
function reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

from parser_run_deleter.shared.observability import logger


class RecordNotDone(Exception):
    """Marks a record as a batch item failure, so SQS delivers it again."""


@dataclass(frozen=True, slots=True)
class SqsRecord:
    """One record of an SQS event, as Lambda's event source delivers it."""

    message_id: str
    body: str
    approximate_receive_count: int = 1
    # The DeletionRequestId message attribute: the ledger request of a message copied to the DLQ and redriven.
    deletion_request_id: str | None = None
    receipt_handle: str = ""
    event_source_arn: str = ""
    # The SourceMessageId message attribute: the message a dead-lettered copy was made from.
    source_message_id: str | None = None

    @classmethod
    def from_event(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        message_attributes = record.get("messageAttributes") or {}
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            approximate_receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
            deletion_request_id=_string_attribute(message_attributes, "DeletionRequestId"),
            receipt_handle=str(record.get("receiptHandle") or ""),
            event_source_arn=str(record.get("eventSourceARN") or ""),
            source_message_id=_string_attribute(message_attributes, "SourceMessageId"),
        )


def _string_attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    named = attributes.get(name) or {}
    value = named.get("stringValue") if isinstance(named, Mapping) else None
    return value if isinstance(value, str) else None


class BatchFinish(Protocol):
    """What a batch does once its records have run: calling it does the work, and returns the records it could not
    finish. ``abandon`` is called instead when the batch must be answered first: it returns the records whose
    success waited on it, and whatever finishes later finishes on its own."""

    def abandon(self) -> set[str]: ...

    def __call__(self) -> set[str]: ...


def process_partial_batch(
    event: Mapping[str, Any],
    record_handler: Callable[[SqsRecord], None],
    executor: Executor | None = None,
    *,
    wait_s: float | None = None,
    admit: Callable[[list[SqsRecord]], Mapping[str, bool]] | None = None,
    finish: BatchFinish | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Run ``record_handler`` on every record (on ``executor`` when given); the partial batch response.

    ``admit`` is asked once about the whole batch first: a record it does not admit is not handled, and answered as a
    failure. With ``executor``, a record still running after ``wait_s`` seconds (the admission included) is
    answered as a failure, and SQS delivers it again: the batch is answered before Lambda's deadline whatever a
    downstream call does. Its handler runs on, and whatever it finishes is idempotent to do twice.

    ``finish`` runs after the records, within what is left of ``wait_s``; the records it could not finish in time
    are answered as failures too."""
    stop_at = None if wait_s is None else time.monotonic() + max(0.0, wait_s)
    records = [SqsRecord.from_event(record) for record in event["Records"]]
    # Submitted before the records, so that a pool of one worker still runs it first.
    admission: Future[Mapping[str, bool]] | None = None
    if admit is not None and executor is not None:
        admission = executor.submit(admit, records)
    admitted_now = admit(records) if admit is not None and executor is None else None

    def admitted(record: SqsRecord) -> bool:
        if admit is None:
            return True
        verdicts = admission.result() if admission is not None else admitted_now or {}
        return verdicts.get(record.message_id, False)

    def succeeded(record: SqsRecord) -> bool:
        try:
            if not admitted(record):
                return False
            record_handler(record)
        except RecordNotDone:
            return False
        except Exception as error:  # a bug: the record fails (only the type is logged: no data), the batch goes on
            logger.error("record handler failed unexpectedly", extra={"error_type": type(error).__name__})
            return False
        return True

    if executor is None:
        outcomes = [succeeded(record) for record in records]
    else:
        futures = [executor.submit(succeeded, record) for record in records]
        done, _ = wait(futures, timeout=None if wait_s is None else max(0.0, wait_s))
        outcomes = [future in done and future.result() for future in futures]
        for record, future in zip(records, futures, strict=True):
            if future not in done:
                logger.warning(
                    "record still running at the deadline; SQS delivers it again",
                    extra={"message_id": record.message_id},
                )
    unfinished = _finish(finish, executor, stop_at) if finish is not None else set()
    failed = [
        record.message_id
        for record, ok in zip(records, outcomes, strict=True)
        if not ok or record.message_id in unfinished
    ]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _finish(finish: BatchFinish, executor: Executor | None, stop_at: float | None) -> set[str]:
    if executor is None:
        return finish()
    future = executor.submit(finish)
    try:
        return future.result(timeout=None if stop_at is None else max(0.0, stop_at - time.monotonic()))
    except FutureTimeout:
        logger.warning("the batch's last writes still running at the deadline; their records are delivered again")
        return finish.abandon()
