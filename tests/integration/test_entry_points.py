"""Each function's entry point serves its own trigger's events only: another trigger's event is refused with a
clear error and the UnsupportedEvent metric, and nothing reaches Extend or the queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devstack.events import sqs_event, sqs_record
from parser_run_deleter.entrypoints import api_function, queue_function
from parser_run_deleter.intake.event_shapes import UnsupportedEvent
from tests.support.api import queued_messages, rest_event
from tests.support.stacks import Emitted, InProcessStack


def refused(
    handler: Callable[[Any, Any], Any], event: Any, stack: InProcessStack, emitted: Emitted, trigger: str
) -> str:
    with pytest.raises(UnsupportedEvent) as raised:
        handler(event, stack.context())
    assert emitted.metric_totals()["UnsupportedEvent"] == 1
    assert [dims["trigger"] for dims in emitted.metric_dimensions("UnsupportedEvent")] == [trigger]
    assert stack.extend.requests == []
    assert queued_messages(stack) == [] and stack.dead_letters() == []
    return str(raised.value)


def test_the_queue_function_refuses_an_api_request_sent_to_it(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a run that exists, and an unsigned API request for it invoked directly on the queue function
    stack.extend.seed(["pr_direct"], workspace_id=stack.workspace_id)
    event = rest_event("DELETE", "/parser_runs/pr_direct")
    # Then it is refused: the API's checks cannot be skipped by invoking the other function
    message = refused(queue_function.lambda_handler, event, stack, emitted, "sqs")
    assert message == "this function serves SQS batches only; it was invoked with an API Gateway request"
    assert stack.extend.exists("pr_direct", workspace_id=stack.workspace_id)


def test_the_api_function_refuses_an_sqs_batch_sent_to_it(stack: InProcessStack, emitted: Emitted) -> None:
    stack.extend.seed(["pr_batch"], workspace_id=stack.workspace_id)
    event = sqs_event(sqs_record(json.dumps({"parserRunId": "pr_batch"})))
    message = refused(api_function.lambda_handler, event, stack, emitted, "api")
    assert message == "this function serves API Gateway requests only; it was invoked with an SQS batch"


@pytest.mark.parametrize("trigger", ["sqs", "api"])
def test_an_event_of_neither_shape_is_refused_by_both(stack: InProcessStack, emitted: Emitted, trigger: str) -> None:
    handler = queue_function.lambda_handler if trigger == "sqs" else api_function.lambda_handler
    message = refused(handler, {"parserRunId": "pr_raw"}, stack, emitted, trigger)
    assert message.endswith("a JSON dict of neither shape")
