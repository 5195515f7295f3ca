"""The local runtime against moto's server: event shapes, batch item failures, redrive, instances, HTTP front.

A probe function (tests/system/probe) stands in for the handler, so each test can make an invocation succeed,
fail a record, raise or time out; a small template in tmp_path wires it up with different logical ids than
template.yaml, to show that functions are found by their event sources.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.events import apigw_rest_event
from devstack.extend_emulator import ExtendEmulator
from devstack.functions import FunctionConfig, FunctionPool
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import aws_client
from tests.support.waiting import wait_until

PROBE_DIR = Path(__file__).parent / "probe"
EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"

PROBE_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  MaxReceiveCount: {{Type: Number, Default: 2}}
  PollerConcurrency: {{Type: Number, Default: 2}}
  ProbeLog: {{Type: String, Default: ""}}
  ExtendApiKeySecretArn: {{Type: String}}
Conditions:
  HasLog: !Not [!Equals [!Ref ProbeLog, ""]]
Globals:
  Function:
    CodeUri: {code_uri}
    Handler: probe_app.lambda_handler
    Timeout: 3
    Environment:
      Variables:
        PROBE_LOG: !If [HasLog, !Ref ProbeLog, !Ref AWS::NoValue]
        STACK: !Sub "${{AWS::StackName}}-probe"
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Parked.Arn
        maxReceiveCount: !Ref MaxReceiveCount
  Parked:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          QUEUE_URL: !Ref WorkQueue
  WorkerSource:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt WorkQueue.Arn
      FunctionName: !Ref Worker.Alias
      BatchSize: 5
      MaximumBatchingWindowInSeconds: 0
      FunctionResponseTypes: [ReportBatchItemFailures]
      ScalingConfig:
        MaximumConcurrency: !Ref PollerConcurrency
  Front:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Events:
        GetItem:
          Type: Api
          Properties: {{RestApiId: !Ref Gateway, Path: "/items/{{id}}", Method: GET}}
        PostItems:
          Type: Api
          Properties: {{RestApiId: !Ref Gateway, Path: /items, Method: POST}}
        Boom:
          Type: Api
          Properties: {{RestApiId: !Ref Gateway, Path: /boom, Method: GET}}
        Binary:
          Type: Api
          Properties: {{RestApiId: !Ref Gateway, Path: /binary, Method: GET}}
  Gateway:
    Type: AWS::Serverless::Api
    Properties:
      StageName: test
      Auth:
        ApiKeyRequired: true
"""


def probe_key(stack: LocalDeployment, kind: str = "in-plan") -> str:
    """The value of the probe stack's API key (values are unique across moto's server, so per stack)."""
    return f"probe-{kind}-{stack.rest_api_id}-000001"


@pytest.fixture
def probe_stack(
    request: pytest.FixtureRequest, moto_endpoint: str, extend: ExtendEmulator, tmp_path: Path
) -> Iterator[tuple[LocalDeployment, Path]]:
    # Indirect parameters: {"pollers": n, "poll_queue": False} for a test that must fill the queue first.
    wanted = getattr(request, "param", {})
    template = tmp_path / "template.yaml"
    template.write_text(PROBE_TEMPLATE.format(code_uri=PROBE_DIR), encoding="utf-8")
    log = tmp_path / "events.jsonl"
    options = LocalDeploymentOptions(
        template_path=template,
        parameter_overrides={"ProbeLog": str(log), "PollerConcurrency": str(wanted.get("pollers", 2))},
        visibility_timeout_s=1,
        api_instances=2,
        poll_queue=wanted.get("poll_queue", True),
    )
    stack = LocalDeployment(moto_endpoint, extend.base_url, "sk_unused", LogSink(), options).start()
    try:
        issue_api_key(stack, probe_key(stack))
        yield stack, log
    finally:
        stack.stop()


def issue_api_key(stack: LocalDeployment, value: str, *, in_usage_plan: bool = True) -> str:
    """An API key for the stage, made as an operator makes one: enabled, and (normally) in a usage plan of it."""
    key = stack.apigateway.create_api_key(name=f"probe-{value}", value=value, enabled=True)
    if in_usage_plan:
        plan = stack.apigateway.create_usage_plan(
            name=f"probe-{value}", apiStages=[{"apiId": stack.rest_api_id, "stage": stack.stage}]
        )
        stack.apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return str(key["id"])


def api_key_id(stack: LocalDeployment, value: str) -> str:
    return str(stack.apigateway.get_api_keys(nameQuery=f"probe-{value}")["items"][0]["id"])


def recorded_events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


class DeadLetters:
    """Bodies taken off the stack's DLQ so far."""

    def __init__(self, stack: LocalDeployment) -> None:
        self.sqs = aws_client("sqs", stack.moto_endpoint)
        self.url = stack.dead_letter_queue_url
        self.bodies: list[str] = []

    def collect(self) -> list[str]:
        # Taken off for good: a message merely received would come back after its visibility timeout, twice counted.
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
            self.bodies.extend(message["Body"] for message in batch)
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return self.bodies


def structure(value: Any) -> Any:
    """Key structure of a JSON document, values reduced to their kind (null counts as any kind)."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(value[0])] if value else []
    return "scalar"


def test_sqs_events_match_the_shape_lambda_delivers(probe_stack: tuple[LocalDeployment, Path]) -> None:
    # Given the template's queue wired to the probe function, and Lambda's own sample event
    stack, log = probe_stack
    sample = json.loads((EVENTS_DIR / "sqs_receive_message.json").read_text(encoding="utf-8"))["Records"][0]

    # When a message is sent to the queue
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="hello")
    wait_until(lambda: recorded_events(log))

    # Then the function got a Records event whose record has exactly the sample's structure
    [event] = recorded_events(log)
    [record] = event["Records"]
    assert structure(record) == structure(sample)
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.queue_arns["WorkQueue"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # and the message was deleted after the successful invocation
    wait_until(lambda: stack.queue_depths() == {"visible": 0, "in_flight": 0, "delayed": 0, "dead_letter": 0})


def test_failed_items_are_redelivered_then_redriven_to_the_dlq(probe_stack: tuple[LocalDeployment, Path]) -> None:
    # Given a batch where one record fails every time and the redrive policy allows 2 receives
    stack, log = probe_stack
    assert stack.max_receive_count == 2
    stack.sqs.send_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[{"Id": "ok", "MessageBody": "ok-1"}, {"Id": "bad", "MessageBody": "fail-1"}],
    )

    # When the event source has worked through it
    dead = DeadLetters(stack)
    wait_until(dead.collect)

    # Then only the failed record went to the DLQ, after being delivered maxReceiveCount times
    assert dead.bodies == ["fail-1"]
    deliveries = [r for event in recorded_events(log) for r in event["Records"]]
    assert [r["body"] for r in deliveries].count("ok-1") == 1
    fail_counts = [r["attributes"]["ApproximateReceiveCount"] for r in deliveries if r["body"] == "fail-1"]
    assert fail_counts == ["1", "2"]
    assert stack.queue_depths()["visible"] == 0 and stack.event_source is not None
    assert stack.event_source.stats["messages_deleted"] == 1


@pytest.mark.parametrize("probe_stack", [{"pollers": 1, "poll_queue": False}], indirect=True)
def test_an_invocation_error_keeps_the_whole_batch(probe_stack: tuple[LocalDeployment, Path]) -> None:
    # Given a batch that makes the function raise, queued before the one poller starts, so each receive takes both
    stack, log = probe_stack
    stack.sqs.send_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[{"Id": "a", "MessageBody": "innocent"}, {"Id": "b", "MessageBody": "crash"}],
    )
    assert stack.event_source is not None and stack.event_source.settings.maximum_concurrency == 1
    stack.event_source.start()

    # When the event source has retried it until the redrive policy gives up
    dead = DeadLetters(stack)
    wait_until(lambda: len(dead.collect()) >= 2)

    # Then no message of the failed batch was deleted: both were redriven by SQS
    assert sorted(dead.bodies) == ["crash", "innocent"]
    assert [sorted(r["body"] for r in event["Records"]) for event in recorded_events(log)] == [
        ["crash", "innocent"],
        ["crash", "innocent"],
    ]
    assert stack.event_source.stats["invocation_errors"] >= 2
    assert stack.event_source.stats["messages_deleted"] == 0
    assert any(doc.get("errorType") == "RuntimeError" for doc in stack.sink.snapshot())


def test_instances_are_separate_processes_that_stay_warm(tmp_path: Path) -> None:
    # Given a pool of at most two instances of the probe
    sink = LogSink()
    config = FunctionConfig("Probe", "probe_app.lambda_handler", PROBE_DIR, 2.0, 128, {"STACK": "s"})
    pool = FunctionPool(config, sink, max_instances=2)
    event = {"path": "/items/1", "httpMethod": "GET"}
    try:
        # When it is invoked three times in a row
        results = [pool.invoke(event) for _ in range(3)]
    finally:
        pool.close()

    # Then one warm instance served them all: one cold start, module state kept between invocations
    bodies = [json.loads(result.payload["body"]) for result in results]
    assert [result.cold for result in results] == [True, False, False]
    assert [body["invocations"] for body in bodies] == [1, 2, 3]
    assert len({body["pid"] for body in bodies}) == 1
    # and the context counts down from the function's timeout
    assert all(0 < body["remaining_ms"] <= 2000 for body in bodies)
    # and the instance saw only the function's environment, from its CodeUri
    assert bodies[0]["env"]["STACK"] == "s" and bodies[0]["env"]["PARENT_ONLY"] is None
    assert bodies[0]["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "Probe"
    assert Path(bodies[0]["cwd"]) == PROBE_DIR
    # and what it printed reached the log sink
    assert [doc["invocations"] for doc in sink.snapshot() if doc.get("message") == "probe invoked"] == [1, 2, 3]


def test_an_invocation_past_its_timeout_is_killed_and_the_next_one_is_cold() -> None:
    # Given a one-second function
    config = FunctionConfig("Probe", "probe_app.lambda_handler", PROBE_DIR, 1.0, 128, {})
    pool = FunctionPool(config, LogSink(), max_instances=1)
    try:
        # When an invocation sleeps past it, and another follows
        timed_out = pool.invoke({"Records": [{"messageId": "m", "body": "sleep"}]})
        after = pool.invoke({"Records": [{"messageId": "m", "body": "ok"}]})
    finally:
        pool.close()

    # Then the first is a timeout error and the second ran on a fresh instance
    assert not timed_out.ok and timed_out.error_type == "Sandbox.Timedout"
    assert after.ok and after.cold and after.payload == {"batchItemFailures": []}


def http(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, Any], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_http_front_builds_rest_events_and_maps_results(probe_stack: tuple[LocalDeployment, Path]) -> None:
    # Given the front for the probe's Api routes, and API Gateway's sample REST event
    stack, _ = probe_stack
    sample = json.loads((EVENTS_DIR / "apigw_rest_delete.json").read_text(encoding="utf-8"))

    # When a client calls a route with its key, repeated headers and query parameters
    status, headers, raw = http(
        "GET",
        f"{stack.api_url}/items/a%20b?x=1&x=2&y=3",
        headers={"x-api-key": probe_key(stack), "X-Multi": "one"},
    )

    # Then the function got a REST proxy event shaped like API Gateway's
    assert status == 201
    body = json.loads(raw)
    event = body["event"]
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/a%20b"
    assert event["pathParameters"] == {"id": "a b"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["requestContext"]["stage"] == "test" and event["requestContext"]["path"] == "/test/items/a%20b"
    assert event["requestContext"]["identity"]["apiKeyId"] == api_key_id(stack, probe_key(stack))
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["multiValueHeaders"]["X-Multi"] == ["one"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert body["function_name"] == "Front"
    # and its result came back as HTTP: status, single and multi-value headers, body
    assert headers["X-Probe"] == "single"
    assert "x-amzn-RequestId" in headers


def test_http_front_refuses_like_api_gateway(probe_stack: tuple[LocalDeployment, Path]) -> None:
    stack, _ = probe_stack
    key = {"x-api-key": probe_key(stack)}
    issue_api_key(stack, probe_key(stack, "no-plan"), in_usage_plan=False)
    # no key, a wrong key, a key in no usage plan of the stage, an unknown route, a wrong method, a path outside it
    assert http("GET", f"{stack.api_url}/items/1")[0] == 403
    assert json.loads(http("GET", f"{stack.api_url}/items/1", {"x-api-key": "nope"})[2]) == {"message": "Forbidden"}
    assert http("GET", f"{stack.api_url}/items/1", {"x-api-key": probe_key(stack, "no-plan")})[0] == 403
    assert http("GET", f"{stack.api_url}/nowhere", key)[0] == 404
    assert http("DELETE", f"{stack.api_url}/items/1", key)[0] == 404
    assert http("GET", stack.api_url.rsplit("/", 1)[0] + "/items/1", key)[0] == 404
    # a function error is API Gateway's 502
    status, _, raw = http("GET", f"{stack.api_url}/boom", key)
    assert status == 502 and json.loads(raw) == {"message": "Internal server error"}


def test_binary_bodies_travel_base64_both_ways(probe_stack: tuple[LocalDeployment, Path]) -> None:
    stack, _ = probe_stack
    # a binary request body reaches the function base64-encoded
    status, _, raw = http("POST", f"{stack.api_url}/items", {"x-api-key": probe_key(stack)}, body=b"\xff\xfe\x00binary")
    event = json.loads(raw)["event"]
    assert status == 201 and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00binary"
    # and a base64 result is decoded for the client
    status, headers, raw = http("GET", f"{stack.api_url}/binary", {"x-api-key": probe_key(stack)})
    assert status == 200 and raw == bytes(range(256)) and headers["Content-Type"] == "application/octet-stream"


def test_rest_event_builder_keeps_repeated_headers_and_text_bodies() -> None:
    event = apigw_rest_event(
        method="POST",
        path="/deletions",
        query="",
        headers=[("Accept", "a"), ("Accept", "b"), ("Host", "example.test:8080")],
        body=b'{"parserRunIds": []}',
        resource="/deletions",
        path_parameters=None,
        stage="v1",
        source_ip="10.0.0.1",
        api_key=None,
        api_key_id=None,
    )
    assert event["headers"]["Accept"] == "b" and event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["body"] == '{"parserRunIds": []}' and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None and event["pathParameters"] is None
    assert event["requestContext"]["domainName"] == "example.test"
