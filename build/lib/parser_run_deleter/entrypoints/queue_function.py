"""QueueFunction's entry point (``parser_run_deleter.entrypoints.queue_function.lambda_handler``): SQS batches
from the deletion queue, and nothing else."""

from __future__ import annotations

from parser_run_deleter.shared import snapstart  # first: it pauses garbage collection for the rest of the cold start

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters import deletion_queue, dynamodb, extend_client, secret_store, wiring
from parser_run_deleter.intake.event_shapes import require
from parser_run_deleter.intake.queue_records import handle_sqs_event
from parser_run_deleter.logic import ledger, tenants
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.shared.observability import logger, metrics, trace_handler

snapstart.register(
    wiring.reset,
    extend_client.reset,
    deletion_queue.reset,
    secret_store.reset,
    dynamodb.reset,
    tenants.reset,
    ledger.reset,
)


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    require(Trigger.SQS, event)
    return handle_sqs_event(event, context)
