"""ApiFunction's entry point (``parser_run_deleter.entrypoints.api_function.lambda_handler``): API Gateway
requests, REST (payload 1.0) or HTTP API (payload 2.0), and nothing else. Its composition root, ``root``, builds
the services its routes use."""

from __future__ import annotations

from parser_run_deleter.shared import snapstart  # first: it pauses garbage collection for the rest of the cold start

# isort: split
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.idempotency_store import persistence_layer
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.entrypoints.composition import (
    Root,
    extend_client,
    ledger,
    secrets_source,
    tenant_directory,
)
from parser_run_deleter.intake.api_gateway import handle_api_event
from parser_run_deleter.intake.event_shapes import require
from parser_run_deleter.logic.api_use_cases import ApiServices
from parser_run_deleter.logic.authentication import Authenticator
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.replay_guard import ReplayGuard
from parser_run_deleter.logic.signature_verifier import Verifiers
from parser_run_deleter.shared.observability import logger, metrics, trace_handler
from parser_run_deleter.shared.settings import load_api_settings, warn_if_unlisted


def build(clients: AwsClients, environment: Mapping[str, str], closers: list[Callable[[], None]]) -> ApiServices:
    settings = load_api_settings(environment)
    warn_if_unlisted(settings.extend)
    secrets = secrets_source(clients, settings.extend.secret_max_age_s)
    tenants = tenant_directory(settings.tenants_table_name, settings.tenant_cache_s, clients)
    return ApiServices(
        settings=settings,
        extend=extend_client(settings.extend, clients, closers),
        ledger=ledger(settings.ledger_table_name, settings.ledger_retention_days, clients),
        authenticator=Authenticator(tenants, Verifiers(secrets), settings.tenant_secret_prefix),
        replay_guard=ReplayGuard(
            lambda _purpose: persistence_layer(settings.idempotency_table_name, clients.dynamodb())
        ),
        deletions=SqsQueue(settings.deletion_queue_url, clients.sqs),
        callbacks=SqsQueue(settings.callback_queue_url, clients.sqs),
    )


root: Root[ApiServices] = Root(build)
snapstart.register(root.reset)


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    require(Trigger.API, event)
    return handle_api_event(event, context, root.services)
