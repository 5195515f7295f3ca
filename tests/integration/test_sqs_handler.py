"""The SQS path end to end: queue_function.lambda_handler with moto's server and the Extend emulator on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.events import record_from_sqs_message, sqs_event, sqs_record
from devstack.extend_emulator import Fault
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.shared.settings import ConfigurationError
from tests.support.queue_delivery import delivered
from tests.support.stacks import Emitted, InProcessStack

WS = "ws_test"


def body(parser_run_id: str, **extra: str) -> str:
    return json.dumps({"parserRunId": parser_run_id, **extra})


def failures(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def test_each_outcome_is_consumed_returned_or_dead_lettered(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a batch naming a run that exists, one that doesn't, a flaky one, a forbidden one and a malformed one
    stack.extend.seed(["pr_ok", "pr_flaky"], workspace_id=WS)
    stack.extend.inject("pr_flaky", *[Fault.status(500)] * 3)
    stack.extend.inject("pr_forbidden", Fault.status(403))
    records = {
        "ok": sqs_record(body("pr_ok", requestedBy="alice", reason="gdpr"), message_id="m-ok"),
        "absent": sqs_record(body("pr_absent"), message_id="m-absent"),
        "flaky": sqs_record(body("pr_flaky"), message_id="m-flaky"),
        "forbidden": sqs_record(body("pr_forbidden"), message_id="m-forbidden"),
        "bad": sqs_record('{"parserRunId": "../etc/passwd"}', message_id="m-bad"),
    }

    # When the handler gets the batch
    response = queue_function.lambda_handler(delivered(stack, sqs_event(*records.values())), stack.context())

    # Then only the failed deletions come back for redelivery
    assert failures(response) == {"m-flaky", "m-forbidden"}
    assert not stack.extend.exists("pr_ok", workspace_id=WS)
    # and the malformed message never reached Extend but sits in the DLQ with its reason
    assert all("passwd" not in request.path for request in stack.extend.requests)
    [dead] = stack.dead_letters()
    assert dead["Body"] == records["bad"]["body"]
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["FailureKind"] == "invalid"
    assert "only letters" in attributes["FailureReason"]
    assert attributes["SourceMessageId"] == "m-bad"

    # and each record produced exactly one outcome line, correlated by its message id
    lines = {line["correlation_id"]: line for line in emitted.outcome_logs}
    assert {key: line["outcome"] for key, line in lines.items()} == {
        "m-ok": "deleted",
        "m-absent": "not_found",
        "m-flaky": "failed",
        "m-forbidden": "failed",
        "m-bad": "invalid",
    }
    assert lines["m-ok"]["audit"] == {"requestedBy": "alice", "reason": "gdpr"}
    assert lines["m-ok"]["status_code"] == 200 and lines["m-ok"]["trigger"] == "sqs"
    assert lines["m-ok"]["extend_request_id"].startswith("req_")
    assert lines["m-flaky"]["attempts"] == 3 and lines["m-flaky"]["retryable"] is True
    assert lines["m-forbidden"]["status_code"] == 403 and lines["m-forbidden"]["retryable"] is False
    assert lines["m-bad"]["dead_letter_message_id"] == dead["MessageId"]
    assert all(isinstance(line["duration_ms"], float | int) for line in lines.values())

    # and one metric per outcome, plus retries
    totals = emitted.metric_totals()
    assert totals["ParserRunDeleted"] == 1
    assert totals["ParserRunNotFound"] == 1
    assert totals["ParserRunDeletionFailed"] == 2
    assert totals["InvalidDeletionRequest"] == 1
    assert totals["ExtendRetry"] == 2
    assert totals["ParserRunDeadLettered"] == 1
    assert {"trigger": "sqs", "service": "parser-run-deleter"} in emitted.metric_dimensions("ParserRunDeleted")


def test_throttles_are_counted(stack: InProcessStack, emitted: Emitted) -> None:
    stack.extend.seed(["pr_t"], workspace_id=WS)
    stack.extend.inject("pr_t", Fault.rate_limited(retry_after=None))
    response = queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_t")))), stack.context())
    assert response == {"batchItemFailures": []}
    totals = emitted.metric_totals()
    assert (totals["ExtendThrottled"], totals["ExtendRetry"], totals["ParserRunDeleted"]) == (1, 1, 1)


def test_bare_id_bodies_are_accepted(stack: InProcessStack) -> None:
    stack.extend.seed(["parser_run_bare"], workspace_id=WS)
    response = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record("parser_run_bare"))), stack.context()
    )
    assert response == {"batchItemFailures": []}
    assert not stack.extend.exists("parser_run_bare", workspace_id=WS)


def test_failure_on_the_last_receive_is_dead_lettered_with_its_reason(stack: InProcessStack, emitted: Emitted) -> None:
    stack.extend.inject("pr_last", Fault.status(402))
    record = sqs_record(body("pr_last"), message_id="m-last", receive_count=stack.queues.max_receive_count)
    response = queue_function.lambda_handler(delivered(stack, sqs_event(record)), stack.context())
    assert response == {"batchItemFailures": []}  # consumed: the DLQ copy carries it on
    [dead] = stack.dead_letters()
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["FailureKind"] == "permanent"
    assert attributes["ParserRunId"] == "pr_last"
    assert attributes["ExtendStatusCode"] == "402"
    assert "USAGE_BLOCKED" in attributes["FailureReason"]
    assert attributes["ApproximateReceiveCount"] == str(stack.queues.max_receive_count)
    [line] = emitted.outcome_logs
    assert line["outcome"] == "failed" and line["dead_letter_message_id"] == dead["MessageId"]


def test_without_a_dlq_the_function_does_not_start_and_drops_nothing(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a queue function whose DLQ is not configured, and a malformed message it could only dead-letter
    stack.set_env(DEAD_LETTER_QUEUE_URL=None)
    event = delivered(stack, sqs_event(sqs_record("{oops", message_id="m-1")))
    # When it is invoked, then it refuses to start, naming the variable: the whole batch returns to SQS, unread
    with pytest.raises(ConfigurationError, match="DEAD_LETTER_QUEUE_URL"):
        queue_function.lambda_handler(event, stack.context())
    assert emitted.outcome_logs == []
    assert stack.dead_letters() == []


def test_when_dead_lettering_fails_the_message_is_returned(stack: InProcessStack, emitted: Emitted) -> None:
    stack.set_env(DEAD_LETTER_QUEUE_URL=stack.queues.dead_letter_queue_url + "-missing")
    response = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record("{oops", message_id="m-2"))), stack.context()
    )
    assert failures(response) == {"m-2"}
    assert any(line["message"].startswith("dead-lettering failed") for line in emitted.logs)


def test_key_rotation_between_warm_invocations(stack: InProcessStack, emitted: Emitted) -> None:
    stack.extend.seed(["pr_before", "pr_after"], workspace_id=WS)
    first = queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_before")))), stack.context())
    assert first == {"batchItemFailures": []}

    stack.rotate_key()  # the container still caches the old key, which Extend now refuses

    second = queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_after")))), stack.context())
    assert second == {"batchItemFailures": []}
    assert [request.status for request in stack.extend.requests] == [200, 401, 200]
    assert stack.extend.requests[-1].headers["authorization"] == f"Bearer {stack.api_key}"


def test_secret_as_json_with_workspace(stack: InProcessStack) -> None:
    from devstack.moto_stack import rotate_secret

    org_key = stack.api_key + "_org"
    stack.extend.add_key(org_key, org_scoped=True)
    from tests.support.secret_guard import register_secret

    register_secret(org_key)
    rotate_secret(stack.endpoint, stack.secret_arn, json.dumps({"apiKey": org_key, "workspaceId": "ws_org"}))
    stack.extend.seed(["pr_org"], workspace_id="ws_org")
    response = queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_org")))), stack.context())
    assert response == {"batchItemFailures": []}
    assert stack.extend.requests[-1].headers["x-extend-workspace-id"] == "ws_org"


def test_unreadable_secret_fails_records_without_leaking(stack: InProcessStack, emitted: Emitted) -> None:
    stack.set_env(EXTEND_API_KEY_SECRET_ID="does-not-exist")
    response = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record(body("pr_x"), message_id="m-x"))), stack.context()
    )
    assert failures(response) == {"m-x"}
    assert stack.extend.requests == []
    [line] = emitted.outcome_logs
    assert line["outcome"] == "failed" and "CredentialsError" in line["reason"]


def test_a_batch_that_runs_out_of_time_returns_before_its_deadline(stack: InProcessStack, emitted: Emitted) -> None:
    # Given ten slow deletions, one worker, and an invocation with 2.5 s left
    ids = [f"pr_slow_{i}" for i in range(10)]
    stack.extend.seed(ids, workspace_id=WS)
    stack.extend.latency_s = 0.4
    stack.set_env(EXTEND_MAX_CONCURRENCY="1")
    context = stack.context(timeout_s=2.5)
    event = delivered(stack, sqs_event(*(sqs_record(body(i), message_id=i) for i in ids)))

    response = queue_function.lambda_handler(event, context)

    # Then it answered before Lambda's deadline, and what it did not finish comes back as failures
    assert context.get_remaining_time_in_millis() > 0
    unfinished = failures(response)
    deleted = {i for i in ids if not stack.extend.exists(i, workspace_id=WS)}
    assert unfinished and deleted
    assert unfinished | deleted == set(ids)
    reasons = {line["correlation_id"]: line.get("reason", "") for line in emitted.outcome_logs}
    assert all("out of time" in reasons[i] for i in unfinished)
    # A run can be both only when the deadline cut its DELETE short: Extend did it, but the answer never came,
    # so the message comes back, and its next delivery finds the run gone.
    assert all("Timeout" in reasons[i] for i in unfinished & deleted), {i: reasons[i] for i in unfinished & deleted}


def test_records_of_a_batch_are_deleted_concurrently(stack: InProcessStack) -> None:
    ids = [f"pr_c_{i}" for i in range(8)]
    stack.extend.seed(ids, workspace_id=WS)
    latency = 0.5
    stack.extend.latency_s = latency
    stack.set_env(EXTEND_MAX_CONCURRENCY="8")
    response = queue_function.lambda_handler(
        delivered(stack, sqs_event(*(sqs_record(body(i)) for i in ids))), stack.context()
    )
    assert response == {"batchItemFailures": []}
    answered = sorted(request.timestamp for request in stack.extend.requests)
    # One at a time, eight answers would span at least 7 latencies; overlapping, they land together.
    assert answered[-1] - answered[0] < 7 * latency / 2


def test_through_a_real_queue_failures_redrive_to_the_dlq(stack: InProcessStack) -> None:
    # Given two messages on the real (moto) queue, one for a run Extend keeps failing
    sqs = stack.sqs()
    stack.extend.seed(["pr_fine"], workspace_id=WS)
    stack.extend.inject("pr_stuck", *[Fault.status(503)] * 100)
    # leave dead-lettering to SQS redrive; the queue hands messages out with no visibility timeout (see below)
    stack.set_env(MAX_RECEIVE_COUNT="100", EXTEND_MAX_ATTEMPTS="1", SOURCE_QUEUE_VISIBILITY_SECONDS="0")
    for parser_run_id in ("pr_fine", "pr_stuck"):
        sqs.send_message(QueueUrl=stack.queues.queue_url, MessageBody=body(parser_run_id))
    sqs.set_queue_attributes(QueueUrl=stack.queues.queue_url, Attributes={"VisibilityTimeout": "0"})

    # When the queue is polled and each batch invoked like the event source does, until it is empty
    for _ in range(stack.queues.max_receive_count + 2):
        messages = sqs.receive_message(
            QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        event = sqs_event(*(record_from_sqs_message(m, stack.queues.queue_arn) for m in messages))
        response = queue_function.lambda_handler(event, stack.context())
        failed = failures(response)
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=stack.queues.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # Then the good one is gone and the stuck one sits in the DLQ after maxReceiveCount receives
    assert not stack.extend.exists("pr_fine", workspace_id=WS)
    [dead] = stack.dead_letters()
    assert json.loads(dead["Body"])["parserRunId"] == "pr_stuck"
    stuck_calls = [r for r in stack.extend.requests if r.parser_run_id == "pr_stuck"]
    assert len(stuck_calls) == stack.queues.max_receive_count


def test_cold_start_metric_is_emitted_once(stack: InProcessStack, emitted: Emitted) -> None:
    from aws_lambda_powertools.metrics.provider import cold_start

    cold_start.is_cold_start = True
    stack.extend.seed(["pr_1", "pr_2"], workspace_id=WS)
    queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_1")))), stack.context())
    queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_2")))), stack.context())
    assert emitted.metric_totals()["ColdStart"] == 1
