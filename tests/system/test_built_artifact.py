"""The artifact `sam build` produced, run as Lambda would run it, against moto's server and the Extend emulator.

A fresh Python process gets only what the deployed function gets: the function's build directory, then the
layer's ``python/`` directory on the path (boto3 comes from this venv, standing in for the runtime's), the
environment variables the template gives QueueFunction (with local values for the secret, Extend's URL and the
queues), the handler named in the template, and a sample event from ``events/``.

The layer's wheels are for CPython 3.14 on aarch64; its packages are pure Python, so they import here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.moto_stack import aws_client
from parser_run_deleter.logic.ledger_records import request_id_for_message
from tests.support.queue_delivery import delivered
from tests.support.secret_guard import SECRET_VALUES
from tests.support.stacks import InProcessStack
from tests.support.template import EVENTS, ROOT, BuiltArtifacts, Cfn

pytestmark = pytest.mark.slow

QUEUE_FUNCTION = "QueueFunction"
LAYER = "DependenciesLayer"
ELF_MACHINE_AARCH64 = 0xB7

RUNNER = r"""
import importlib, json, sys, time

handler_spec, event_path, result_path, timeout_s = sys.argv[1:]


class Context:
    function_name = "QueueFunction"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:QueueFunction:live"
    memory_limit_in_mb = 256
    aws_request_id = "5d3f1c2e-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/stack/queue-function"
    log_stream_name = "2026/01/01/[1]0000"

    def __init__(self, timeout_s):
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


module_name, function_name = handler_spec.rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), function_name)
with open(event_path, encoding="utf-8") as f:
    event = json.load(f)
result = handler(event, Context(float(timeout_s)))
origins = {name: sys.modules[name].__file__ for name in (module_name, "aws_lambda_powertools", "urllib3", "boto3")}
with open(result_path, "w", encoding="utf-8") as f:
    json.dump({"result": result, "origins": origins}, f)
"""


def local_value(cfn: Cfn, value: Any, local: dict[str, str]) -> str | None:
    """A template value as this test deploys it: references to local stand-ins, parameters at their defaults."""
    if isinstance(value, str | int | float):
        return str(value)
    if "Ref" in value:
        name = value["Ref"]
        if name in local:
            return local[name]
        assert name in cfn.doc["Parameters"], f"no local stand-in for resource {name}"
        default = cfn.parameter_default(name)
        return None if default in (None, "") else str(default)
    if "Fn::FindInMap" in value:
        return str(cfn.find_in_map(value))
    if "Fn::If" in value:
        # Locally every optional feature (a workspace id, SnapStart) is off.
        _, _, otherwise = value["Fn::If"]
        return None if otherwise == {"Ref": "AWS::NoValue"} else local_value(cfn, otherwise, local)
    raise AssertionError(f"cannot resolve {value!r} locally")


def function_environment(cfn: Cfn, stack: InProcessStack) -> dict[str, str]:
    local = {
        "ExtendApiKeySecretArn": stack.secret_arn,
        "ExtendApiBaseUrl": stack.extend.base_url,
        "DeadLetterQueue": stack.queues.dead_letter_queue_url,
        "DeletionQueue": stack.queues.queue_url,
    }
    if stack.tables is not None:
        local["TenantsTable"] = stack.tables.tenants_table
        local["LedgerTable"] = stack.tables.ledger_table
    # The callback queue is only written to when a tenant has a callback URL; it exists here all the same.
    sqs = aws_client("sqs", stack.endpoint)
    local["CallbackQueue"] = sqs.create_queue(QueueName=f"callbacks-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    variables = cfn.props(QUEUE_FUNCTION)["Environment"]["Variables"]
    resolved = {name: local_value(cfn, value, local) for name, value in variables.items()}
    return {name: value for name, value in resolved.items() if value is not None}


def layer_dir(built: BuiltArtifacts) -> Path:
    [layer_ref] = built.template["Globals"]["Function"]["Layers"]
    assert layer_ref == {"Ref": LAYER}
    path = built.layer_python_dir(built.template["Resources"][LAYER]["Properties"]["ContentUri"])
    assert path.is_dir(), path
    return path


def test_layer_holds_the_pinned_runtime_dependencies_and_nothing_native_to_this_machine(built: BuiltArtifacts) -> None:
    python_dir = layer_dir(built)
    installed = {path.name.split("-")[0].lower() for path in python_dir.glob("*.dist-info")}
    pinned = {
        line.split("==")[0].strip().lower().replace("-", "_")
        for line in (ROOT / "layers" / "dependencies" / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert pinned <= installed
    # boto3 comes from the Lambda runtime (README): a transitive dependency dragging it in would be noticed here.
    assert not {"boto3", "botocore", "s3transfer"} & installed
    assert not list(python_dir.rglob("__pycache__"))
    for shared_object in python_dir.rglob("*.so"):
        header = shared_object.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, shared_object


def test_built_queue_function_deletes_a_parser_run_from_the_sample_sqs_event(
    cfn: Cfn, built: BuiltArtifacts, stack: InProcessStack, tmp_path: Path
) -> None:
    # Given the run named in events/sqs_receive_message.json exists in Extend, and the sample delivered from the
    # deletion queue (the function acts only on records whose receipt handle SQS issued for its queue)
    sample = json.loads((EVENTS / "sqs_receive_message.json").read_text(encoding="utf-8"))
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(delivered(stack, sample)), encoding="utf-8")
    [record] = sample["Records"]
    parser_run_id = json.loads(record["body"])["parserRunId"]
    stack.extend.seed([parser_run_id], workspace_id=stack.workspace_id)
    # and a process that sees only the built function, its layer and the template's environment
    function_dir = built.function_dir(QUEUE_FUNCTION)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(function_dir), str(layer_dir(built))]),
        "PYTHONDONTWRITEBYTECODE": "1",  # keep .aws-sam/build exactly as sam build left it
        "AWS_ENDPOINT_URL": stack.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": QUEUE_FUNCTION,
        **function_environment(cfn, stack),
    }
    props = cfn.props(QUEUE_FUNCTION)
    result_path = tmp_path / "result.json"

    # When the handler the template names is invoked with the sample event
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, props["Handler"], str(event_path), str(result_path), str(props["Timeout"])],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]

    # Then the message is consumed and the run is gone, after exactly one DELETE
    outcome = json.loads(result_path.read_text(encoding="utf-8"))
    assert outcome["result"] == {"batchItemFailures": []}, output[-3000:]
    assert not stack.extend.exists(parser_run_id, workspace_id=stack.workspace_id)
    deletes = [request for request in stack.extend.requests_for(parser_run_id) if request.method == "DELETE"]
    assert [(request.path, request.status) for request in deletes] == [(f"/parser_runs/{parser_run_id}", 200)]
    # and the code ran from the build: the function's own modules and the layer's packages, not this checkout's
    origins = {name: Path(path).resolve() for name, path in outcome["origins"].items()}
    entry_module = props["Handler"].rsplit(".", 1)[0]
    assert origins[entry_module].is_relative_to(function_dir.resolve())
    assert origins["aws_lambda_powertools"].is_relative_to(layer_dir(built).resolve())
    assert origins["urllib3"].is_relative_to(layer_dir(built).resolve())
    # and it emitted the metric the alarms and dashboard read, under the template's namespace and dimensions
    documents = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    namespace = env["POWERTOOLS_METRICS_NAMESPACE"]
    deleted = [
        document
        for document in documents
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", [])
        if directive["Namespace"] == namespace and {"Name": "ParserRunDeleted", "Unit": "Count"} in directive["Metrics"]
    ]
    assert len(deleted) == 1
    assert (deleted[0]["service"], deleted[0]["trigger"]) == (env["POWERTOOLS_SERVICE_NAME"], "sqs")
    assert [d["outcome"] for d in documents if "outcome" in d] == ["deleted"]
    # and the receipt is in the ledger the template names, under the request the message is recorded by
    assert stack.tables is not None and env["LEDGER_TABLE_NAME"] == stack.tables.ledger_table
    run = aws_client("dynamodb", stack.endpoint).get_item(
        TableName=stack.tables.ledger_table,
        Key={
            "pk": {"S": "REQ#" + request_id_for_message(record["messageId"])},
            "sk": {"S": f"RUN#{parser_run_id}"},
        },
    )["Item"]
    assert run["outcome"] == {"S": "deleted"}
    # and no secret reached the output
    assert not [value for value in SECRET_VALUES if value in output]
