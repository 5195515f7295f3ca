"""The peer: the same job written the common way, to compare cold starts with (benchmark B1).

The official ``extend-ai`` SDK for the call, and Powertools as its docs show it: Logger, Metrics and an enabled
Tracer (X-Ray SDK, auto-patching) at module level, the key from ``parameters.get_secret``, and
``BatchProcessor`` with ``process_partial_response``. Nothing deliberately slow, nothing tuned.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from extend_ai import Extend
from extend_ai.errors import NotFoundError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

tracer = Tracer()
logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


_client: Extend | None = None


@tracer.capture_method
def extend_client() -> Extend:
    global _client  # noqa: PLW0603 - the common way: one client per container, built on first use
    if _client is None:
        api_key = parameters.get_secret(os.environ["EXTEND_API_KEY_SECRET_ID"], max_age=300)
        _client = Extend(token=str(api_key), base_url=os.environ["EXTEND_API_BASE_URL"], timeout=5.0)
    return _client


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    parser_run_id = json.loads(record.body)["parserRunId"]
    try:
        extend_client().parse_runs.delete(parser_run_id)
    except NotFoundError:
        metrics.add_metric(name="ParserRunNotFound", unit=MetricUnit.Count, value=1)
        logger.info("parser run not found", parser_run_id=parser_run_id)
        return
    metrics.add_metric(name="ParserRunDeleted", unit=MetricUnit.Count, value=1)
    logger.info("parser run deleted", parser_run_id=parser_run_id)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
