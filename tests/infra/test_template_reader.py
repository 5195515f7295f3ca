"""The template reader: CloudFormation tags, parameters, conditions, and functions found by event source."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.template import NO_VALUE, Resolver, Template, TemplateError, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_short_form_tags_load_as_their_long_forms(tmp_path: Path) -> None:
    source = tmp_path / "t.yaml"
    source.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      R: !Ref P\n"
        "      G: !GetAtt Q.Arn\n"
        "      S: !Sub '${AWS::StackName}-x'\n"
        "      I: !If [C, 1, 2]\n"
        "      N: !Not [!Equals [!Ref P, '']]\n",
        encoding="utf-8",
    )
    properties = load_template(source)["Resources"]["A"]["Properties"]
    assert properties == {
        "R": {"Ref": "P"},
        "G": {"Fn::GetAtt": ["Q", "Arn"]},
        "S": {"Fn::Sub": "${AWS::StackName}-x"},
        "I": {"Fn::If": ["C", 1, 2]},
        "N": {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]},
    }


def test_intrinsics_resolve_against_parameters_conditions_and_local_resources() -> None:
    document = {
        "Parameters": {"Name": {"Type": "String", "Default": "abc"}, "Empty": {"Type": "String", "Default": ""}},
        "Conditions": {"HasEmpty": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Empty"}, ""]}]}},
        "Mappings": {"M": {"K": {"V": "mapped"}}},
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    }
    resolver = Resolver(document, {"Empty": ""}, refs={"Q": "http://q"}, attributes={("Q", "Arn"): "arn:q"})
    assert resolver.resolve({"Ref": "Name"}) == "abc"
    assert resolver.resolve({"Fn::Sub": "${Name}/${Q.Arn}/${AWS::Region}"}) == "abc/arn:q/us-east-1"
    assert resolver.resolve({"Fn::Sub": ["${X}-${Q}", {"X": {"Ref": "Name"}}]}) == "abc-http://q"
    assert resolver.resolve({"a": {"Fn::If": ["HasEmpty", 1, {"Ref": "AWS::NoValue"}]}, "b": 2}) == {"b": 2}
    assert resolver.resolve({"Fn::FindInMap": ["M", "K", "V"]}) == "mapped"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Name"}]]}) == "a-abc"
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    with pytest.raises(TemplateError, match="unknown"):
        resolver.resolve({"Ref": "Nope"})


def test_the_project_template_yields_both_functions_and_the_queues() -> None:
    # Given template.yaml with the secret parameter supplied (it has no default)
    template = Template.load(REPO_ROOT / "template.yaml", {"ExtendApiKeySecretArn": "arn:local:secret"})
    template.resolver.refs.update({"DeletionQueue": "http://queue", "DeadLetterQueue": "http://dlq"})

    # Then the queue function is the one an SQS event source mapping points at, configured from parameters
    queue = template.queue_function()
    assert (
        queue.handler == "parser_run_deleter.entrypoints.queue_function.lambda_handler"
        and queue.code_uri == REPO_ROOT / "handler"
    )
    assert queue.sqs is not None and queue.sqs.queue_logical_id == "DeletionQueue"
    assert queue.sqs.report_batch_item_failures
    assert queue.sqs.batch_size >= 1 and queue.sqs.maximum_concurrency is not None
    assert queue.environment["DEAD_LETTER_QUEUE_URL"] == "http://dlq"
    assert queue.environment["EXTEND_API_KEY_SECRET_ID"] == "arn:local:secret"
    # and the API function is the one with Api events, without the unset optional signing secret
    api = template.api_function()
    assert {(route.method, route.path) for route in api.api_routes} == {
        ("DELETE", "/parser_runs/{id}"),
        ("POST", "/deletions"),
    }
    assert api.environment["DELETION_QUEUE_URL"] == "http://queue"
    assert "WEBHOOK_SIGNING_SECRET_ID" not in api.environment
    assert api.timeout_s < queue.timeout_s
    assert template.api(api.api_logical_id).api_key_required
    # and the deletion queue redrives to the DLQ after the parameter's default receives
    queues = template.queues()
    assert queues["DeletionQueue"].dead_letter_logical_id == "DeadLetterQueue"
    default = int(template.document["Parameters"]["MaxReceiveCount"]["Default"])
    assert queues["DeletionQueue"].max_receive_count == default
