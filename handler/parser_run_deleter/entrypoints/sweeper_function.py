"""SweeperFunction's entry point (``parser_run_deleter.entrypoints.sweeper_function.lambda_handler``): its schedule
rule's events, and nothing else. Its composition root, ``root``, builds the services a sweep uses."""

from __future__ import annotations

from parser_run_deleter.shared import snapstart  # first: it pauses garbage collection for the rest of the cold start

# isort: split
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.entrypoints.composition import Root, ledger
from parser_run_deleter.intake.event_shapes import require_schedule
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.logic.sweeper import SweeperServices, sweep
from parser_run_deleter.shared.observability import logger, metrics, trace_handler
from parser_run_deleter.shared.settings import SweeperSettings, load_sweeper_settings


def build(
    clients: AwsClients, environment: Mapping[str, str], closers: list[Callable[[], None]]
) -> tuple[SweeperSettings, SweeperServices]:
    settings = load_sweeper_settings(environment)
    services = SweeperServices(
        ledger=ledger(settings.ledger_table_name, settings.ledger_retention_days, clients),
        tenants=TenantTable(settings.tenants_table_name, clients.dynamodb),
        callbacks=SqsQueue(settings.callback_queue_url, clients.sqs),
    )
    return settings, services


root: Root[tuple[SweeperSettings, SweeperServices]] = Root(build)
snapstart.register(root.reset)


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, services = root.services()
    require_schedule(event, settings.schedule_rule_name)
    metrics.add_dimension(name="trigger", value=Trigger.SCHEDULE.value)
    done = sweep(services)
    # What an operator who invokes it by hand reads back: the same as its "sweep done" line, with the requests.
    return {
        "expiredRuns": done.expired,
        "overdueRequests": len(done.overdue),
        "overdue": sorted(done.overdue),
        "repairedTenants": sorted(done.repaired),
        "repaired": {tenant: {"before": before, "after": after} for tenant, (before, after) in done.repaired.items()},
        "failedTenants": done.failed_tenants,
    }
