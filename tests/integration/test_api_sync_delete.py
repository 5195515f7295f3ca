"""DELETE /parser_runs/{id}: every row of the issue's table, on REST (1.0) and HTTP API (2.0) events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.extend_emulator import Fault
from devstack.lambda_context import LocalLambdaContext
from tests.support.api import API_KEY_ID, SOURCE_IP, accepted, http_event, invoke, queued_messages, rest_event
from tests.support.stacks import Emitted, InProcessStack

WS = "ws_test"
EventFactory = Callable[..., dict[str, Any]]
BOTH_SHAPES = pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest-v1", "http-v2"])


@BOTH_SHAPES
def test_an_existing_run_is_deleted_at_once(stack: InProcessStack, emitted: Emitted, make_event: EventFactory) -> None:
    # Given a parser run that exists at Extend
    stack.extend.seed(["pr_live"], workspace_id=WS)

    # When the customer deletes it
    answer = invoke(make_event("DELETE", "/parser_runs/pr_live", request_id="req-sync-1"))

    # Then it is gone, and the answer says so
    assert answer.status == 200
    assert accepted(answer) == {
        "id": "pr_live",
        "resource": "parser_runs",
        "parserRunId": "pr_live",
        "status": "deleted",
    }
    assert not stack.extend.exists("pr_live", workspace_id=WS)
    assert queued_messages(stack) == []
    # and one outcome line carries the id, the caller and the API Gateway request id as correlation id
    [line] = emitted.outcome_logs
    assert line["outcome"] == "deleted" and line["trigger"] == "api" and line["status_code"] == 200
    assert line["parser_run_id"] == "pr_live"
    assert line["correlation_id"] == "req-sync-1"
    assert line["audit"]["sourceIp"] == SOURCE_IP and line["audit"]["requestId"] == "req-sync-1"
    # and the request's audit line too
    [request_line] = [log for log in emitted.logs if log["message"] == "api request"]
    assert request_line["request_outcome"] == "deleted" and request_line["parser_run_ids"] == ["pr_live"]
    assert request_line["status_code"] == 200 and request_line["correlation_id"] == "req-sync-1"
    assert emitted.metric_totals()["ParserRunDeleted"] == 1
    assert {"trigger": "api", "service": "parser-run-deleter"} in emitted.metric_dimensions("ParserRunDeleted")


def test_the_rest_caller_is_its_api_key_id(stack: InProcessStack, emitted: Emitted) -> None:
    stack.extend.seed(["pr_who"], workspace_id=WS)
    invoke(rest_event("DELETE", "/parser_runs/pr_who", headers={"webhook-id": "msg_audit_1"}))
    [line] = emitted.outcome_logs
    assert line["audit"] == {
        "callerApiKeyId": API_KEY_ID,
        "webhookId": "msg_audit_1",
        "sourceIp": SOURCE_IP,
        "requestId": line["correlation_id"],
    }


@BOTH_SHAPES
def test_an_unknown_run_is_not_found(stack: InProcessStack, emitted: Emitted, make_event: EventFactory) -> None:
    answer = invoke(make_event("DELETE", "/parser_runs/pr_absent"))
    assert answer.status == 404
    assert accepted(answer) == {
        "id": "pr_absent",
        "resource": "parser_runs",
        "parserRunId": "pr_absent",
        "status": "not_found",
    }
    assert [request.status for request in stack.extend.requests] == [404]
    assert emitted.metric_totals()["ParserRunNotFound"] == 1
    assert queued_messages(stack) == []


@BOTH_SHAPES
@pytest.mark.parametrize(
    ("raw_id", "reason"),
    [
        ("pr.dotted", "only letters"),
        ("pr%2F..%2Fadmin", "only letters"),
        ("x" * 256, "at most 255"),
        ("pr_caf%C3%A9", "only letters"),
        ('pr"quoted`', "only letters"),
    ],
    ids=["dot", "encoded-slash", "too-long", "non-ascii", "outside-the-router-alphabet"],
)
def test_an_invalid_id_is_refused_without_calling_extend(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory, raw_id: str, reason: str
) -> None:
    answer = invoke(make_event("DELETE", f"/parser_runs/{raw_id}"))
    assert answer.status == 400
    assert reason in answer.body["message"]
    assert stack.extend.requests == []
    assert queued_messages(stack) == []
    [line] = emitted.outcome_logs
    assert line["outcome"] == "invalid" and len(line["rejected_value"]) <= 64
    assert emitted.metric_totals()["InvalidDeletionRequest"] == 1


@BOTH_SHAPES
def test_when_extend_keeps_failing_the_deletion_is_queued(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory
) -> None:
    # Given Extend answers 500 to every attempt
    stack.extend.seed(["pr_flaky"], workspace_id=WS)
    stack.extend.inject("pr_flaky", *[Fault.status(500)] * 5)

    # When the customer deletes the run
    answer = invoke(make_event("DELETE", "/parser_runs/pr_flaky", request_id="req-queued"))

    # Then the in-request retries were used up, and the request sits on the deletion queue with its audit fields
    assert answer.status == 202
    assert accepted(answer) == {
        "id": "pr_flaky",
        "resource": "parser_runs",
        "parserRunId": "pr_flaky",
        "status": "queued",
    }
    assert [request.status for request in stack.extend.requests] == [500, 500, 500]
    [message] = queued_messages(stack)
    assert message["parserRunId"] == "pr_flaky"
    assert message["requestId"] == "req-queued" and message["sourceIp"] == SOURCE_IP
    [line] = emitted.outcome_logs
    assert line["outcome"] == "queued" and line["status_code"] == 500 and line["attempts"] == 3
    totals = emitted.metric_totals()
    assert (totals["ParserRunDeletionQueued"], totals["ExtendRetry"]) == (1, 2)
    assert totals["ParserRunDeletionFailed"] == 0


def test_a_401_from_extend_for_our_own_key_is_queued_not_lost(stack: InProcessStack, emitted: Emitted) -> None:
    # Given Extend no longer accepts the key in the secret (revoked, not rotated)
    stack.extend.seed(["pr_401"], workspace_id=WS)
    stack.extend.revoke_key(stack.api_key)

    answer = invoke(rest_event("DELETE", "/parser_runs/pr_401"))

    assert answer.status == 202 and answer.body["status"] == "queued"
    assert {request.status for request in stack.extend.requests} == {401}
    assert [message["parserRunId"] for message in queued_messages(stack)] == ["pr_401"]
    [line] = emitted.outcome_logs
    assert line["outcome"] == "queued" and line["status_code"] == 401


def test_an_unreadable_extend_key_secret_is_queued_not_lost(stack: InProcessStack, emitted: Emitted) -> None:
    stack.set_env(EXTEND_API_KEY_SECRET_ID="no-such-secret")
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_nokey"))
    assert answer.status == 202 and answer.body["status"] == "queued"
    assert stack.extend.requests == []
    assert [message["parserRunId"] for message in queued_messages(stack)] == ["pr_nokey"]
    assert emitted.outcome_logs[0]["reason"].startswith("CredentialsError: cannot read secret")


def test_a_slow_extend_is_cut_off_by_the_sync_budget_and_queued(stack: InProcessStack, emitted: Emitted) -> None:
    # Given Extend stalls far longer than the synchronous budget
    stack.set_env(API_SYNC_BUDGET_SECONDS="0.5")
    stack.extend.seed(["pr_slow"], workspace_id=WS)
    stack.extend.inject("pr_slow", Fault.stall(5))
    context = LocalLambdaContext(timeout_s=30)

    # When the customer deletes the run
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_slow"), context)

    # Then the answer came back while Extend was still stalling (the one attempt was cut by the budget's timeout,
    # and no other started), and the request is queued with that reason
    assert answer.status == 202 and answer.body["status"] == "queued"
    assert stack.extend.stats().get("200", 0) == 0  # Extend had not answered yet
    [outcome] = [line for line in emitted.outcome_logs if line["parser_run_id"] == "pr_slow"]
    assert (outcome["outcome"], outcome["attempts"]) == ("queued", 1)
    assert outcome["reason"] == "out of time after 1 attempt(s) (last: connection error: ReadTimeoutError)"
    assert [message["parserRunId"] for message in queued_messages(stack)] == ["pr_slow"]


@BOTH_SHAPES
def test_when_the_queue_fails_too_the_answer_is_503_with_retry_after(
    stack: InProcessStack, emitted: Emitted, make_event: EventFactory
) -> None:
    # Given Extend is down and the deletion queue does not exist
    stack.extend.inject("pr_down", *[Fault.status(503)] * 5)
    stack.set_env(DELETION_QUEUE_URL=stack.queues.queue_url + "-missing")

    answer = invoke(make_event("DELETE", "/parser_runs/pr_down"))

    assert answer.status == 503
    assert int(answer.headers["retry-after"]) > 0
    assert "retry" in answer.body["message"]
    assert queued_messages(stack) == []
    [line] = emitted.outcome_logs
    assert line["outcome"] == "failed" and "could not be queued" in line["reason"]
    assert emitted.metric_totals()["ParserRunDeletionFailed"] == 1


def test_without_a_deletion_queue_a_failed_delete_is_503(stack: InProcessStack) -> None:
    stack.set_env(DELETION_QUEUE_URL=None)
    stack.extend.inject("pr_noq", Fault.status(402))
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_noq"))
    assert answer.status == 503 and answer.headers["retry-after"] == "30"
