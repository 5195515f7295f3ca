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

from collections.abc import Callable, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import Any

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

    @classmethod
    def from_event(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        named = (record.get("messageAttributes") or {}).get("DeletionRequestId") or {}
        value = named.get("stringValue") if isinstance(named, Mapping) else None
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            approximate_receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
            deletion_request_id=value if isinstance(value, str) else None,
            receipt_handle=str(record.get("receiptHandle") or ""),
        )


def process_partial_batch(
    event: Mapping[str, Any],
    record_handler: Callable[[SqsRecord], None],
    executor: Executor | None = None,
    *,
    wait_s: float | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Run ``record_handler`` on every record (on ``executor`` when given); the partial batch response.

    With ``executor``, a record still running after ``wait_s`` seconds is answered as a failure, and SQS delivers
    it again: the batch is answered before Lambda's deadline whatever a downstream call does. Its handler runs on,
    and whatever it finishes is idempotent to do twice."""
    records = [SqsRecord.from_event(record) for record in event["Records"]]

    def succeeded(record: SqsRecord) -> bool:
        try:
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
    failed = [record.message_id for record, ok in zip(records, outcomes, strict=True) if not ok]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
