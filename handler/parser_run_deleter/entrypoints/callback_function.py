"""CallbackFunction's entry point (``parser_run_deleter.entrypoints.callback_function.lambda_handler``): SQS
batches from the callback queue, each record one completion callback to deliver, and nothing else. Its composition
root, ``root``, builds the services a delivery uses; it never builds an Extend client."""

from __future__ import annotations

from parser_run_deleter.shared import snapstart  # first: it pauses garbage collection for the rest of the cold start

# isort: split
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.callback_sender import HttpCallbackTransport
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.entrypoints.composition import Root, ledger, secrets_source, tenant_directory
from parser_run_deleter.intake.callback_records import handle_callback_event
from parser_run_deleter.intake.event_shapes import require
from parser_run_deleter.logic.callbacks import CallbackServices
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.shared.observability import logger, metrics, trace_handler
from parser_run_deleter.shared.settings import load_callback_settings


def build(clients: AwsClients, environment: Mapping[str, str], _closers: list[Callable[[], None]]) -> CallbackServices:
    settings = load_callback_settings(environment)
    return CallbackServices(
        settings=settings,
        ledger=ledger(settings.ledger_table_name, settings.ledger_retention_days, clients),
        tenants=tenant_directory(settings.tenants_table_name, settings.tenant_cache_s, clients),
        secrets=secrets_source(clients, settings.secret_max_age_s),
        transport=HttpCallbackTransport(allow_loopback=settings.callback_allow_loopback),
        source=SqsQueue(
            settings.callback_queue_url, clients.sqs, visibility_timeout_s=settings.source_queue_visibility_s
        ),
    )


root: Root[CallbackServices] = Root(build)
snapstart.register(root.reset)


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    require(Trigger.SQS, event)
    return handle_callback_event(event, context, root.services())
