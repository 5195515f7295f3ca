"""Slow upstreams against small remaining times: every invocation returns before Lambda's deadline.

Each case gives the handler a context with little time left and an Extend that stalls, lags, throttles with a
long ``Retry-After`` or paces requests, with a read timeout far longer than the invocation (so only the deadline
can bound it). Whatever the mix, the handler answers while the context still has time, every record it did not
finish comes back as a batch item failure, and every record it consumed really is gone from Extend.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

import pytest

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from parser_run_deleter.entrypoints import queue_function
from tests.support.queue_delivery import delivered
from tests.support.stacks import Emitted, InProcessStack
from tests.support.waiting import wait_until

WS = "ws_test"


def body(parser_run_id: str) -> str:
    return json.dumps({"parserRunId": parser_run_id})


def warm_up(stack: InProcessStack, emitted: Emitted) -> None:
    """One ordinary invocation first, as a warm container has had: the key is cached, the clients are built.

    The measured invocation is then about slow Extend, not about a cold Secrets Manager fetch (covered apart).
    """
    stack.extend.seed(["pr_warm_up"], workspace_id=WS)
    assert queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record(body("pr_warm_up")))), stack.context()
    ) == {"batchItemFailures": []}
    stack.extend.reset_stats()
    emitted.read().documents.clear()


def run_batch(stack: InProcessStack, ids: list[str], timeout_s: float) -> tuple[dict[str, Any], float]:
    context = stack.context(timeout_s=timeout_s)
    event = delivered(stack, sqs_event(*(sqs_record(body(i), message_id=i) for i in ids)))
    response = queue_function.lambda_handler(event, context)
    return response, context.get_remaining_time_in_millis()


def assert_accounted(stack: InProcessStack, emitted: Emitted, ids: list[str], response: dict[str, Any]) -> set[str]:
    """Every record is either returned, or consumed after Extend really deleted it; returns the returned ids."""
    returned = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert returned <= set(ids)
    consumed = set(ids) - returned
    for parser_run_id in consumed:
        assert not stack.extend.exists(parser_run_id, workspace_id=WS)
    lines = {line["correlation_id"]: line for line in emitted.outcome_logs}
    assert set(lines) == set(ids)  # one outcome line per record, finished or not
    for parser_run_id in returned:
        assert lines[parser_run_id]["outcome"] == "failed"
        assert lines[parser_run_id]["retryable"] is True
    for parser_run_id in consumed:
        assert lines[parser_run_id]["outcome"] in ("deleted", "not_found")
    return returned


# (name, remaining seconds, faults per id, emulator-wide latency, extra env)
CASES = [
    ("every call stalls 5 s, 1.5 s left", 1.5, [Fault.stall(5)], 0.0, {}),
    ("every call stalls 5 s, 3 s left", 3.0, [Fault.stall(5)], 0.0, {}),
    ("less time left than the safety margin", 0.4, [], 0.0, {}),
    ("no time left at all", 0.0, [], 0.0, {}),
    ("429 asking for 30 s, 2 s left", 2.0, [Fault.rate_limited(retry_after=30)] * 3, 0.0, {}),
    ("HTTP-date Retry-After far away, 2 s left", 2.0, [Fault.rate_limited(30, retry_after_http_date=True)], 0.0, {}),
    ("resets then stalls, 2 s left", 2.0, [Fault.reset(), Fault.stall(5)], 0.0, {}),
    ("0.3 s latency, one worker, 2 s left", 2.0, [], 0.3, {"EXTEND_MAX_CONCURRENCY": "1"}),
    ("2 requests/s pacing, 2 s left", 2.0, [], 0.0, {"EXTEND_MAX_REQUESTS_PER_SECOND": "2"}),
    ("long backoffs, 2 s left", 2.0, [Fault.status(503)] * 3, 0.0, {"EXTEND_BACKOFF_BASE_SECONDS": "5",
                                                                    "EXTEND_BACKOFF_CAP_SECONDS": "20"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "remaining_s", "faults", "latency_s", "env"), CASES, ids=[c[0] for c in CASES])
def test_the_handler_returns_before_its_deadline_with_unfinished_records_failed(
    stack: InProcessStack,
    emitted: Emitted,
    name: str,
    remaining_s: float,
    faults: list[Fault],
    latency_s: float,
    env: dict[str, str],
) -> None:
    # Given ten runs, an Extend that misbehaves for each, and a read timeout longer than the whole invocation
    ids = [f"pr_deadline_{index}" for index in range(10)]
    stack.extend.seed(ids, workspace_id=WS)
    for parser_run_id in ids:
        stack.extend.inject(parser_run_id, *faults)
    stack.extend.latency_s = latency_s
    stack.set_env(EXTEND_READ_TIMEOUT_SECONDS="30", EXTEND_CONNECT_TIMEOUT_SECONDS="30", **env)
    warm_up(stack, emitted)

    # When a batch arrives with little time left
    response, remaining_ms = run_batch(stack, ids, remaining_s)

    # Then the handler answered while Lambda would still have waited for it
    assert remaining_ms > 0 or remaining_s == 0.0
    # and every record is accounted for: consumed only when really deleted, else returned as retryable
    returned = assert_accounted(stack, emitted, ids, response)
    if faults or latency_s or env:
        assert returned, f"{name}: expected at least one unfinished record"


def test_zero_remaining_time_still_answers_and_calls_no_one(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a context whose deadline has already passed
    ids = ["pr_late_1", "pr_late_2"]
    stack.extend.seed(ids, workspace_id=WS)
    warm_up(stack, emitted)

    # When a batch arrives
    response, _ = run_batch(stack, ids, 0.0)

    # Then nothing was attempted and every record comes back
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == set(ids)
    assert stack.extend.requests == []
    assert all("out of time" in line["reason"] for line in emitted.outcome_logs)


def test_a_stalled_call_is_cut_at_the_deadline_not_at_the_read_timeout(stack: InProcessStack, emitted: Emitted) -> None:
    # Given one run whose deletion stalls for 5 s, a 30 s read timeout and 1.5 s left
    stack.extend.seed(["pr_stalled"], workspace_id=WS)
    stack.extend.inject("pr_stalled", Fault.stall(5))
    stack.set_env(EXTEND_READ_TIMEOUT_SECONDS="30", DEADLINE_SAFETY_MARGIN_SECONDS="0.5")
    warm_up(stack, emitted)
    context = stack.context(timeout_s=1.5)

    # When the handler runs it
    response = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record(body("pr_stalled"), message_id="m"))), context
    )
    answered_with_ms = context.get_remaining_time_in_millis()

    # Then it gave up inside its safety margin and returned the record for redelivery
    assert answered_with_ms > 0
    assert response == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    [line] = emitted.outcome_logs
    assert line["outcome"] == "failed" and line["retryable"] is True
    assert line["attempts"] == 1 and "out of time" in line["reason"]
    # and the redelivery is safe: Extend finished the deletion after all, and a second delete is a not_found
    wait_until(lambda: not stack.extend.exists("pr_stalled", workspace_id=WS), timeout_s=10)
    stack.extend.clear_faults()
    again = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record(body("pr_stalled"), message_id="m"))), stack.context()
    )
    assert again == {"batchItemFailures": []}
    assert emitted.outcome_logs[-1]["outcome"] == "not_found"


class SilentServer:
    """A loopback TCP server that accepts connections and never answers: an AWS endpoint that hangs."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                self._connections.append(self._listener.accept()[0])

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        for connection in [*self._connections, self._listener]:
            connection.close()


def test_a_hanging_secrets_manager_on_a_cold_start_does_not_overrun_the_deadline(
    stack: InProcessStack, emitted: Emitted
) -> None:
    # Given a cold container whose Secrets Manager endpoint accepts connections and never answers
    silent = SilentServer()
    stack.set_env(AWS_ENDPOINT_URL_SECRETS_MANAGER=silent.url)
    from aws_lambda_powertools.utilities.parameters import constants

    constants.DEFAULT_PROVIDERS.clear()  # the provider (and its boto3 client) is rebuilt against the silent endpoint
    stack.extend.seed(["pr_cold"], workspace_id=WS)
    context = stack.context(timeout_s=3.0)
    outcome: dict[str, Any] = {}

    def invoke() -> None:
        outcome["response"] = queue_function.lambda_handler(
            delivered(stack, sqs_event(sqs_record(body("pr_cold"), message_id="m"))), context
        )

    # When a batch arrives with 3 s left
    worker = threading.Thread(target=invoke, daemon=True)
    worker.start()
    worker.join(timeout=context.timeout_s + 1)
    finished_in_time = "response" in outcome and context.get_remaining_time_in_millis() > 0
    silent.close()  # lets a hung fetch fail fast, so nothing outlives the test for long
    worker.join(timeout=30)
    constants.DEFAULT_PROVIDERS.clear()

    # Then it answered before its deadline, with the record returned
    assert finished_in_time
    assert outcome["response"] == {"batchItemFailures": [{"itemIdentifier": "m"}]}


API_CASES = [
    # (name, remaining seconds, env, faults, whether queueing must have fitted)
    ("stall 5 s, sync budget 1 s, 20 s left", 20.0, {"API_SYNC_BUDGET_SECONDS": "1"}, [Fault.stall(5)], True),
    ("429 asking for 30 s, 20 s left", 20.0, {"API_SYNC_BUDGET_SECONDS": "2"}, [Fault.rate_limited(30)], True),
    ("Extend unreachable, 20 s left", 20.0, {"API_SYNC_BUDGET_SECONDS": "1"}, "unreachable", True),
    ("stall 5 s, only 2 s left", 2.0, {}, [Fault.stall(5)], False),
    ("less time than the safety margin", 0.9, {"DEADLINE_SAFETY_MARGIN_SECONDS": "1"}, [], False),
]


@pytest.mark.parametrize(
    ("name", "remaining_s", "env", "faults", "must_queue"), API_CASES, ids=[c[0] for c in API_CASES]
)
def test_a_sync_api_delete_that_cannot_finish_in_time_is_queued_not_lost(
    stack: InProcessStack,
    emitted: Emitted,
    name: str,
    remaining_s: float,
    env: dict[str, str],
    faults: Any,
    must_queue: bool,
) -> None:
    from tests.support.api import accepted, invoke, queued_messages, rest_event

    # Given a run whose deletion cannot complete within the request's budget (a warm container, key cached)
    stack.set_env(EXTEND_READ_TIMEOUT_SECONDS="30", **env)
    warm_up(stack, emitted)
    stack.extend.seed(["pr_sync_slow"], workspace_id=WS)
    if faults == "unreachable":
        stack.extend.set_unreachable(True)
    else:
        stack.extend.inject("pr_sync_slow", *faults)
    context = stack.context(timeout_s=remaining_s)

    # When the customer asks for it synchronously
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_sync_slow"), context)
    answered_with_ms = context.get_remaining_time_in_millis()
    stack.extend.set_unreachable(False)

    # Then the answer came before the deadline
    assert answered_with_ms > 0
    queued = [message["parserRunId"] for message in queued_messages(stack)]
    if must_queue or answer.status == 202:
        # and, with the function's real timeout, the request is on the deletion queue: 202, not lost
        assert answer.status == 202 and accepted(answer) == {
            "id": "pr_sync_slow",
            "resource": "parser_runs",
            "parserRunId": "pr_sync_slow",
            "status": "queued",
        }
        assert queued == ["pr_sync_slow"]
        [line] = [line for line in emitted.outcome_logs if line["parser_run_id"] == "pr_sync_slow"]
        assert line["outcome"] == "queued" and line["trigger"] == "api"
    else:
        # or, with too little time left even to queue safely, a refusal the caller must retry: nothing half-done
        assert answer.status == 503 and answer.headers["retry-after"].isdigit()
        assert queued == []
