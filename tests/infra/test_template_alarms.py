"""What template.yaml says of the alarms and the dashboard: what each alarm watches, whom it tells, and what the
dashboard shows.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from parser_run_deleter.logic.callbacks import retry_after_s
from parser_run_deleter.shared.observability import MetricName
from tests.support.template import (
    ALL_QUEUES,
    CALLBACK_FUNCTION,
    FUNCTIONS,
    QUEUE_FUNCTION,
    Cfn,
    env,
    event_source_mapping,
)


def alarms_on(cfn: Cfn, metric_name: str) -> list[dict[str, Any]]:
    found = []
    for alarm in cfn.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        names = [props.get("MetricName")] + [
            m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        if metric_name in names:
            found.append(props)
    return found


def emf_metrics(props: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in props:
        return [props]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def test_dlq_depth_alarms_fire_on_the_first_message(cfn: Cfn) -> None:
    watched = {}
    for alarm in alarms_on(cfn, "ApproximateNumberOfMessagesVisible"):
        [dimension] = alarm["Dimensions"]
        assert dimension["Name"] == "QueueName"
        watched[cfn.ref_target(dimension["Value"])] = alarm
    # Each dead-letter queue, and only those: a message there is a deletion or a callback that gave up.
    assert set(watched) == {"DeadLetterQueue", "CallbackDeadLetterQueue"}
    for queue, alarm in watched.items():
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum"), queue
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), queue
        assert alarm["EvaluationPeriods"] == 1, queue
        # SQS stops publishing a queue's metrics after six hours without activity, messages or not: silence keeps
        # the last state (ALARM while messages wait), where notBreaching would read it as an empty queue.
        assert alarm["TreatMissingData"] == "ignore", queue


@pytest.mark.parametrize(
    ("queue", "function"), [("DeletionQueue", QUEUE_FUNCTION), ("CallbackQueue", CALLBACK_FUNCTION)]
)
def test_each_source_queue_alarms_when_its_oldest_message_waits_an_hour(cfn: Cfn, queue: str, function: str) -> None:
    [alarm] = [
        alarm
        for alarm in alarms_on(cfn, "ApproximateAgeOfOldestMessage")
        if alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (3600, "GreaterThanThreshold")
    # Polled all the time by its event source mapping, the queue stays active: no data means no message.
    assert cfn.function_behind(event_source_mapping(cfn, queue)["FunctionName"]) == function
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_callback_age_alarm_is_not_set_off_by_retries_in_backoff(cfn: Cfn) -> None:
    # SQS leaves a message received more than three times out of ApproximateAgeOfOldestMessage: by the 4th
    # attempt a callback must be younger than the alarm's threshold, or a tenant's failing endpoint would page.
    attempts = int(env(cfn, CALLBACK_FUNCTION)["MAX_RECEIVE_COUNT"])
    before_fourth_attempt = sum(retry_after_s(n, attempts) for n in range(1, 4))
    [alarm] = [a for a in alarms_on(cfn, "ApproximateAgeOfOldestMessage") if "CallbackQueue" in json.dumps(a)]
    assert before_fourth_attempt + 3 * cfn.props(CALLBACK_FUNCTION)["Timeout"] < alarm["Threshold"]


@pytest.mark.parametrize(
    ("metric", "threshold", "triggers"),
    [
        ("ParserRunDeletionFailed", {"Ref": "DeletionFailureAlarmThreshold"}, {"sqs", "api"}),
        ("WebhookSignatureRejected", {"Ref": "WebhookRejectionAlarmThreshold"}, {"api"}),
        # only the queue function counts it (the API answers 503 instead): the first one alarms
        ("LedgerWriteFailed", 0, {"sqs"}),
    ],
)
def test_outcome_metric_alarms_read_what_the_functions_emit(
    cfn: Cfn, metric: str, threshold: Any, triggers: set[str]
) -> None:
    [alarm] = alarms_on(cfn, metric)
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    namespace = cfn.find_in_map(env(cfn, QUEUE_FUNCTION)["POWERTOOLS_METRICS_NAMESPACE"])
    service = cfn.find_in_map(env(cfn, QUEUE_FUNCTION)["POWERTOOLS_SERVICE_NAME"])
    seen_triggers = set()
    for watched in emf_metrics(alarm):
        assert cfn.find_in_map(watched["Namespace"]) == namespace
        dimensions = {d["Name"]: cfn.find_in_map(d["Value"]) for d in watched["Dimensions"]}
        # EMF metrics carry exactly these dimensions; an alarm naming a different set would never see data.
        assert set(dimensions) == {"service", "trigger"}
        assert dimensions["service"] == service
        seen_triggers.add(dimensions["trigger"])
    assert seen_triggers == triggers


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_one_alarm_per_lambda_metric_watches_all_four_functions(cfn: Cfn, metric: str) -> None:
    # Written once per metric (metric math over the functions), not once per function.
    [alarm] = alarms_on(cfn, metric)
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    watched = [
        query["MetricStat"]["Metric"]["Dimensions"]
        for query in queries.values()
        if "MetricStat" in query and query["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
    ]
    assert sorted(json.dumps(dimensions) for dimensions in watched) == sorted(
        json.dumps([{"Name": "FunctionName", "Value": {"Ref": function}}]) for function in FUNCTIONS
    )
    for query in queries.values():
        if "MetricStat" in query:
            assert query["MetricStat"]["Metric"]["MetricName"] == metric
            assert (query["MetricStat"]["Stat"], query["ReturnData"]) == ("Sum", False)
    # the one series returned adds all four, each read as 0 when a function had no invocations
    [returned] = [query for query in queries.values() if query.get("ReturnData")]
    expression = returned["Expression"]
    for query_id in queries.keys() - {returned["Id"]}:
        assert f"FILL({query_id}, 0)" in expression
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_api_5xx_alarm_watches_this_apis_stage(cfn: Cfn) -> None:
    [alarm] = alarms_on(cfn, "5XXError")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"ApiName": cfn.props("DeletionApi")["Name"], "Stage": "v1"}


def test_every_alarm_notifies_the_topic_when_an_email_is_given(cfn: Cfn) -> None:
    alarms = cfn.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }, name
        assert alarm["Properties"]["OKActions"] == alarm["Properties"]["AlarmActions"], name
        # no data is OK, but for the DLQs, whose silence says nothing (test_dlq_depth_alarms_fire_on_the_first_message)
        expected = "ignore" if name.endswith("DeadLetterQueueNotEmptyAlarm") else "notBreaching"
        assert alarm["Properties"]["TreatMissingData"] == expected, name
    _, subscription = cfn.one_of_type("AWS::SNS::Subscription")
    assert subscription == {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}, "TopicArn": {"Ref": "AlarmTopic"}}
    assert cfn.resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def dashboard_widgets(cfn: Cfn) -> list[dict[str, Any]]:
    """The dashboard's widgets, its ${...} placeholders kept as text (valid JSON once they are filled in)."""
    template, _ = cfn.props("Dashboard")["DashboardBody"]["Fn::Sub"]
    widgets: list[dict[str, Any]] = json.loads(template)["widgets"]
    return widgets


def test_dashboard_shows_every_metric_the_functions_emit_callbacks_ledger_and_tenancy_among_them(cfn: Cfn) -> None:
    emitted = {value for name, value in vars(MetricName).items() if name.isupper()}
    shown: dict[str, set[str]] = {}
    for widget in dashboard_widgets(cfn):
        for line in widget["properties"]["metrics"]:
            if line[0] == "${Namespace}":
                dimensions = dict(zip(line[2::2], line[3::2], strict=False))
                # the dimensions EMF gives every metric: another set would draw nothing
                assert set(dimensions) == {"service", "trigger"} and dimensions["service"] == "${Service}", line
                assert dimensions["trigger"] in {"sqs", "api", "callback", "schedule"}, line
                shown.setdefault(line[1], set()).add(dimensions["trigger"])
    assert set(shown) == emitted
    assert shown["CompletionCallbackDelivered"] == shown["CompletionCallbackFailed"] == {"callback"}
    assert shown["LedgerWriteFailed"] == {"sqs"}
    assert shown["DeletionRequestsOverdue"] == {"schedule"}


def test_dashboard_shows_every_queue_and_the_per_tenant_outcomes(cfn: Cfn) -> None:
    body = json.dumps(dashboard_widgets(cfn))
    for queue in ALL_QUEUES:
        assert f"${{{queue}.QueueName}}" in body, queue
    assert '"ApproximateAgeOfOldestMessage", "QueueName", "${CallbackQueue.QueueName}"' in body
    # EnablePerTenantMetrics' metric, by its filters' namespace and dimensions
    [search] = [
        line[0]["expression"]
        for widget in dashboard_widgets(cfn)
        for line in widget["properties"]["metrics"]
        if isinstance(line[0], dict)
    ]
    [metric_filter] = cfn.props("QueueOutcomesByTenant")["MetricTransformations"]
    dimensions = sorted(dimension["Key"] for dimension in metric_filter["Dimensions"])
    assert f"{{${{Namespace}},{','.join(dimensions)}}}" in search
    assert f'MetricName="{metric_filter["MetricName"]}"' in search
