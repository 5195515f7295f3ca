"""Which trigger an event comes from, by its shape: each entry point serves its own trigger's events only."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.events import sample_events
from parser_run_deleter.intake.event_shapes import describe, is_api_gateway_event, is_scheduled_event, is_sqs_event

SAMPLES = sample_events()
SQS_SAMPLES = sorted(name for name, event in SAMPLES.items() if "Records" in event)
SCHEDULE_SAMPLES = sorted(name for name, event in SAMPLES.items() if event.get("source") == "aws.events")
API_SAMPLES = sorted(name for name in SAMPLES if name not in SQS_SAMPLES + SCHEDULE_SAMPLES)


@pytest.mark.parametrize("name", SQS_SAMPLES)
def test_every_sample_sqs_event_is_an_sqs_event_only(name: str) -> None:
    assert is_sqs_event(SAMPLES[name]) and not is_api_gateway_event(SAMPLES[name])
    assert describe(SAMPLES[name]) == "an SQS batch"


@pytest.mark.parametrize("name", API_SAMPLES)
def test_every_sample_api_event_is_an_api_gateway_event_only(name: str) -> None:
    assert is_api_gateway_event(SAMPLES[name]) and not is_sqs_event(SAMPLES[name])
    assert describe(SAMPLES[name]) == "an API Gateway request"


@pytest.mark.parametrize(
    "event",
    [
        {},
        [],
        "text",
        None,
        {"Records": []},
        {"Records": [{"eventSource": "aws:s3"}]},
        {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:sns"}]},
        {"httpMethod": "DELETE"},
        {"requestContext": {}, "version": "2.0"},
        {"requestContext": "x", "httpMethod": "DELETE"},
        {"version": "2.0", "requestContext": {"http": "DELETE"}},
    ],
)
def test_anything_else_is_neither(event: Any) -> None:
    assert not is_sqs_event(event) and not is_api_gateway_event(event)
    assert describe(event).endswith("of neither shape")


@pytest.mark.parametrize("name", SCHEDULE_SAMPLES)
def test_the_sweepers_sample_is_its_rules_scheduled_event_and_no_other_shape(name: str) -> None:
    event = SAMPLES[name]
    assert is_scheduled_event(event, "extend-parser-run-deleter-sweeper")
    assert not is_scheduled_event(event, "another-sweeper") and not is_scheduled_event(event, "sweeper")
    assert not is_sqs_event(event) and not is_api_gateway_event(event)
    assert describe(event) == "a scheduled event"
