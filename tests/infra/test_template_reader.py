"""The template reader: CloudFormation tags, parameters, conditions, and functions found by event source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_the_project_template_yields_the_four_functions_and_the_queues() -> None:
    # Given template.yaml with the secret parameter supplied (it has no default)
    template = Template.load(REPO_ROOT / "template.yaml", {"ExtendApiKeySecretArn": "arn:local:secret"})
    template.resolver.refs.update(
        {
            "DeletionQueue": "http://queue",
            "DeadLetterQueue": "http://dlq",
            "CallbackQueue": "http://callbacks",
            "LedgerTable": "ledger",
        }
    )

    # Then it has the four functions, two of them SQS-triggered (the sweeper has its schedule)
    assert set(template.functions()) == {"QueueFunction", "ApiFunction", "CallbackFunction", "SweeperFunction"}
    assert {spec.logical_id: spec.sqs.queue_logical_id for spec in template.sqs_functions() if spec.sqs} == {
        "QueueFunction": "DeletionQueue",
        "CallbackFunction": "CallbackQueue",
    }
    # and the queue function is the deletion queue's consumer (the queue the API enqueues to), though two
    # functions are SQS-triggered, configured from parameters
    queue = template.queue_function()
    assert queue.logical_id == "QueueFunction"
    assert (
        queue.handler == "parser_run_deleter.entrypoints.queue_function.lambda_handler"
        and queue.code_uri == REPO_ROOT / "handler"
    )
    assert queue.sqs is not None and queue.sqs.queue_logical_id == "DeletionQueue"
    assert queue.sqs.report_batch_item_failures
    assert queue.sqs.batch_size >= 1 and queue.sqs.maximum_concurrency is not None
    assert queue.environment["DEAD_LETTER_QUEUE_URL"] == "http://dlq"
    assert queue.environment["EXTEND_API_KEY_SECRET_ID"] == "arn:local:secret"
    assert queue.environment["CALLBACK_QUEUE_URL"] == "http://callbacks"  # Globals reach every function
    # and the callback function takes one delivery at a time from the callback queue
    [callback] = [spec for spec in template.sqs_functions() if spec.logical_id == "CallbackFunction"]
    assert callback.handler == "parser_run_deleter.entrypoints.callback_function.lambda_handler"
    assert callback.sqs is not None and callback.sqs.report_batch_item_failures
    assert (callback.sqs.batch_size, callback.sqs.batching_window_s, callback.sqs.maximum_concurrency) == (1, 0.0, 2)
    assert callback.environment["LEDGER_TABLE_NAME"] == "ledger"
    assert callback.environment["TENANT_SECRET_PREFIX"] == "local/tenants"
    # and the API function is the one with Api events, without the unset optional signing secret
    api = template.api_function()
    assert {(route.method, route.path) for route in api.api_routes} == {
        ("DELETE", "/{resource}/{id}"),
        ("POST", "/deletions"),
        ("GET", "/deletions/{id}"),
        ("POST", "/deletions/{id}/cancel"),
    }
    assert api.environment["DELETION_QUEUE_URL"] == "http://queue"
    assert "WEBHOOK_SIGNING_SECRET_ID" not in api.environment
    assert api.timeout_s < queue.timeout_s
    assert template.api(api.api_logical_id).api_key_required
    # and each queue redrives to its own DLQ: the deletion queue after the parameter's default receives
    queues = template.queues()
    assert set(queues) == {"DeletionQueue", "DeadLetterQueue", "CallbackQueue", "CallbackDeadLetterQueue"}
    assert queues["DeletionQueue"].dead_letter_logical_id == "DeadLetterQueue"
    default = int(template.document["Parameters"]["MaxReceiveCount"]["Default"])
    assert queues["DeletionQueue"].max_receive_count == default
    assert queues["CallbackQueue"].dead_letter_logical_id == "CallbackDeadLetterQueue"
    assert queues["CallbackQueue"].max_receive_count == int(callback.environment["MAX_RECEIVE_COUNT"])
    assert queues["CallbackQueue"].visibility_timeout_s >= 6 * callback.timeout_s
    # and the local stack creates the ledger with its keys, index and TTL
    ledger = template.tables()["LedgerTable"]
    assert (ledger.hash_key, ledger.ttl_attribute) == ("pk", "expiresAt")
    assert [index["IndexName"] for index in ledger.global_secondary_indexes] == ["byTenant"]


def sqs_function(queue: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": f"{queue.lower()}.handler",
            "Events": {"Poll": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": [queue, "Arn"]}}}},
        },
    }


def test_among_several_sqs_functions_the_queue_function_is_the_one_on_the_queue_the_api_enqueues_to() -> None:
    # Declared first, the other SQS function must not be taken for the deletion queue's consumer.
    document: dict[str, Any] = {
        "Globals": {"Function": {"CodeUri": "handler/"}},
        "Resources": {
            "CallbackQueue": {"Type": "AWS::SQS::Queue"},
            "DeletionQueue": {"Type": "AWS::SQS::Queue"},
            "Callbacks": sqs_function("CallbackQueue"),
            "Deletions": sqs_function("DeletionQueue"),
            "Api": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "api.handler",
                    "Environment": {"Variables": {"DELETION_QUEUE_URL": {"Ref": "DeletionQueue"}}},
                },
            },
        },
    }
    template = Template(document, Resolver(document), root=REPO_ROOT)
    assert [spec.logical_id for spec in template.sqs_functions()] == ["Callbacks", "Deletions"]
    assert template.queue_function().logical_id == "Deletions"
    # Without a function naming its deletion queue, two SQS functions are ambiguous: the reader says so.
    del document["Resources"]["Api"]
    with pytest.raises(TemplateError, match="found 0"):
        template.queue_function()
