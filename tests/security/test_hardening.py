"""Hardening against the findings of the security and deploy reviews, end to end through the handler.

Each test fails on the code before the fix: a key with a line break inside it reached http.client, whose error
quotes the header (the key) into the outcome line and the DLQ; a proxy's 404 was taken for "deleted"; a base64
flag on text was ignored; any https host could receive the key.
"""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities import parameters

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from devstack.moto_stack import rotate_secret
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.shared.settings import ConfigurationError
from tests.support.api import invoke, rest_event
from tests.support.queue_delivery import delivered
from tests.support.secret_guard import SECRET_VALUES, register_secret
from tests.support.stacks import Emitted, InProcessStack


def test_the_guard_registers_each_line_of_a_multi_line_secret() -> None:
    register_secret("sk_first_line_0123456789\r\nsk_second_line_0123456789")
    assert {"sk_first_line_0123456789", "sk_second_line_0123456789"} <= SECRET_VALUES


@pytest.mark.parametrize("separator", ["\r\n", "\n", "\r", " "])
def test_a_key_pasted_with_a_line_break_never_reaches_a_log_a_metric_or_the_dlq(
    stack: InProcessStack, emitted: Emitted, separator: str
) -> None:
    # Given the key secret holds the key twice, with a line break (or a space) inside, as a bad paste leaves it
    pasted = register_secret(stack.api_key + separator + stack.api_key.upper())
    rotate_secret(stack.endpoint, stack.secret_arn, json.dumps({"apiKey": pasted, "workspaceId": stack.workspace_id}))
    parameters.clear_caches()
    stack.extend.seed(["pr_paste"], workspace_id=stack.workspace_id)

    # When the queue function runs its message on the last allowed receive
    record = sqs_record(json.dumps({"parserRunId": "pr_paste"}), receive_count=stack.queues.max_receive_count)
    response = queue_function.lambda_handler(delivered(stack, sqs_event(record)), stack.context())

    # Then no request was sent, the failure names the secret and what is wrong with it, and the value shows nowhere
    assert stack.extend.requests == []
    [line] = emitted.outcome_logs
    assert line["outcome"] == "failed"
    assert line["reason"] == (
        f"CredentialsError: secret {stack.secret_arn!r} is unusable: the Extend API key must be printable ASCII "
        "without spaces or line breaks (is it pasted twice?)"
    )
    [dead] = stack.dead_letters()
    assert dead["MessageAttributes"]["FailureReason"]["StringValue"] == line["reason"]
    assert response == {"batchItemFailures": []}
    visible = emitted.text + json.dumps(dead)
    for fragment in (stack.api_key, stack.api_key.upper(), pasted):
        assert fragment not in visible


def test_a_proxys_404_is_never_reported_as_deleted(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a run that exists, behind a proxy that answers {} 404 on the way to Extend
    stack.extend.seed(["pr_behind_proxy"], workspace_id=stack.workspace_id)
    stack.extend.inject("pr_behind_proxy", *[Fault.json(404, {})] * 2)

    # When the queue function meets it on its last receive
    record = sqs_record(json.dumps({"parserRunId": "pr_behind_proxy"}), receive_count=stack.queues.max_receive_count)
    queue_function.lambda_handler(delivered(stack, sqs_event(record)), stack.context())

    # Then it is dead-lettered as a permanent failure with the status and the body type, and the run is still there
    [line] = emitted.outcome_logs
    assert (line["outcome"], line["status_code"], line["retryable"]) == ("failed", 404, False)
    [dead] = stack.dead_letters()
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["FailureKind"] == "permanent"
    assert attributes["FailureReason"] == "Extend answered 404 JSON without Extend's error code"
    assert attributes["ExtendStatusCode"] == "404"
    assert stack.extend.exists("pr_behind_proxy", workspace_id=stack.workspace_id)
    assert emitted.metric_totals()["ParserRunNotFound"] == 0


def test_a_sync_delete_behind_a_proxys_404_is_not_answered_as_not_found(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_sync_proxy"], workspace_id=stack.workspace_id)
    stack.extend.inject("pr_sync_proxy", Fault.json(404, {"message": "Not Found"}))
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_sync_proxy"))
    # Not "not found" (the run may well exist), and not queued either: a retry would meet the same proxy. A 502
    # that says so, and the run left as it was.
    assert answer.status == 502 and answer.body["status"] == "failed"
    assert "without Extend's error code" in answer.body["reason"]
    assert stack.extend.exists("pr_sync_proxy", workspace_id=stack.workspace_id)


def test_an_extend_url_off_the_published_hosts_is_refused_before_any_request(
    stack: InProcessStack, emitted: Emitted
) -> None:
    stack.set_env(EXTEND_API_BASE_URL="https://extend.example.com")
    with pytest.raises(ConfigurationError, match="EXTEND_API_ALLOW_UNLISTED_HOST"):
        queue_function.lambda_handler(
            delivered(stack, sqs_event(sqs_record('{"parserRunId": "pr_x"}'))), stack.context()
        )
    assert invoke(rest_event("DELETE", "/parser_runs/pr_x")).status == 503
    assert stack.extend.requests == []
