"""Only the function's own queue's records are acted on.

Lambda's SQS event source invokes a function with the records it received, but so can any principal allowed
``lambda:InvokeFunction``, with an event of the same shape and any body it likes. Before a record is acted on, its
receipt handle is confirmed with SQS (the ``SourceQueue`` port): a handle SQS did not issue for
this function's queue, or a record naming another queue, is refused, logged and counted (``ForeignRecordRefused``),
and nothing is done for it. Only the function's role may receive from its queue (the queue's policy), so no one
else can hold a handle that passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from urllib.parse import urlsplit

from parser_run_deleter.intake.sqs_batch import SqsRecord
from parser_run_deleter.logic.ports import ReceiptsUnconfirmed, SourceQueue
from parser_run_deleter.shared.observability import MetricName, count, logger


class Verdict(StrEnum):
    CONFIRMED = "confirmed"  # SQS issued this handle for the function's queue: act on the record
    REFUSED = "refused"  # not the function's queue's: do nothing, ever
    UNCHECKED = "unchecked"  # SQS could not be asked now: return the record, to be delivered again


def names_queue(arn: str, queue_url: str) -> bool:
    """Whether ``arn`` (a record's ``eventSourceARN``) names the queue at ``queue_url``: the same account and name."""
    account, name = urlsplit(queue_url).path.strip("/").rpartition("/")[::2]
    parts = arn.split(":")
    return len(parts) == 6 and parts[2] == "sqs" and parts[4] == account and parts[5] == name


def confirm_source(records: Sequence[SqsRecord], source: SourceQueue) -> Mapping[str, Verdict]:
    """Each record's verdict, by message id."""
    verdicts = {record.message_id: Verdict.REFUSED for record in records}
    named = {
        record.message_id: record.receipt_handle
        for record in records
        if record.receipt_handle and names_queue(record.event_source_arn, source.url)
    }
    try:
        confirmed = source.confirm_receipts(named) if named else set()
    except ReceiptsUnconfirmed as error:
        logger.warning("records returned unchecked", extra={"reason": str(error)})
        return dict.fromkeys(verdicts, Verdict.UNCHECKED)
    for message_id in confirmed:
        verdicts[message_id] = Verdict.CONFIRMED
    for message_id, verdict in verdicts.items():
        if verdict is Verdict.REFUSED:
            count(MetricName.RECORD_REFUSED)
            logger.error(
                "record refused: SQS did not deliver it from this function's queue",
                extra={"message_id": message_id, "reason": "its receipt handle or source queue is not this queue's"},
            )
    return verdicts


def admission(source: SourceQueue) -> Callable[[Sequence[SqsRecord]], Mapping[str, bool]]:
    """The batch runner's ``admit``: the records SQS confirms as ``source``'s."""

    def admit(records: Sequence[SqsRecord]) -> Mapping[str, bool]:
        return {
            message_id: verdict is Verdict.CONFIRMED for message_id, verdict in confirm_source(records, source).items()
        }

    return admit
