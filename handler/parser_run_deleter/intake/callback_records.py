"""The callback queue's trigger: each record that SQS confirms as the callback queue's (``record_source``) is one
completion callback to deliver; one that is not delivered comes back in ``batchItemFailures``, after its backoff
(the record's visibility is extended before it is returned)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.intake.record_source import admission
from parser_run_deleter.intake.sqs_batch import RecordNotDone, SqsRecord, process_partial_batch
from parser_run_deleter.logic.callbacks import CallbackMessageInvalid, CallbackServices, deliver, parse_callback_message
from parser_run_deleter.shared.observability import logger, metrics

TRIGGER = "callback"


def handle_callback_event(event: dict[str, Any], context: LambdaContext, services: CallbackServices) -> dict[str, Any]:
    metrics.add_dimension(name="trigger", value=TRIGGER)

    def record_handler(record: SqsRecord) -> None:
        logger.append_keys(correlation_id=record.message_id)
        try:
            message = parse_callback_message(record.body, record.approximate_receive_count)
        except CallbackMessageInvalid as error:
            # Not one of ours: there is no request or tenant to tell, and the DLQ would hold it for nothing.
            logger.error("callback message dropped", extra={"reason": str(error)})
            return
        delivery = deliver(message, services)
        logger.info(
            "completion callback",
            extra={
                "deletion_request_id": message.deletion_request_id,
                "tenant_id": message.tenant_id,
                "state": delivery.state,
                "attempt": message.receive_count,
            },
        )
        if not delivery.done:
            if record.receipt_handle and not services.source.delay_redelivery(
                record.receipt_handle, delivery.retry_after_s
            ):
                # Not lost: it comes back after the queue's visibility timeout, sooner than its backoff.
                logger.warning(
                    "cannot delay the callback's next attempt",
                    extra={"deletion_request_id": message.deletion_request_id, "retry_after_s": delivery.retry_after_s},
                )
            raise RecordNotDone(record.message_id)

    return process_partial_batch(event, record_handler, admit=admission(services.source))
