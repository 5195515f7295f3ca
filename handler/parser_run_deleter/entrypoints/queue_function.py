"""QueueFunction's entry point (``parser_run_deleter.entrypoints.queue_function.lambda_handler``): SQS batches
from the deletion queue, and nothing else. Its composition root, ``root``, builds the services a message uses."""

from __future__ import annotations

from parser_run_deleter.shared import snapstart  # first: it pauses garbage collection for the rest of the cold start

# isort: split
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.entrypoints.composition import Root, extend_client, ledger, tenant_directory
from parser_run_deleter.intake.event_shapes import require
from parser_run_deleter.intake.queue_records import handle_sqs_event
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.queue_deletion import QueueServices
from parser_run_deleter.shared.observability import logger, metrics, trace_handler
from parser_run_deleter.shared.settings import load_queue_settings, warn_if_unlisted


@dataclass(frozen=True, slots=True)
class QueueFunction:
    services: QueueServices
    # A batch's records side by side: one warm pool, the function's own across invocations.
    executor: ThreadPoolExecutor


def build(clients: AwsClients, environment: Mapping[str, str], closers: list[Callable[[], None]]) -> QueueFunction:
    settings = load_queue_settings(environment)
    warn_if_unlisted(settings.extend)
    deletion_queue = SqsQueue(
        settings.deletion_queue_url, clients.sqs, visibility_timeout_s=settings.source_queue_visibility_s
    )
    services = QueueServices(
        settings=settings,
        extend=extend_client(settings.extend, clients, closers),
        ledger=ledger(settings.ledger_table_name, settings.ledger_retention_days, clients),
        tenants=tenant_directory(settings.tenants_table_name, settings.tenant_cache_s, clients),
        dead_letters=SqsQueue(settings.dead_letter_queue_url, clients.sqs),
        callbacks=SqsQueue(settings.callback_queue_url, clients.sqs),
        source=deletion_queue,
        deletions=deletion_queue,
    )
    executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="delete")
    closers.append(lambda: executor.shutdown(wait=False))
    return QueueFunction(services, executor)


root: Root[QueueFunction] = Root(build)
snapstart.register(root.reset)


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    require(Trigger.SQS, event)
    function = root.services()
    return handle_sqs_event(event, context, function.services, function.executor)
