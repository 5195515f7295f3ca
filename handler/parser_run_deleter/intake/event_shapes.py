"""Which trigger an event came from, told by its shape, so an entry point can refuse another trigger's event.

Each function has its own role and its own checks: the queue function, say, must not serve an API request sent
to it with ``lambda:Invoke``, which would skip the API's authentication. A refused event raises
``UnsupportedEvent`` (an invocation error, which the function's error alarm sees) after counting the
``UnsupportedEvent`` metric. Nothing of the event's content is quoted: it may hold customer data.
"""

from __future__ import annotations

from typing import Any

from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.shared.observability import MetricName, count, logger, metrics


class UnsupportedEvent(ValueError):
    """The event is not of the shape this function serves."""


def is_sqs_event(event: object) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )


def is_api_gateway_event(event: object) -> bool:
    """A REST API proxy event (payload 1.0), or an HTTP API / Function URL event (payload 2.0)."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return False
    if event.get("version") == "2.0":
        return isinstance(event["requestContext"].get("http"), dict)
    return isinstance(event.get("httpMethod"), str)


def is_scheduled_event(event: object, rule_name: str) -> bool:
    """EventBridge's scheduled event, from the one rule named ``rule_name`` (of this stack)."""
    if not isinstance(event, dict) or event.get("source") != "aws.events":
        return False
    resources = event.get("resources")
    return (
        event.get("detail-type") == "Scheduled Event"
        and isinstance(resources, list)
        and len(resources) == 1
        and isinstance(resources[0], str)
        and resources[0].startswith("arn:")
        and resources[0].endswith(f":rule/{rule_name}")
    )


def describe(event: object) -> str:
    if is_sqs_event(event):
        return "an SQS batch"
    if is_api_gateway_event(event):
        return "an API Gateway request"
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        return "a scheduled event"
    return f"a JSON {type(event).__name__} of neither shape"


def require_schedule(event: Any, rule_name: str) -> None:
    """Return when ``event`` is the sweeper's own schedule; otherwise count it, log it and raise."""
    if is_scheduled_event(event, rule_name):
        return
    _refuse(Trigger.SCHEDULE, f"this function serves its schedule rule only; it was invoked with {describe(event)}")


def _refuse(trigger: Trigger, message: str) -> None:
    metrics.add_dimension(name="trigger", value=trigger.value)
    count(MetricName.UNSUPPORTED_EVENT)
    logger.error("unsupported event refused", extra={"reason": message})
    raise UnsupportedEvent(message)


def require(trigger: Trigger, event: Any) -> None:
    """Return when ``event`` is ``trigger``'s; otherwise count it, log it and raise ``UnsupportedEvent``."""
    serves = is_sqs_event if trigger is Trigger.SQS else is_api_gateway_event
    if serves(event):
        return
    expected = "SQS batches" if trigger is Trigger.SQS else "API Gateway requests"
    _refuse(trigger, f"this function serves {expected} only; it was invoked with {describe(event)}")
