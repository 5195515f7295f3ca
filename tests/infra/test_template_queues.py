"""What template.yaml says of the queues: visibility timeouts, redrive, retention, encryption, who may send and receive,
and the event sources that poll them.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from parser_run_deleter.logic.callbacks import IN_FLIGHT_ALLOWANCE_S, retry_after_s
from tests.support.template import (
    ALL_QUEUES,
    CALLBACK_FUNCTION,
    OPERATOR,
    QUEUE_FUNCTION,
    Cfn,
    as_list,
    env,
    event_source_mapping,
    statements,
)


@pytest.mark.parametrize(
    ("queue", "function"), [("DeletionQueue", QUEUE_FUNCTION), ("CallbackQueue", CALLBACK_FUNCTION)]
)
def test_queue_visibility_timeout_is_at_least_six_times_its_functions_timeout(
    cfn: Cfn, queue: str, function: str
) -> None:
    # AWS's advice for SQS event sources: a shorter visibility would redeliver messages still being worked on.
    mapping = event_source_mapping(cfn, queue)
    assert cfn.function_behind(mapping["FunctionName"]) == function
    assert cfn.props(queue)["VisibilityTimeout"] >= 6 * cfn.props(function)["Timeout"]


def test_redrive_policy_sends_to_the_dlq_after_max_receive_count(cfn: Cfn) -> None:
    redrive = cfn.props("DeletionQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    # The function learns the same number, to recognise a message's last receive.
    assert env(cfn, QUEUE_FUNCTION)["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}
    pattern = cfn.doc["Parameters"]["MaxReceiveCount"]["AllowedPattern"]
    assert not re.fullmatch(pattern, "0") and re.fullmatch(pattern, "1") and re.fullmatch(pattern, "100")
    assert re.fullmatch(pattern, cfn.parameter_default("MaxReceiveCount"))


def test_callbacks_are_parked_in_their_own_dlq_after_the_receives_the_function_counts_on(cfn: Cfn) -> None:
    redrive = cfn.props("CallbackQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}
    # The function spaces its retries out by the receive count: it must know the count at which SQS parks one.
    assert str(redrive["maxReceiveCount"]) == env(cfn, CALLBACK_FUNCTION)["MAX_RECEIVE_COUNT"]
    # A moved message keeps its original enqueue time: the DLQ must keep it longer than the queue did.
    assert (
        cfn.props("CallbackDeadLetterQueue")["MessageRetentionPeriod"]
        > cfn.props("CallbackQueue")["MessageRetentionPeriod"]
    )


def test_the_callback_backoff_fits_sqss_twelve_hours_with_the_templates_timeouts(cfn: Cfn) -> None:
    # A record's backoff is set after up to the queue's visibility timeout (a late invoke) and the function's
    # timeout (the attempt): the backoff's allowance for that time must cover both, or SQS refuses the backoff.
    in_flight = cfn.props("CallbackQueue")["VisibilityTimeout"] + cfn.props(CALLBACK_FUNCTION)["Timeout"]
    assert in_flight <= IN_FLIGHT_ALLOWANCE_S
    # and the queue keeps a message past its last attempt, so that SQS's redrive, not expiry, ends it
    attempts = cfn.props("CallbackQueue")["RedrivePolicy"]["maxReceiveCount"]
    span = sum(retry_after_s(n, attempts) for n in range(1, attempts + 1))
    assert span + attempts * in_flight < cfn.props("CallbackQueue")["MessageRetentionPeriod"]


def test_both_queues_keep_messages_14_days_and_a_backlog_alarms_long_before(cfn: Cfn) -> None:
    # 14 days is SQS's maximum. A tenant's backlog must outlive any outage worth waiting out, and a moved message
    # keeps its original enqueue time, so the DLQ cannot outlive the source queue: the age alarm fires long before.
    assert cfn.props("DeadLetterQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert cfn.props("DeletionQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600
    alarm = cfn.props("DeletionQueueBacklogAlarm")
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage" and alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeletionQueue", "QueueName"]}}]
    assert alarm["Threshold"] * alarm.get("EvaluationPeriods", 1) < 24 * 3600


def queue_policy(cfn: Cfn, queue: str) -> list[dict[str, Any]]:
    [policy] = [
        p for p in cfn.of_type("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_the_stack_has_exactly_these_queues(cfn: Cfn) -> None:
    assert set(cfn.of_type("AWS::SQS::Queue")) == set(ALL_QUEUES)


@pytest.mark.parametrize("queue", ALL_QUEUES)
def test_queues_are_encrypted_and_refuse_plain_http(cfn: Cfn, queue: str) -> None:
    props = cfn.props(queue)
    assert props.get("KmsMasterKeyId") or props.get("SqsManagedSseEnabled") is True
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] == "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def statement_named(cfn: Cfn, queue: str, sid: str) -> dict[str, Any]:
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] == sid]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    return statement


def test_only_the_api_and_queue_functions_and_the_operator_role_may_send_to_the_deletion_queue(cfn: Cfn) -> None:
    # The queue function trusts a message's tenant and audit fields: whatever another principal's IAM policy
    # allows, the queue's own policy denies it SendMessage (which SendMessageBatch is authorized as). The queue
    # function sends there only a run's source file, an item it recorded in the run's request.
    statement = statement_named(cfn, "DeletionQueue", "OnlyTheFunctionsAndOperatorsSend")
    assert statement["Action"] == "sqs:SendMessage"
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [
        {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["QueueFunctionRole", "Arn"]},
        OPERATOR,
    ]
    # and the callback function's and the sweeper's roles may not
    deletion_queue = {"Fn::GetAtt": ["DeletionQueue", "Arn"]}
    for role in ("CallbackFunctionRole", "SweeperFunctionRole"):
        assert not [
            statement
            for statement, _ in statements(cfn, role)
            if "sqs:SendMessage" in as_list(statement["Action"]) and deletion_queue in as_list(statement["Resource"])
        ], role


@pytest.mark.parametrize(
    ("queue", "function_role"), [("DeletionQueue", "QueueFunctionRole"), ("CallbackQueue", "CallbackFunctionRole")]
)
def test_only_the_consuming_function_may_receive_so_only_it_holds_receipt_handles(
    cfn: Cfn, queue: str, function_role: str
) -> None:
    # The functions act only on records whose receipt handle SQS confirms as their queue's: nobody else may get one.
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"].endswith("Receives")]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert set(statement["Action"]) == {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"}
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [function_role, "Arn"]}}}


def test_only_the_functions_that_complete_requests_and_operators_may_send_to_the_callback_queue(cfn: Cfn) -> None:
    # A callback is a signed POST to a tenant's URL: only the functions that complete requests may queue one, and
    # the operator role (a redrive from the callback DLQ sends there). The callback function may not.
    statement = statement_named(cfn, "CallbackQueue", "OnlyTheFunctionsSend")
    assert statement["Action"] == "sqs:SendMessage"
    functions = [
        {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["QueueFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["SweeperFunctionRole", "Arn"]},  # a request whose runs expired completes
    ]
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [*functions, OPERATOR]}}
    # and the roles' own grants agree: no other role of the stack is allowed to send there
    callbacks = {"Fn::GetAtt": ["CallbackQueue", "Arn"]}
    senders = {
        role
        for role in cfn.of_type("AWS::IAM::Role")
        for statement, _ in statements(cfn, role)
        if "sqs:SendMessage" in as_list(statement["Action"]) and callbacks in as_list(statement["Resource"])
    }
    assert senders == {"ApiFunctionRole", "QueueFunctionRole", "SweeperFunctionRole", "OperatorRole"}


@pytest.mark.parametrize(
    ("queue", "senders"),
    [
        ("DeadLetterQueue", [{"Fn::GetAtt": ["QueueFunctionRole", "Arn"]}, OPERATOR]),
        ("CallbackDeadLetterQueue", OPERATOR),
    ],
)
def test_dead_letter_queues_take_messages_only_from_their_redrive_the_queue_function_and_operators(
    cfn: Cfn, queue: str, senders: Any
) -> None:
    # A redriven message is recorded under the request its attributes name: nobody else may put one there. SQS's
    # own redrive (after maxReceiveCount) needs no grant.
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] != "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": senders}}


def test_sqs_event_source_reports_batch_item_failures_and_caps_concurrency(cfn: Cfn) -> None:
    mapping = event_source_mapping(cfn, "DeletionQueue")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "BatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "BatchingWindowSeconds"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}
    pattern = cfn.doc["Parameters"]["MaximumConcurrency"]["AllowedPattern"]
    assert not re.fullmatch(pattern, "1") and re.fullmatch(pattern, "2")  # the service minimum
    # The mapping targets the published alias, so SnapStart (when on) serves the queue path too.
    assert cfn.resources[cfn.ref_target(mapping["FunctionName"]) or ""]["Type"] == "AWS::Lambda::Alias"


def test_callback_event_source_takes_one_delivery_at_a_time_and_caps_concurrency(cfn: Cfn) -> None:
    mapping = event_source_mapping(cfn, "CallbackQueue")
    assert cfn.function_behind(mapping["FunctionName"]) == CALLBACK_FUNCTION
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # One delivery per invocation, at once: a slow tenant delays no other, and each may take the full timeout.
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (1, 0)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert cfn.resources[cfn.ref_target(mapping["FunctionName"]) or ""]["Type"] == "AWS::Lambda::Alias"
