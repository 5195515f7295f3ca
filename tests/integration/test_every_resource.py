"""Beyond one parse run: every Extend resource type, a run with its source file, dry runs and cancellation, through
the API and queue functions against moto and the Extend emulator. The emulator's request log is the proof of what
reached Extend; the ledger (the status resource) and the callbacks must agree with it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from devstack.extend_emulator import Fault
from parser_run_deleter.intake.event_shapes import UnsupportedEvent
from parser_run_deleter.shared.extend_resources import (
    API_2025,
    API_2026,
    RESOURCES,
    Resource,
    resource_for_id,
)
from tests.integration.test_ledger import consume_queue, items_of, status
from tests.support.api import TENANT_ID, Answer, invoke, queued_messages, rest_event
from tests.support.stacks import Emitted, InProcessStack, reset_functions

WS = "ws_test"
# One id per type, each with the prefix Extend gives it under 2026-02-09.
TYPED_2026 = {
    Resource.PARSE_RUNS: "pr_one",
    Resource.EXTRACT_RUNS: "exr_one",
    Resource.CLASSIFY_RUNS: "clr_one",
    Resource.SPLIT_RUNS: "splr_one",
    Resource.EDIT_RUNS: "edr_one",
    Resource.WORKFLOW_RUNS: "workflow_run_one",
    Resource.FILES: "file_one",
}
TYPED_2025 = {
    Resource.PARSER_RUNS: "parser_run_one",
    Resource.PROCESSOR_RUNS: "dpr_one",
    Resource.WORKFLOW_RUNS: "workflow_run_one",
    Resource.FILES: "file_one",
}


def post(body: dict[str, Any]) -> Answer:
    return invoke(rest_event("POST", "/deletions", body=json.dumps(body)))


def calls(stack: InProcessStack) -> list[tuple[str, str]]:
    """Every request that reached Extend, as (method, path)."""
    return [(request.method, request.path) for request in stack.extend.requests]


def drain(stack: InProcessStack, rounds: int = 4) -> None:
    """Hand the deletion queue to the queue function until it is empty (a source file's message comes after its
    run's)."""
    for _ in range(rounds):
        try:
            consume_queue(stack)
        except UnsupportedEvent:  # an empty batch: the queue is drained
            return


def use_version(stack: InProcessStack, version: str) -> None:
    stack.set_env(EXTEND_API_VERSION=version)


# ---------------------------------------------------------------- every type, on both paths


@pytest.mark.parametrize(("version", "typed"), [(API_2026, TYPED_2026), (API_2025, TYPED_2025)])
def test_each_type_is_deleted_at_its_own_path_and_the_receipt_names_the_type(
    stack: InProcessStack, version: str, typed: dict[Resource, str]
) -> None:
    use_version(stack, version)
    for resource, item_id in typed.items():
        stack.extend.seed([item_id], workspace_id=WS, resource=resource.value)
    # When each is deleted through its own path
    answers = {
        resource: invoke(rest_event("DELETE", f"/{resource.value}/{item_id}")) for resource, item_id in typed.items()
    }
    # Then each is deleted at Extend's path for its type, in the tenant's workspace, and at nothing else
    assert calls(stack) == [("DELETE", f"/{resource.value}/{item_id}") for resource, item_id in typed.items()]
    assert {request.workspace_id for request in stack.extend.requests} == {WS}
    for resource, item_id in typed.items():
        answer = answers[resource]
        assert answer.status == 200 and answer.body["resource"] == resource.value and answer.body["id"] == item_id
        assert not stack.extend.exists(item_id, WS)
        # and its receipt names the type
        [item] = status(answer.body["deletionRequestId"]).body["items"]
        assert (item["id"], item["resource"], item["outcome"]) == (item_id, resource.value, "deleted")


def test_ids_are_typed_by_prefix_and_an_unknown_prefix_is_rejected_with_its_reason(stack: InProcessStack) -> None:
    use_version(stack, API_2026)
    for resource, item_id in TYPED_2026.items():
        stack.extend.seed([item_id], workspace_id=WS, resource=resource.value)
    # When a bulk request names every type by its prefix, and one id whose prefix is no type's
    answer = post({"ids": [*TYPED_2026.values(), "batch_123"]})
    assert answer.status == 202 and answer.body["queued"] == len(TYPED_2026)
    [rejected] = answer.body["rejected"]
    assert rejected["id"] == "batch_123" and "prefix names no Extend resource type" in rejected["reason"]
    # and each message names its type (a parse run keeps the message format it always had)
    messages = {message.get("id", message.get("parserRunId")): message for message in queued_messages(stack)}
    assert messages["pr_one"].get("resource") is None and messages["file_one"]["resource"] == "files"
    for message in messages.values():  # queued_messages took them off the queue: put them back as they were
        stack.sqs().send_message(
            QueueUrl=stack.queues.queue_url, MessageBody=json.dumps(message), MessageGroupId=TENANT_ID
        )
    drain(stack)
    # Then each was deleted at its own path, once, and the unknown prefix never reached Extend
    assert sorted(calls(stack)) == sorted(("DELETE", f"/{r.value}/{i}") for r, i in TYPED_2026.items())
    record = status(answer.body["deletionRequestId"])
    assert record.body["status"] == "completed_with_failures"  # the rejected id
    assert {item["id"]: item["resource"] for item in record.body["items"] if item["outcome"] == "deleted"} == {
        item_id: resource.value for resource, item_id in TYPED_2026.items()
    }


def test_under_2026_the_parser_runs_path_deletes_the_parse_run_at_parse_runs(stack: InProcessStack) -> None:
    # The migration guide says /parse_runs "replaced" /parser_runs: a caller of the old path is served, not broken
    use_version(stack, API_2026)
    stack.extend.seed(["pr_old_caller"], workspace_id=WS)
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_old_caller"))
    assert answer.status == 200
    assert answer.body["parserRunId"] == "pr_old_caller" and answer.body["resource"] == "parse_runs"
    assert calls(stack) == [("DELETE", "/parse_runs/pr_old_caller")]


def test_a_type_the_version_does_not_have_is_a_404_that_says_which_it_has(stack: InProcessStack) -> None:
    use_version(stack, API_2025)
    answer = invoke(rest_event("DELETE", "/extract_runs/exr_one"))
    assert answer.status == 404 and "not a resource type of Extend API 2025-04-21" in answer.body["message"]
    assert "processor_runs" in answer.body["message"]
    assert invoke(rest_event("DELETE", "/widgets/w_1")).status == 404
    assert calls(stack) == []


def test_prefixes_follow_the_version() -> None:
    assert resource_for_id("exr_1", API_2026) is Resource.EXTRACT_RUNS
    assert resource_for_id("exr_1", API_2025) is Resource.PROCESSOR_RUNS
    assert resource_for_id("parser_run_1", API_2026) is Resource.PARSE_RUNS
    assert resource_for_id("pr_", API_2026) is None  # a prefix alone names nothing
    assert set(RESOURCES[API_2026]) - set(RESOURCES[API_2025]) >= {Resource.EDIT_RUNS, Resource.SPLIT_RUNS}


# ---------------------------------------------------------------- ownership per type


@pytest.fixture
def metadata_tenant(stack: InProcessStack) -> Any:
    """The stack's tenant, moved to the metadata policy (key "owner"), under 2026-02-09."""
    from tests.support.api import use_signer

    use_version(stack, API_2026)
    added = stack.register_tenant("meta", ownership="metadata", metadata_key="owner", api_key_ids=("metakey001",))
    use_signer(added.signing_secret)
    return added


def meta_event(method: str, path: str, body: str | None = None) -> dict[str, Any]:
    return rest_event(method, path, body=body, api_key_id="metakey001")


def test_the_metadata_policy_reads_each_types_get_before_any_delete(
    stack: InProcessStack, metadata_tenant: Any
) -> None:
    mine, theirs = {"owner": "meta"}, {"owner": "someone-else"}
    stack.extend.seed(["exr_mine"], workspace_id=WS, resource="extract_runs", metadata=mine)
    stack.extend.seed(["clr_theirs"], workspace_id=WS, resource="classify_runs", metadata=theirs)
    mine_answer = invoke(meta_event("DELETE", "/extract_runs/exr_mine"))
    theirs_answer = invoke(meta_event("DELETE", "/classify_runs/clr_theirs"))
    # Then each was read at its own type's path first, and only the tenant's own was deleted
    assert calls(stack) == [
        ("GET", "/extract_runs/exr_mine"),
        ("DELETE", "/extract_runs/exr_mine"),
        ("GET", "/classify_runs/clr_theirs"),
    ]
    assert (mine_answer.status, theirs_answer.status) == (200, 404)
    assert stack.extend.exists("clr_theirs", WS)


def test_the_metadata_policy_refuses_files_with_a_reason_and_never_deletes_blind(
    stack: InProcessStack, metadata_tenant: Any
) -> None:
    stack.extend.seed_file("file_meta", WS)
    answer = invoke(meta_event("DELETE", "/files/file_meta"))
    assert answer.status == 422 and "Extend keeps no custom metadata on them" in answer.body["message"]
    bulk = invoke(meta_event("POST", "/deletions", json.dumps({"ids": ["file_meta"]})))
    assert bulk.status == 202 and bulk.body["queued"] == 0
    assert "cannot tell whose files are" in bulk.body["rejected"][0]["reason"]
    assert calls(stack) == [] and stack.extend.exists("file_meta", WS)


# ---------------------------------------------------------------- a run and its source file


def test_a_run_is_deleted_then_its_source_file_as_its_own_item_of_the_same_request(stack: InProcessStack) -> None:
    use_version(stack, API_2026)
    stack.extend.seed(["pr_doc"], workspace_id=WS, file_id="file_doc")
    stack.extend.seed_file("file_doc", WS)
    # When the run's deletion includes its file
    answer = invoke(rest_event("DELETE", "/parse_runs/pr_doc?include=file"))
    assert answer.status == 202 and answer.body["status"] == "queued"
    drain(stack)
    # Then Extend saw the run read (for its file), the run deleted, and only then the file deleted
    assert calls(stack) == [
        ("GET", "/parse_runs/pr_doc"),
        ("DELETE", "/parse_runs/pr_doc"),
        ("DELETE", "/files/file_doc"),
    ]
    assert not stack.extend.exists("pr_doc", WS) and not stack.extend.exists("file_doc", WS)
    # and the request holds both, each with its type, completed
    record = status(answer.body["deletionRequestId"])
    assert record.body["status"] == "completed"
    items = items_of(record)
    assert (items["pr_doc"]["resource"], items["pr_doc"]["outcome"]) == ("parse_runs", "deleted")
    assert (items["file_doc"]["resource"], items["file_doc"]["outcome"]) == ("files", "deleted")
    assert record.body["counts"]["deleted"] == 2 and record.body["counts"]["queued"] == 0


def test_include_is_part_of_the_signature_so_it_cannot_be_added_to_a_signed_delete(stack: InProcessStack) -> None:
    from tests.support.api import signature_headers

    headers = signature_headers(stack.tenant.signing_secret, None, method="DELETE", path="/parse_runs/pr_doc")
    tampered = invoke(rest_event("DELETE", "/parse_runs/pr_doc?include=file", headers=headers, sign=False))
    assert tampered.status == 401
    assert invoke(rest_event("DELETE", "/parse_runs/pr_doc?include=everything")).status == 400
    assert calls(stack) == []


def test_a_file_is_kept_when_its_run_was_not_deleted(stack: InProcessStack) -> None:
    use_version(stack, API_2026)
    stack.extend.seed(["pr_stuck"], workspace_id=WS, file_id="file_stuck")
    stack.extend.seed_file("file_stuck", WS)
    stack.extend.inject("pr_stuck", Fault.error(403, "FORBIDDEN", "no"))  # the run's DELETE refused for good
    answer = post({"ids": ["pr_stuck"], "include": ["file"]})
    for _ in range(6):
        try:
            consume_queue(stack, receive_count=5)
        except UnsupportedEvent:
            break
    record = status(answer.body["deletionRequestId"])
    items = items_of(record)
    assert items["pr_stuck"]["outcome"] == "dead_lettered"
    assert items["file_stuck"]["outcome"] == "rejected" and "was not deleted" in items["file_stuck"]["reason"]
    assert ("DELETE", "/files/file_stuck") not in calls(stack) and stack.extend.exists("file_stuck", WS)


# ---------------------------------------------------------------- dry runs


def test_a_dry_run_checks_each_item_with_a_get_and_never_sends_a_delete(stack: InProcessStack) -> None:
    use_version(stack, API_2026)
    stack.extend.seed(["pr_there"], workspace_id=WS, file_id="file_there")
    stack.extend.seed_file("file_there", WS)
    stack.extend.seed(["exr_elsewhere"], workspace_id="ws_other", resource="extract_runs")
    answer = post({"ids": ["pr_there", "exr_elsewhere", "clr_missing"], "dryRun": True, "include": ["file"]})
    assert answer.status == 202 and answer.body["dryRun"] is True
    drain(stack)
    # Then Extend saw reads only
    assert {method for method, _ in calls(stack)} == {"GET"}
    assert stack.extend.exists("pr_there", WS) and stack.extend.exists("file_there", WS)
    # and each item ends would_delete or not_found (another workspace's looks missing), the file included
    record = status(answer.body["deletionRequestId"])
    outcomes = {item_id: item["outcome"] for item_id, item in items_of(record).items()}
    assert outcomes == {
        "pr_there": "would_delete",
        "file_there": "would_delete",
        "exr_elsewhere": "not_found",
        "clr_missing": "not_found",
    }
    assert record.body["status"] == "completed" and record.body["dryRun"] is True


# ---------------------------------------------------------------- cancellation


def cancel(request_id: str) -> Answer:
    return invoke(rest_event("POST", f"/deletions/{request_id}/cancel"))


def test_a_cancelled_request_sends_nothing_more_to_extend_and_keeps_what_was_done(stack: InProcessStack) -> None:
    ids = [f"pr_c{n}" for n in range(4)]
    stack.extend.seed(ids, workspace_id=WS)
    request_id = post({"parserRunIds": ids}).body["deletionRequestId"]
    # Given one run already deleted through the queue (the others still queued)
    messages = queued_messages(stack)
    first, rest = messages[0], messages[1:]
    stack.sqs().send_message(QueueUrl=stack.queues.queue_url, MessageBody=json.dumps(first), MessageGroupId=TENANT_ID)
    consume_queue(stack)
    assert calls(stack) == [("DELETE", f"/parser_runs/{first['parserRunId']}")]
    # When the tenant cancels
    answer = cancel(request_id)
    assert answer.status == 202
    assert (answer.body["status"], answer.body["cancelled"]) == ("cancelled", 3)
    assert answer.body["counts"]["deleted"] == 1 and answer.body["counts"]["cancelled"] == 3
    # and the cancelled runs' messages are delivered all the same
    for message in rest:
        stack.sqs().send_message(
            QueueUrl=stack.queues.queue_url, MessageBody=json.dumps(message), MessageGroupId=TENANT_ID
        )
    drain(stack)
    # Then none of them reached Extend, and the ledger agrees
    assert calls(stack) == [("DELETE", f"/parser_runs/{first['parserRunId']}")]
    record = status(request_id).body
    assert record["status"] == "cancelled" and record["counts"]["queued"] == 0
    assert {item["outcome"] for item in record["items"]} == {"deleted", "cancelled"}
    # and a second cancel changes nothing
    again = cancel(request_id)
    assert (again.status, again.body["cancelled"], again.body["counts"]) == (202, 0, record["counts"])


def test_only_the_requests_own_tenant_may_cancel_it(stack: InProcessStack) -> None:
    from tests.support.api import signature_headers

    other = stack.register_tenant("globex", workspace_id="ws_globex", api_key_ids=("g1l2o3b4e5",))
    stack.extend.seed(["pr_keep"], workspace_id=WS)
    request_id = post({"parserRunIds": ["pr_keep"]}).body["deletionRequestId"]
    path = f"/deletions/{request_id}/cancel"
    headers = signature_headers(other.signing_secret, None, method="POST", path=path)
    theirs = invoke(rest_event("POST", path, headers=headers, api_key_id="g1l2o3b4e5", sign=False))
    assert (theirs.status, theirs.body) == (404, {"message": "no such deletion request"})
    assert status(request_id).body["counts"]["queued"] == 1  # untouched


def test_a_completed_request_stays_as_it_was_when_cancelled(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_done"], workspace_id=WS)
    done = invoke(rest_event("DELETE", "/parser_runs/pr_done"))
    answer = cancel(done.body["deletionRequestId"])
    assert (answer.status, answer.body["status"], answer.body["cancelled"]) == (202, "completed", 0)
    assert "cancelledAt" not in answer.body


def test_every_request_is_due_by_its_tenants_deadline_and_says_whether_it_is_overdue(stack: InProcessStack) -> None:
    from parser_run_deleter.shared.timestamps import parse_iso

    stack.tenant_admin().set_limits(TENANT_ID, deadline_days=45)
    reset_functions()  # the API function's tenant cache
    request_id = post({"parserRunIds": ["pr_due"]}).body["deletionRequestId"]
    body = status(request_id).body
    assert parse_iso(body["dueBy"]) - parse_iso(body["createdAt"]) == pytest.approx(45 * 86_400, abs=1)
    assert body["overdue"] is False


def test_a_file_message_the_ledger_does_not_hold_as_that_runs_file_deletes_nothing(stack: InProcessStack) -> None:
    # Given a request with a run whose file was included, and another file of the tenant's
    use_version(stack, API_2026)
    stack.extend.seed(["pr_src"], workspace_id=WS, file_id="file_src")
    stack.extend.seed_file("file_src", WS)
    stack.extend.seed_file("file_other", WS)
    request_id = post({"ids": ["pr_src"], "include": ["file"]}).body["deletionRequestId"]
    drain(stack)
    assert not stack.extend.exists("file_src", WS)
    # When a message claims another file as that run's source file, in that request
    forged = {
        "id": "file_other",
        "resource": "files",
        "sourceOf": "pr_src",
        "deletionRequestId": request_id,
        "tenantId": TENANT_ID,
    }
    stack.sqs().send_message(QueueUrl=stack.queues.queue_url, MessageBody=json.dumps(forged), MessageGroupId=TENANT_ID)
    drain(stack)
    # Then it is dead-lettered with its reason, and nothing reached Extend for it
    assert stack.extend.exists("file_other", WS)
    assert not [r for r in stack.extend.requests if r.parser_run_id == "file_other"]
    [parked] = stack.dead_letters()
    assert "not recorded as the source file of that run" in parked["MessageAttributes"]["FailureReason"]["StringValue"]


def test_a_cancel_tells_the_tenant_with_the_final_counts_and_every_item_has_its_line(
    stack: InProcessStack, emitted: Emitted
) -> None:
    stack.tenant_admin().set_callback(TENANT_ID, "https://tenant.example/callbacks")
    reset_functions()  # the API function's tenant cache
    stack.extend.seed(["pr_cb1"], workspace_id=WS)
    request_id = post({"ids": ["pr_cb1", "pr_cb2", "batch_x"]}).body["deletionRequestId"]
    answer = cancel(request_id)
    assert (answer.status, answer.body["cancelled"]) == (202, 2)
    # Then the request completed as cancelled, once, and its callback is queued
    callbacks = stack.sqs().receive_message(QueueUrl=os.environ["CALLBACK_QUEUE_URL"], MaxNumberOfMessages=10)
    [message] = callbacks["Messages"]
    assert json.loads(message["Body"])["deletionRequestId"] == request_id
    record = status(request_id).body
    assert record["status"] == "cancelled" and record["callback"]["state"] == "pending"
    assert (record["counts"]["cancelled"], record["counts"]["rejected"]) == (2, 1)
    # and every id of it has exactly its outcome lines: rejected once, queued then cancelled
    lines = [(line["parser_run_id"], line["outcome"]) for line in emitted.outcome_logs]
    assert sorted(lines) == [
        ("batch_x", "rejected"),
        ("pr_cb1", "cancelled"),
        ("pr_cb1", "queued"),
        ("pr_cb2", "cancelled"),
        ("pr_cb2", "queued"),
    ]
    assert calls(stack) == []
