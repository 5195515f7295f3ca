"""Any SQS message body: the handler answers a well-formed partial batch response and never raises.

Each message ends in exactly one known place: consumed with an outcome (deleted / not found), dead-lettered with
its reason, or returned for redelivery. No id that fails validation ever reaches Extend.
"""

from __future__ import annotations

import json
import string
import uuid
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.logic.queue_messages import InvalidDeletionRequest, parse_deletion_message
from tests.support.queue_delivery import delivered
from tests.support.stacks import Emitted, InProcessStack

WS = "ws_test"
VALID_ALPHABET = string.ascii_letters + string.digits + "_-"
EXISTING = [f"pr_exists_{index}" for index in range(5)]
VALID_PATH = r"/parser_runs/[A-Za-z0-9_-]{1,255}"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
string_ids = st.one_of(
    st.sampled_from(EXISTING),
    st.text(VALID_ALPHABET, min_size=1, max_size=40),
    st.text(max_size=40),
    st.sampled_from(["../etc/passwd", "a/b", "%2e%2e", "x?y", "x#y", " pr_1", "pr_1\n", "pr\u00e9", "", "a" * 256]),
)
id_like = st.one_of(string_ids, json_values)
object_bodies = st.fixed_dictionaries(
    {"parserRunId": id_like},
    optional={
        "workspaceId": st.one_of(st.just(WS), st.text(max_size=12), json_values),
        "requestedBy": st.one_of(st.text(max_size=30), json_values),
        "reason": st.text(max_size=300),
        "extra": json_values,
    },
).map(json.dumps)
bodies = st.one_of(
    object_bodies,
    st.builds(json.dumps, json_values),
    string_ids,
    st.text(max_size=200),
    st.builds(json.dumps, st.sampled_from(EXISTING)),  # a JSON string: a bare id
)


def parsed_id(body: str) -> str | None:
    try:
        return parse_deletion_message(body).parser_run_id
    except InvalidDeletionRequest:
        return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.lists(st.tuples(bodies, st.integers(min_value=1, max_value=3)), min_size=1, max_size=6),
    fault_seed=st.integers(0, 2**32),
)
@example(
    batch=[
        (b, 1) for b in ['{"parserRunId": "../etc/passwd"}', "{oops", "", "  ", "null", '["a"]', '{"parserRunId": 7}']
    ],
    fault_seed=0,
)
@example(batch=[(json.dumps({"parserRunId": "pr_exists_0", "workspaceId": "ws/../x"}), 3)], fault_seed=0)
def test_any_batch_is_answered_and_every_message_accounted_for(
    stack: InProcessStack, emitted: Emitted, batch: list[tuple[str, int]], fault_seed: int
) -> None:
    # Given a batch of arbitrary bodies, some naming runs that exist, on any receive up to the last,
    # while Extend fails about a third of the calls
    stack.extend.seed(EXISTING, workspace_id=WS)
    stack.extend.inject_random(
        0.35, [Fault.status(500), Fault.status(403), Fault.reset(), Fault.status(429)], seed=fault_seed
    )
    stack.extend.reset_stats()
    emitted.read()
    already_seen = len(emitted.documents)
    records = [sqs_record(body, message_id=f"m-{uuid.uuid4().hex}", receive_count=n) for body, n in batch]
    message_ids = [record["messageId"] for record in records]

    # When the handler gets it
    response: Any = queue_function.lambda_handler(delivered(stack, sqs_event(*records)), stack.context())

    # Then the answer has exactly Lambda's partial batch response shape, naming only messages of this batch
    assert isinstance(response, dict) and set(response) == {"batchItemFailures"}
    failures = response["batchItemFailures"]
    assert all(set(item) == {"itemIdentifier"} for item in failures)
    returned = [item["itemIdentifier"] for item in failures]
    assert len(returned) == len(set(returned)) and set(returned) <= set(message_ids)

    # and no id that fails validation reached Extend; every request was for an id some body validly named
    valid_ids = {parsed_id(record["body"]) for record in records} - {None}
    # (read from the path: the emulator names the run only for requests that got past its auth checks)
    assert {request.path.removeprefix("/parser_runs/") for request in stack.extend.requests} <= valid_ids
    assert all(request.path.startswith("/parser_runs/") for request in stack.extend.requests)
    for request in stack.extend.requests:
        segment = request.path.removeprefix("/parser_runs/")
        assert segment and all(character in VALID_ALPHABET for character in segment)

    # and each message ended in exactly one known place
    lines: dict[str, list[dict[str, Any]]] = {}
    for document in emitted.read().documents[already_seen:]:
        if "outcome" in document and "_aws" not in document:
            lines.setdefault(document["correlation_id"], []).append(document)
    dead = {m["MessageAttributes"]["SourceMessageId"]["StringValue"]: m for m in stack.dead_letters()}
    for record in records:
        message_id = record["messageId"]
        [line] = lines[message_id]  # exactly one outcome line per message
        event(f"{line['outcome']}{' returned' if message_id in returned else ''}")
        if message_id in returned:
            assert line["outcome"] in ("failed", "invalid") and message_id not in dead
        elif line["outcome"] in ("deleted", "not_found"):
            assert parsed_id(record["body"]) == line["parser_run_id"]
        else:
            assert line["outcome"] in ("invalid", "failed")
            assert dead[message_id]["Body"] == record["body"]
            assert dead[message_id]["MessageAttributes"]["FailureReason"]["StringValue"]
            assert line["dead_letter_message_id"] == dead[message_id]["MessageId"]
    # and an invalid message is never consumed without its dead-letter copy
    for record in records:
        if parsed_id(record["body"]) is None and record["messageId"] not in returned:
            assert record["messageId"] in dead
