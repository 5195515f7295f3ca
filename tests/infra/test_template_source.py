"""template.yaml as written (its resources' order, its checkov skips), samconfig.toml, and the sample events in
events/."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from typing import Any

import pytest

from tests.support.template import (
    EVENTS,
    ROOT,
    Cfn,
    api_operations,
)


def test_resources_are_ordered_queue_dlq_functions_api_alarms_dashboard(raw_template: dict[str, Any]) -> None:
    order = list(raw_template["Resources"])
    milestones = [
        "DeletionQueue",
        "DeadLetterQueue",
        "QueueFunction",
        "ApiFunction",
        "DeletionApi",
        "DeadLetterQueueNotEmptyAlarm",
        "Dashboard",
    ]
    assert [order.index(name) for name in milestones] == sorted(order.index(name) for name in milestones)
    assert list(raw_template).index("Resources") < list(raw_template).index("Outputs")


def test_checkov_skips_carry_a_justification(raw_template: dict[str, Any]) -> None:
    for name, resource in raw_template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 20, f"{name}: {skip['id']} needs a reason"


def test_samconfig_builds_without_containers_and_holds_no_account(template_text: str) -> None:
    text = (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["default"]["build"]["parameters"]["use_container"] is False
    assert config["default"]["build"]["parameters"]["cached"] is False
    assert "CAPABILITY_IAM" in config["default"]["deploy"]["parameters"]["capabilities"]
    for text_ in (text, template_text):
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", text_.replace("[0-9]{12}", "")), "an account id?"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


SAMPLE_EVENTS = sorted(path.name for path in EVENTS.glob("*.json"))
SQS_EVENTS = [name for name in SAMPLE_EVENTS if "Records" in load_event(name)]
SCHEDULE_EVENTS = [name for name in SAMPLE_EVENTS if load_event(name).get("source") == "aws.events"]
API_EVENTS = [name for name in SAMPLE_EVENTS if name not in SQS_EVENTS + SCHEDULE_EVENTS]


def test_each_path_has_a_sample_event() -> None:
    assert {"sqs_receive_message.json", "sqs_malformed.json"} <= set(SQS_EVENTS)
    assert {
        "apigw_rest_delete.json",
        "apigw_rest_bulk.json",
        "apigw_http_delete.json",
        "apigw_rest_status.json",
    } <= set(API_EVENTS)
    assert any("webhook-signature" in load_event(name).get("headers", {}) for name in API_EVENTS)


@pytest.mark.parametrize("name", SQS_EVENTS)
def test_sample_sqs_events_have_lambdas_shape(name: str) -> None:
    records = load_event(name)["Records"]
    assert records
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "eventSourceARN"}
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1


@pytest.mark.parametrize("name", API_EVENTS)
def test_sample_api_events_use_the_templates_routes(cfn: Cfn, name: str) -> None:
    event = load_event(name)
    routes = set(api_operations(cfn))
    if event.get("version") == "2.0":
        method, path = event["routeKey"].split(" ", 1)
        assert event["requestContext"]["http"]["method"] == method
    else:
        method, path = event["httpMethod"], event["resource"]
        assert event["requestContext"]["identity"]["apiKeyId"], "REST events carry the caller's API key id"
        assert event["requestContext"]["resourcePath"] == path
    assert (path, method.lower()) in routes


def test_the_sweepers_sample_event_names_the_rule_the_template_gives_a_stack_of_the_default_name(cfn: Cfn) -> None:
    [name] = SCHEDULE_EVENTS
    [rule] = cfn.of_type("AWS::Events::Rule").values()
    assert rule["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-sweeper"}
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert cfn.props("SweeperFunction")["Environment"]["Variables"]["SCHEDULE_RULE_NAME"] == rule["Properties"]["Name"]
    [resource] = load_event(name)["resources"]
    assert resource.endswith(":rule/extend-parser-run-deleter-sweeper")  # docs/operations.md invokes with it
