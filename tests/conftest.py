"""Shared fixtures: moto's server and the Extend emulator on loopback, and a guard against leaked secrets.

Given / When / Then in the tests reads as: the stack is arranged through real servers, the handler is invoked
with a Lambda-shaped event, and what it returned, logged, counted and did to the servers is asserted.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "parser-run-deleter")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ExtendParserRunDeleter")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from aws_lambda_powertools.utilities import parameters

from devstack.extend_emulator import ExtendEmulator
from devstack.lambda_context import LocalLambdaContext
from devstack.logs import metric_totals
from devstack.moto_stack import (
    QueuePair,
    apply_local_aws_env,
    aws_client,
    create_queues,
    moto_server,
    put_secret,
    rotate_secret,
)
from parser_run_deleter.adapters import deletion_queue, wiring
from parser_run_deleter.shared import observability

# The function logs to the process's real stdout, as in Lambda. Binding it to fd 1 (not to whichever capture
# object pytest had installed at import time) lets pytest's fd capture see every line, from every thread.
observability.logger.registered_handler.setStream(sys.__stdout__)

# Every secret value a test creates; no test's captured output may contain one.
SECRET_VALUES: set[str] = set()


def new_api_key() -> str:
    key = f"sk_test_{secrets.token_hex(12)}"
    SECRET_VALUES.add(key)
    return key


def register_secret(value: str) -> str:
    SECRET_VALUES.add(value)
    return value


# What the code under test answered during the current test (handler responses, HTTP bodies), for the hook.
SEEN_RESPONSES: list[str] = []


def record_response(text: str) -> str:
    """Add an HTTP response body (or any answer a caller would see) to what the secret hook scans."""
    SEEN_RESPONSES.append(text)
    return text


@pytest.fixture(autouse=True)
def _record_handler_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of either entry point (API responses included) is scanned for secrets too."""
    from parser_run_deleter.entrypoints import api_function, queue_function

    for entry_point in (api_function, queue_function):
        handler = entry_point.lambda_handler

        def recording_handler(event: Any, context: Any, handler: Any = handler) -> Any:
            response = handler(event, context)
            record_response(json.dumps(response, default=str))
            return response

        monkeypatch.setattr(entry_point, "lambda_handler", recording_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured output, responses or raised error contains a secret value."""
    outcome = yield
    report = outcome.get_result()
    # Captured stdout, stderr and log records: everything the code under test printed. (Tracebacks are left
    # out: pytest shows fixture arguments there, and tests legitimately hold keys.) Also every response the
    # test saw, and the message of any error the code raised (a test's own assertion text is left out).
    texts = [content for _, content in report.sections] + SEEN_RESPONSES
    if call.excinfo is not None and not isinstance(call.excinfo.value, AssertionError):
        error: BaseException | None = call.excinfo.value
        while error is not None:
            texts.append(f"{type(error).__name__}: {error}")
            error = error.__cause__ or error.__context__
    if call.when == "teardown":
        SEEN_RESPONSES.clear()
    leaked = sorted({value[:12] + "…" for value in SECRET_VALUES for text in texts if value in text})
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"secret value(s) leaked into captured output: {leaked}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        apply_local_aws_env(endpoint)
        yield endpoint


@pytest.fixture
def extend() -> Iterator[ExtendEmulator]:
    with ExtendEmulator() as emulator:
        yield emulator


@dataclass
class Emitted:
    """What the handler printed: Powertools JSON log lines and EMF metric blobs."""

    capsys: pytest.CaptureFixture[str]
    text: str = ""
    documents: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> Emitted:
        out = self.capsys.readouterr().out
        self.text += out
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                self.documents.append(json.loads(line))
        for value in SECRET_VALUES:
            assert value not in self.text, "a secret value was printed"
        return self

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [document for document in self.read().documents if "_aws" not in document]

    @property
    def outcome_logs(self) -> list[dict[str, Any]]:
        return [document for document in self.logs if "outcome" in document]

    def metric_totals(self) -> Counter[str]:
        return metric_totals(self.read().documents)

    def metric_dimensions(self, metric_name: str) -> list[dict[str, Any]]:
        return [
            {key: document.get(key) for dims in directive["Dimensions"] for key in dims}
            for document in self.read().documents
            for directive in document.get("_aws", {}).get("CloudWatchMetrics", [])
            if any(metric["Name"] == metric_name for metric in directive["Metrics"])
        ]


@pytest.fixture
def emitted(capfd: pytest.CaptureFixture[str]) -> Emitted:
    return Emitted(capfd)


@dataclass
class InProcessStack:
    """One test's world for a handler called in this process: the secret and queues in moto, the Extend
    emulator, and the environment the handler reads (the ``stack`` fixture)."""

    endpoint: str
    extend: ExtendEmulator
    api_key: str
    secret_arn: str
    queues: QueuePair
    monkeypatch: pytest.MonkeyPatch
    workspace_id: str = "ws_test"

    def set_env(self, **variables: str | None) -> None:
        for name, value in variables.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        wiring.reset()

    def sqs(self) -> Any:
        return aws_client("sqs", self.endpoint)

    def rotate_key(self) -> str:
        """Rotate the Extend key: the new one goes into the secret, and Extend refuses the old one."""
        new_key = new_api_key()
        self.extend.add_key(new_key, workspace_id=self.workspace_id)
        rotate_secret(self.endpoint, self.secret_arn, new_key)
        self.extend.revoke_key(self.api_key)
        self.api_key = new_key
        return new_key

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = self.sqs()
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queues.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    @staticmethod
    def context(timeout_s: float = 30.0) -> LocalLambdaContext:
        return LocalLambdaContext(timeout_s=timeout_s)


@pytest.fixture
def stack(moto_endpoint: str, extend: ExtendEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessStack]:
    api_key = new_api_key()
    extend.add_key(api_key, workspace_id="ws_test")
    secret_arn = put_secret(moto_endpoint, api_key)
    queues = create_queues(moto_endpoint)
    stack = InProcessStack(moto_endpoint, extend, api_key, secret_arn, queues, monkeypatch)
    stack.set_env(
        EXTEND_API_KEY_SECRET_ID=secret_arn,
        EXTEND_API_BASE_URL=extend.base_url,
        EXTEND_API_VERSION="2025-04-21",
        DEAD_LETTER_QUEUE_URL=queues.dead_letter_queue_url,
        DELETION_QUEUE_URL=queues.queue_url,
        MAX_RECEIVE_COUNT=str(queues.max_receive_count),
        EXTEND_BACKOFF_BASE_SECONDS="0.01",
        EXTEND_BACKOFF_CAP_SECONDS="0.05",
        EXTEND_MAX_REQUESTS_PER_SECOND="1000",
        DEADLINE_SAFETY_MARGIN_SECONDS="0.5",
    )
    parameters.clear_caches()
    deletion_queue.reset()
    observability.metrics.clear_metrics()
    yield stack
    parameters.clear_caches()
    wiring.reset()
