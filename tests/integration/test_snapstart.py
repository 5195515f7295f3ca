"""SnapStart hooks: nothing from before a snapshot (connections, the cached key, the pacing schedule) survives
a restore, and the hooks register only where Lambda's runtime provides ``snapshot_restore_py``."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable

import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from devstack.events import sqs_event, sqs_record
from parser_run_deleter.adapters.extend_client import ExtendClient
from parser_run_deleter.entrypoints import api_function, callback_function, queue_function
from parser_run_deleter.shared import snapstart
from tests.support.queue_delivery import delivered
from tests.support.stacks import InProcessStack

WS = "ws_test"


def body(parser_run_id: str) -> str:
    return json.dumps({"parserRunId": parser_run_id})


def test_after_restore_drops_connections_cached_secret_and_schedule(stack: InProcessStack) -> None:
    # Given a warm instance: a kept-alive connection to Extend, the key cached, a throttled pacing schedule
    stack.extend.seed(["pr_warm"], workspace_id=WS)
    assert queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_warm")))), stack.context()) == {
        "batchItemFailures": []
    }
    before = queue_function.root.services().services
    client = before.extend
    assert isinstance(client, ExtendClient)
    client._rate_limiter.on_throttled(retry_after_s=30)
    assert len(client._pool.pools) >= 1
    assert "secrets" in DEFAULT_PROVIDERS
    assert queue_function.root.clients._clients  # the SQS and DynamoDB clients, built

    # When Lambda restores the snapshot
    snapstart.after_restore()

    # Then all of it is gone, and what the next invocation builds is fresh
    assert len(client._pool.pools) == 0
    assert "secrets" not in DEFAULT_PROVIDERS
    assert queue_function.root.clients._clients == {}
    assert client._rate_limiter.rate == client._rate_limiter.max_rate
    assert client._rate_limiter.reserve(max_wait_s=0) == 0.0
    assert queue_function.root.services().services is not before


def test_a_key_rotated_while_the_snapshot_slept_is_used_without_a_401(stack: InProcessStack) -> None:
    # Given a snapshot taken with the old key cached
    stack.extend.seed(["pr_before", "pr_after"], workspace_id=WS)
    queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_before")))), stack.context())
    stack.rotate_key()

    # When it is restored and invoked
    snapstart.after_restore()
    response = queue_function.lambda_handler(delivered(stack, sqs_event(sqs_record(body("pr_after")))), stack.context())

    # Then the new key was read before the first call: no 401 round trip
    assert response == {"batchItemFailures": []}
    assert [request.status for request in stack.extend.requests] == [200, 200]


def test_after_restore_runs_every_entry_points_resets_once_each_and_before_anything_was_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the three entry points imported in one process, in any order (the tests do), and nothing built yet
    for function in (api_function, queue_function, callback_function):
        function.root.reset()
    calls: list[str] = []
    registered = list(snapstart._resets)

    def counted(reset: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            calls.append(name_of(reset))
            reset()

        return run

    monkeypatch.setattr(snapstart, "_resets", [counted(reset) for reset in registered])

    # When Lambda restores a snapshot, twice
    snapstart.after_restore()
    snapstart.after_restore()

    # Then every reset any entry point registered ran, once per restore, without failing on what was never built
    names = {name_of(reset) for reset in registered}
    assert len(calls) == 2 * len(registered) and set(calls) == names
    roots = {id(function.root) for function in (api_function, queue_function, callback_function)}
    assert {id(reset.__self__) for reset in registered if hasattr(reset, "__self__")} >= roots
    assert len(names) == len(registered)  # each registered once: importing another entry point adds, never repeats


def name_of(reset: Callable[[], None]) -> str:
    owner = getattr(reset, "__self__", None)
    return f"{reset.__module__}.{reset.__qualname__}@{id(owner)}"


def test_hooks_register_only_inside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    resets = list(snapstart._resets)
    monkeypatch.setattr(snapstart, "_resets", [])
    monkeypatch.delitem(sys.modules, "snapshot_restore_py", raising=False)
    assert snapstart.register(*resets) is False

    registered: dict[str, Callable[[], None]] = {}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = lambda hook: registered.setdefault("after", hook)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)

    assert snapstart.register(*resets) is True
    assert registered == {"after": snapstart.after_restore}
    assert snapstart._resets == resets
