"""Lambda entry point (``app.lambda_handler``): routes SQS batches and API Gateway requests.

Each path's module is imported on first use, so a container only loads what its trigger needs.
"""

from __future__ import annotations

import snapstart  # first: it pauses garbage collection for the rest of the cold start (see its docstring)

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from observability import logger, metrics, trace_handler

snapstart.register()


def is_sqs_event(event: object) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )


@snapstart.resume_gc_after_first_invocation
@metrics.log_metrics(capture_cold_start_metric=True)
@trace_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_sqs_event(event):
        from sqs_intake import handle_sqs_event  # noqa: PLC0415 - imported per trigger, see module docstring

        return handle_sqs_event(event, context)
    from api_routes import handle_api_event  # noqa: PLC0415

    return handle_api_event(event, context)
