"""POST /deletions: validation, de-duplication, SendMessageBatch chunks, partial failures and 503."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.lambda_context import LocalLambdaContext
from tests.support.api import (
    API_KEY_ID,
    SOURCE_IP,
    accepted,
    http_event,
    invoke,
    queue_depth,
    queued_messages,
    rest_event,
    sample_event,
)
from tests.support.sqs_fault_proxy import SqsFaultProxy
from tests.support.stacks import Emitted, InProcessStack

EventFactory = Callable[..., dict[str, Any]]
BOTH_SHAPES = pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest-v1", "http-v2"])


def bulk(make_event: EventFactory, ids: Any, **kwargs: Any) -> dict[str, Any]:
    return make_event("POST", "/deletions", body=json.dumps({"parserRunIds": ids}), **kwargs)


def test_the_sample_rest_event_queues_the_distinct_valid_ids(stack: InProcessStack, emitted: Emitted) -> None:
    # Given the sample bulk request: two ids, one of them twice, and an invalid one
    event = sample_event("apigw_rest_bulk.json")

    # When it is handled
    answer = invoke(event)

    # Then the two distinct ids are queued once each, and the invalid one is rejected with its reason
    assert answer.status == 202
    assert answer.body["queued"] == 2
    [rejected] = answer.body["rejected"]
    assert rejected["parserRunId"] == "not/a valid id" and "only letters" in rejected["reason"]
    messages = queued_messages(stack)
    assert sorted(message["parserRunId"] for message in messages) == [
        "parser_run_aB3dE5fG7hJ9kL1mN2pQ4r",
        "parser_run_xK9mLPqRtN3vS8wF5hB2cQ",
    ]
    # and each message carries the audit fields, so the SQS path's logs join back to this request
    request_id = event["requestContext"]["requestId"]
    for message in messages:
        assert message["callerApiKeyId"] == API_KEY_ID
        assert message["sourceIp"] == SOURCE_IP
        assert message["requestId"] == request_id
    assert stack.extend.requests == []
    # and every id has its outcome line, every request its audit line
    outcomes = sorted((line["outcome"], line.get("parser_run_id")) for line in emitted.outcome_logs)
    assert outcomes == [
        ("invalid", None),
        ("queued", "parser_run_aB3dE5fG7hJ9kL1mN2pQ4r"),
        ("queued", "parser_run_xK9mLPqRtN3vS8wF5hB2cQ"),
    ]
    assert all(line["correlation_id"] == request_id for line in emitted.outcome_logs)
    [request_line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert request_line["request_outcome"] == "partially_queued"
    assert request_line["parser_run_id_count"] == 3
    totals = emitted.metric_totals()
    assert (totals["ParserRunDeletionQueued"], totals["InvalidDeletionRequest"]) == (2, 1)
    assert {"trigger": "api", "service": "parser-run-deleter"} in emitted.metric_dimensions("ParserRunDeletionQueued")


def test_the_sample_http_event_queues_with_the_authorizer_caller(stack: InProcessStack) -> None:
    answer = invoke(sample_event("apigw_http_bulk.json"))
    assert answer.status == 202 and accepted(answer) == {"queued": 2, "rejected": []}
    assert {message["callerApiKeyId"] for message in queued_messages(stack)} == {"k9x8c7v6b5"}


@BOTH_SHAPES
def test_a_thousand_entries_are_accepted_and_sent_in_batches_of_ten(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory, sqs_faults: SqsFaultProxy
) -> None:
    # Given the largest request allowed: 1,000 entries, here 100 distinct ids ten times over
    ids = [f"pr_{index % 100:03d}" for index in range(1000)]

    # When it is submitted
    answer = invoke(bulk(make_event, ids))

    # Then every distinct id is queued once, in SendMessageBatch calls of ten entries
    assert answer.status == 202 and accepted(answer) == {"queued": 100, "rejected": []}
    assert sqs_faults.batch_calls == 10
    assert queue_depth(stack) == 100
    assert emitted.metric_totals()["ParserRunDeletionQueued"] == 100
    [request_line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert request_line["parser_run_id_count"] == 100 and len(request_line["parser_run_ids"]) == 100


@pytest.mark.slow  # moto's SendMessageBatch cost grows with the queue's length: 20-45 s here for 1,000 messages
def test_a_thousand_distinct_ids_are_all_queued(stack: InProcessStack, emitted: Emitted) -> None:
    ids = [f"pr_{index:04d}" for index in range(1000)]
    # A long invocation: enqueueing stops at the deadline, and moto (unlike SQS) may need most of 20 s for this.
    answer = invoke(bulk(rest_event, ids), LocalLambdaContext(timeout_s=600))
    assert answer.status == 202 and accepted(answer) == {"queued": 1000, "rejected": []}
    assert queue_depth(stack) == 1000
    assert emitted.metric_totals()["ParserRunDeletionQueued"] == 1000
    [request_line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert request_line["parser_run_id_count"] == 1000 and len(request_line["parser_run_ids"]) == 100


def test_duplicates_keep_their_first_position(stack: InProcessStack) -> None:
    answer = invoke(bulk(rest_event, ["pr_b", "pr_a", "pr_b", "pr_a", "pr_c"]))
    assert accepted(answer) == {"queued": 3, "rejected": []}
    assert sorted(message["parserRunId"] for message in queued_messages(stack)) == ["pr_a", "pr_b", "pr_c"]


def test_entries_that_are_not_ids_are_rejected_one_by_one_and_echoed_short(
    stack: InProcessStack, emitted: Emitted
) -> None:
    huge = "x" * 100_000
    answer = invoke(bulk(rest_event, ["pr_ok", 5, None, {"id": "pr_x"}, ["pr_y"], "", huge, "pr_ok"]))
    assert answer.status == 202
    assert answer.body["queued"] == 1
    rejected = answer.body["rejected"]
    assert [item["parserRunId"] for item in rejected] == ["5", "null", "<object>", "<array>", "", "x" * 63 + "…"]
    assert "must be a string, got int" in rejected[0]["reason"]
    assert "at most 255" in rejected[-1]["reason"]
    assert huge not in emitted.read().text
    assert emitted.metric_totals()["InvalidDeletionRequest"] == 6


def test_when_every_entry_is_invalid_nothing_is_queued(stack: InProcessStack) -> None:
    answer = invoke(bulk(rest_event, ["a b", "c/d"]))
    assert answer.status == 202 and answer.body["queued"] == 0 and len(answer.body["rejected"]) == 2
    assert queued_messages(stack) == []


@BOTH_SHAPES
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("", 400, "empty"),
        ("{not json", 400, "not valid JSON"),
        ('["pr_a"]', 400, "got array"),
        ('{"dryRun": true}', 400, "no 'ids' nor 'parserRunIds'"),
        ('{"parserRunIds": "pr_a"}', 400, "must be an array, got string"),
        ('{"parserRunIds": null}', 400, "must be an array, got null"),
        ('{"parserRunIds": []}', 400, "at least 1"),
        (json.dumps({"parserRunIds": [f"pr_{i}" for i in range(1001)]}), 400, "at most 1000 ids, got 1001"),
        ('{"parserRunIds": ["pr_a"], "extra": 1}', 400, "unknown field(s): extra"),
        ("[" * 100_000 + "]" * 100_000, 400, "not valid JSON"),
        (json.dumps({"parserRunIds": ["x" * 600_000]}), 413, "at most 524288 bytes"),
    ],
    ids=[
        "empty",
        "malformed",
        "not-an-object",
        "missing-list",
        "list-is-string",
        "list-is-null",
        "empty-list",
        "too-many",
        "unknown-field",
        "deeply-nested",
        "too-large",
    ],
)
def test_a_malformed_body_gets_a_precise_4xx_and_queues_nothing(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory, body: str, status: int, message: str
) -> None:
    answer = invoke(make_event("POST", "/deletions", body=body))
    assert answer.status == status
    assert message in answer.body["message"]
    assert len(answer.body["message"]) < 300
    assert queued_messages(stack) == []
    assert [log["request_outcome"] for log in emitted.logs if log["message"] == "api request"] == ["bad_request"]


def test_a_body_that_is_not_utf8_is_a_400(stack: InProcessStack) -> None:
    answer = invoke(http_event("POST", "/deletions", body=b"\xff\xfe{}", base64_body=True))
    assert answer.status == 400 and "UTF-8" in answer.body["message"]


@pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest", "http"])
def test_a_body_flagged_base64_that_is_not_is_refused_not_read_as_text(
    stack: InProcessStack, make_event: Callable[..., dict[str, Any]]
) -> None:
    # Given a body whose text happens to be a valid request, but which API Gateway flagged as base64
    event = make_event("POST", "/deletions", body=json.dumps({"parserRunIds": ["pr_text"]}))
    event["isBase64Encoded"] = True
    # When it is served, then it is refused as malformed, and nothing is queued
    answer = invoke(event)
    assert answer.status == 400 and "not valid base64" in answer.body["message"]
    assert queued_messages(stack) == []


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"],
)
def test_a_bulk_body_not_declared_as_json_gets_415_and_queues_nothing(
    stack: InProcessStack, content_type: str | None
) -> None:
    event = rest_event("POST", "/deletions", body=json.dumps({"parserRunIds": ["pr_form"]}))
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    event["multiValueHeaders"] = {k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"}
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    answer = invoke(event)
    assert answer.status == 415 and "application/json" in answer.body["message"]
    assert queued_messages(stack) == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"]
)
def test_json_media_types_are_accepted_whatever_their_case_and_parameters(
    stack: InProcessStack, content_type: str
) -> None:
    answer = invoke(
        rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_json"]}', headers={"Content-Type": content_type})
    )
    assert answer.status == 202 and answer.body["queued"] == 1


def test_a_base64_encoded_body_is_decoded(stack: InProcessStack) -> None:
    body = json.dumps({"parserRunIds": ["pr_b64"]}).encode()
    answer = invoke(http_event("POST", "/deletions", body=body, base64_body=True))
    assert accepted(answer) == {"queued": 1, "rejected": []}


@pytest.fixture
def sqs_faults(stack: InProcessStack) -> Iterator[SqsFaultProxy]:
    """SQS reached through the fault proxy: moto itself rejects the entries the test marks."""
    with SqsFaultProxy(stack.endpoint) as proxy:
        stack.set_env(AWS_ENDPOINT_URL=proxy.endpoint)  # the functions start afresh, with clients to the proxy
        yield proxy
    stack.set_env(AWS_ENDPOINT_URL=stack.endpoint)


def test_entries_sqs_keeps_rejecting_are_reported_rejected_not_queued(
    stack: InProcessStack, emitted: Emitted, sqs_faults: SqsFaultProxy
) -> None:
    # Given SQS rejects the entries for two ids on every attempt, in two different chunks of ten
    ids = [f"pr_{index:02d}" for index in range(15)]
    sqs_faults.reject("pr_03")
    sqs_faults.reject("pr_12")

    # When the 15 ids are submitted
    answer = invoke(bulk(rest_event, ids))

    # Then those two were retried, then rejected with a reason; the other 13 were queued, once each
    assert answer.status == 202
    assert answer.body["queued"] == 13
    assert [item["parserRunId"] for item in answer.body["rejected"]] == ["pr_03", "pr_12"]
    assert all("could not be queued" in item["reason"] for item in answer.body["rejected"])
    assert sqs_faults.rejected_entries == {"pr_03": 3, "pr_12": 3}
    assert sorted(message["parserRunId"] for message in queued_messages(stack)) == sorted(set(ids) - {"pr_03", "pr_12"})
    failed = [line["parser_run_id"] for line in emitted.outcome_logs if line["outcome"] == "failed"]
    assert failed == ["pr_03", "pr_12"]
    totals = emitted.metric_totals()
    assert (totals["ParserRunDeletionQueued"], totals["ParserRunDeletionFailed"]) == (13, 2)


def test_an_entry_rejected_once_is_retried_and_queued(stack: InProcessStack, sqs_faults: SqsFaultProxy) -> None:
    sqs_faults.reject("pr_b", times=1)
    answer = invoke(bulk(rest_event, ["pr_a", "pr_b", "pr_c"]))
    assert accepted(answer) == {"queued": 3, "rejected": []}
    assert sqs_faults.rejected_entries == {"pr_b": 1}
    assert sorted(message["parserRunId"] for message in queued_messages(stack)) == ["pr_a", "pr_b", "pr_c"]


def test_when_sqs_rejects_every_entry_the_answer_is_503(stack: InProcessStack, sqs_faults: SqsFaultProxy) -> None:
    sqs_faults.reject("pr_a")
    sqs_faults.reject("pr_b")
    answer = invoke(bulk(rest_event, ["pr_a", "pr_b", "bad id"]))
    assert answer.status == 503 and answer.headers["retry-after"] == "30"
    assert queued_messages(stack) == []


@BOTH_SHAPES
def test_when_the_queue_is_unreachable_the_answer_is_503(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory
) -> None:
    stack.set_env(DELETION_QUEUE_URL=stack.queues.queue_url + "-missing")
    answer = invoke(bulk(make_event, ["pr_a", "pr_b"]))
    assert answer.status == 503 and int(answer.headers["retry-after"]) > 0
    assert emitted.metric_totals()["ParserRunDeletionQueued"] == 0
    assert emitted.metric_totals()["ParserRunDeletionFailed"] == 2


def test_without_a_deletion_queue_bulk_intake_is_503(stack: InProcessStack) -> None:
    stack.set_env(DELETION_QUEUE_URL=None)
    answer = invoke(bulk(rest_event, ["pr_a"]))
    assert answer.status == 503
