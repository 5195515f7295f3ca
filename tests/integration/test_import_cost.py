"""Cold-start hygiene, checked in fresh interpreters: what a cold instance imports, per trigger and setting.

* With tracing off (the template's default), neither the X-Ray SDK nor a Tracer is created.
* Each entry point imports its own path only: serving an SQS batch never imports the API's modules or
  Powertools' event handler, and the API function never imports the SQS batch handling.
* With tracing on, the handler is wrapped by ``capture_lambda_handler`` (the Tracer itself disables X-Ray
  outside Lambda, so nothing is sent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.events import sqs_event, sqs_record
from parser_run_deleter.shared import observability
from tests.support.queue_delivery import delivered
from tests.support.stacks import InProcessStack

ROOT = Path(__file__).resolve().parents[2]
API_MODULES = (
    "parser_run_deleter.intake.api_",
    "parser_run_deleter.logic.api_use_cases",
    "parser_run_deleter.logic.signature_verifier",
    "parser_run_deleter.logic.webhook_signature",
    "aws_lambda_powertools.event_handler",
)
QUEUE_MODULES = ("parser_run_deleter.intake.queue_records", "parser_run_deleter.intake.sqs_batch")

SERVE_ONE_SQS_RECORD = """
import json, sys
from parser_run_deleter.entrypoints import queue_function
from devstack.lambda_context import LocalLambdaContext
response = queue_function.lambda_handler(json.loads(sys.argv[1]), LocalLambdaContext())
from parser_run_deleter.shared import observability
print(json.dumps({"response": response, "tracer": observability.tracer is not None, "modules": sorted(sys.modules)}))
"""


def run_fresh(code: str, *args: str, **env: str) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "handler"), str(ROOT)]), **env}
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], env=environment, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


IMPORT_ENTRY_POINT = """
import json, sys
from parser_run_deleter.entrypoints import {entry_point}
from parser_run_deleter.shared import observability
print(json.dumps({{"tracer": observability.tracer is not None, "modules": sorted(sys.modules)}}))
"""


@pytest.mark.parametrize(
    ("entry_point", "other_path"), [("queue_function", API_MODULES), ("api_function", QUEUE_MODULES)]
)
def test_importing_an_entry_point_with_tracing_off_imports_no_xray_and_not_the_other_path(
    entry_point: str, other_path: tuple[str, ...]
) -> None:
    seen = run_fresh(IMPORT_ENTRY_POINT.format(entry_point=entry_point), POWERTOOLS_TRACE_DISABLED="true")
    assert seen["tracer"] is False
    assert not [name for name in seen["modules"] if name.startswith("aws_xray_sdk")]
    assert f"parser_run_deleter.entrypoints.{entry_point}" in seen["modules"]
    assert not [name for name in seen["modules"] if name.startswith(other_path)]


def one_record(stack: InProcessStack, parser_run_id: str) -> str:
    """An SQS event of one record, delivered from the stack's deletion queue, as a command-line argument."""
    return json.dumps(delivered(stack, sqs_event(sqs_record(json.dumps({"parserRunId": parser_run_id})))))


def test_an_sqs_cold_start_never_imports_the_api_path(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_cold"], workspace_id="ws_test")
    seen = run_fresh(SERVE_ONE_SQS_RECORD, one_record(stack, "pr_cold"), POWERTOOLS_TRACE_DISABLED="true")
    assert seen["response"] == {"batchItemFailures": []}
    assert not stack.extend.exists("pr_cold", workspace_id="ws_test")
    assert not [name for name in seen["modules"] if name.startswith(API_MODULES)]
    assert not [name for name in seen["modules"] if name.startswith("aws_xray_sdk")]


def test_with_tracing_on_the_handler_is_traced(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_traced"], workspace_id="ws_test")
    seen = run_fresh(SERVE_ONE_SQS_RECORD, one_record(stack, "pr_traced"), POWERTOOLS_TRACE_DISABLED="false")
    assert seen["response"] == {"batchItemFailures": []}
    assert seen["tracer"] is True


@pytest.mark.parametrize(
    ("value", "enabled"), [("true", False), ("1", False), ("TRUE", False), ("false", True), ("", True)]
)
def test_tracing_switch(value: str, enabled: bool) -> None:
    assert observability.tracing_enabled({"POWERTOOLS_TRACE_DISABLED": value}) is enabled


def test_trace_handler_wraps_only_when_a_tracer_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"echo": event}

    monkeypatch.setattr(observability, "tracer", None)
    assert observability.trace_handler(handler) is handler

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    tracer = observability._create_tracer()
    assert tracer is not None
    monkeypatch.setattr(observability, "tracer", tracer)
    traced = observability.trace_handler(handler)
    assert traced is not handler
    assert traced({"a": 1}, InProcessStack.context()) == {"echo": {"a": 1}}
