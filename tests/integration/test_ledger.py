"""The ledger: every accepted call is a deletion request, recorded before it is acknowledged, followed to its end
through ``GET /deletions/{id}``, and kept in agreement with Extend, the queues and the tenant's cap.

Against moto (the ledger table, through a fault proxy where DynamoDB must fail) and the Extend emulator.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import (
    EXPIRED_REASON,
    QUEUE_RETENTION_S,
    OverCap,
    RequestRecord,
    RequestTrigger,
    RunRecord,
)
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.timestamps import iso
from tests.support.api import TENANT_ID, Answer, hold_in_progress, invoke, queued_messages, rest_event
from tests.support.aws_fault_proxy import THROTTLED, UNAVAILABLE, AwsFaultProxy
from tests.support.queue_delivery import after_the_visibility_timeout, delivered, received_records
from tests.support.stacks import Emitted, InProcessStack, reset_functions
from tests.support.waiting import wait_until

WS = "ws_test"


def status(request_id: str, query: str = "") -> Answer:
    return invoke(rest_event("GET", f"/deletions/{request_id}" + (f"?{query}" if query else "")))


def bulk(*ids: str) -> Answer:
    return invoke(rest_event("POST", "/deletions", body=json.dumps({"parserRunIds": list(ids)})))


def consume_queue(stack: InProcessStack, *, receive_count: int = 1, timeout_s: float | None = None) -> dict[str, Any]:
    """Deliver every message on the deletion queue to the queue function, as one batch (with ``timeout_s`` left)."""
    sqs = stack.sqs()
    messages = sqs.receive_message(
        QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    records = received_records(messages, stack.queues.queue_arn, receive_count=receive_count)
    context = stack.context() if timeout_s is None else stack.context(timeout_s=timeout_s)
    result: dict[str, Any] = queue_function.lambda_handler(sqs_event(*records), context)
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    for message in messages:  # what the function consumed, SQS deletes
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=stack.queues.queue_url, ReceiptHandle=message["ReceiptHandle"])
    after_the_visibility_timeout(sqs, stack.queues.queue_url, messages, failed)
    return result


def items_of(answer: Answer) -> dict[str, dict[str, Any]]:
    return {item["parserRunId"]: item for item in answer.body["items"]}


# ---------------------------------------------------------------- following a request to its end


def test_a_bulk_request_is_followed_from_accepted_to_completed(stack: InProcessStack, ledger: Ledger) -> None:
    # Given two runs that exist, one that does not, and an invalid id
    stack.extend.seed(["pr_l1", "pr_l2"], workspace_id=WS)
    accepted = bulk("pr_l1", "pr_l2", "pr_gone", "not valid")
    request_id = accepted.body["deletionRequestId"]
    assert accepted.status == 202 and accepted.body["status"] == "accepted"

    # When it is read before the queue is drained
    before = status(request_id)
    assert before.status == 200 and before.body["status"] == "accepted"
    assert before.body["counts"] == {
        "queued": 3, "deleted": 0, "not_found": 0, "failed": 0, "dead_lettered": 0, "rejected": 1,
        "cancelled": 0, "would_delete": 0,
    }  # fmt: skip
    assert {i: item["outcome"] for i, item in items_of(before).items()} == {
        "pr_l1": "queued", "pr_l2": "queued", "pr_gone": "queued", "not valid": "rejected",
    }  # fmt: skip
    assert ledger.outstanding(TENANT_ID) == 3

    # and after the queue function has done its work
    assert consume_queue(stack) == {"batchItemFailures": []}
    after = status(request_id)

    # Then every run has its receipt, the request is complete (with the rejection counted), nothing is outstanding
    assert after.body["status"] == "completed_with_failures"
    assert after.body["counts"]["deleted"] == 2 and after.body["counts"]["not_found"] == 1
    items = items_of(after)
    for run_id in ("pr_l1", "pr_l2"):
        assert items[run_id]["outcome"] == "deleted" and items[run_id]["completedAt"].endswith("Z")
        assert items[run_id]["extendRequestId"].startswith("req_") and items[run_id]["attempts"] == 1
    assert items["pr_gone"]["outcome"] == "not_found"
    assert "letters, digits" in items["not valid"]["reason"]
    assert ledger.outstanding(TENANT_ID) == 0


def test_a_synchronous_delete_names_its_request_and_the_request_shows_its_receipt(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_sync"], workspace_id=WS)
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_sync"))
    assert answer.status == 200 and answer.headers["location"] == f"/deletions/{answer.body['deletionRequestId']}"
    record = status(answer.body["deletionRequestId"])
    assert record.body["status"] == "completed"
    [item] = record.body["items"]
    assert item["outcome"] == "deleted" and item["extendRequestId"] == stack.extend.requests[-1].request_id


def test_a_permanent_refusal_is_answered_at_once_and_recorded_as_failed(stack: InProcessStack) -> None:
    stack.extend.inject("pr_refused", Fault.error(400, "INVALID_REQUEST", "this run cannot be deleted"))
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_refused"))
    assert answer.status == 502 and answer.body["status"] == "failed"
    assert "INVALID_REQUEST" in answer.body["reason"]
    assert queued_messages(stack) == []  # a retry would meet the same answer: not queued
    record = status(answer.body["deletionRequestId"])
    assert record.body["status"] == "completed_with_failures"
    assert record.body["items"][0]["outcome"] == "failed" and "INVALID_REQUEST" in record.body["items"][0]["reason"]


def test_a_delete_whose_first_answer_was_lost_is_deleted_confirmed_on_retry(stack: InProcessStack) -> None:
    # Given a DELETE that Extend carries out, but whose answer never reaches the client; then its retry
    stack.extend.seed(["pr_lost"], workspace_id=WS)
    stack.extend.inject("pr_lost", Fault.answer_lost())
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_lost"))

    # Then the retry's 404 is the earlier DELETE's doing: deleted, confirmed on retry, and recorded so
    assert [(r.fault, r.status) for r in stack.extend.requests_for("pr_lost")] == [("answer_lost", None), (None, 404)]
    assert not stack.extend.exists("pr_lost", workspace_id=WS)
    assert answer.status == 200 and answer.body["status"] == "deleted"
    [item] = status(answer.body["deletionRequestId"]).body["items"]
    assert item["outcome"] == "deleted" and "confirmed on retry" in item["reason"]


def test_a_404_without_a_lost_answer_before_it_stays_not_found(stack: InProcessStack) -> None:
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_never"))
    [item] = status(answer.body["deletionRequestId"]).body["items"]
    assert item["outcome"] == "not_found" and "reason" not in item


def test_another_tenants_request_looks_like_one_that_does_not_exist(stack: InProcessStack) -> None:
    other = stack.register_tenant("globex", api_key_ids=("g1l2o3b4e5",), workspace_id=WS)
    from tests.support.api import signature_headers

    request_id = bulk("pr_mine").body["deletionRequestId"]
    path = f"/deletions/{request_id}"
    headers = signature_headers(other.signing_secret, None, method="GET", path=path)
    theirs = invoke(rest_event("GET", path, headers=headers, api_key_id="g1l2o3b4e5", sign=False))
    unknown = status("dr_00000000000000000000000000")
    assert (
        (theirs.status, theirs.body) == (unknown.status, unknown.body) == (404, {"message": "no such deletion request"})
    )
    assert status(request_id).status == 200  # and its own tenant reads it


def test_the_runs_of_a_large_request_come_in_pages(stack: InProcessStack) -> None:
    ids = [f"pr_page_{n:04d}" for n in range(250)]
    request_id = bulk(*ids).body["deletionRequestId"]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        answer = status(request_id, f"limit=100&nextToken={token}" if token else "limit=100")
        assert answer.status == 200 and len(answer.body["items"]) <= 100
        seen += [item["parserRunId"] for item in answer.body["items"]]
        pages += 1
        token = answer.body.get("nextToken")
        if token is None:
            break
    assert sorted(seen) == ids and pages == 3
    assert status(request_id, "nextToken=%%%").status == 400
    assert status(request_id, "limit=1001").status == 400


# ---------------------------------------------------------------- nothing acknowledged without a record


def test_a_ledger_outage_is_a_503_and_nothing_is_queued(stack: InProcessStack) -> None:
    stack.set_env(LEDGER_TABLE_NAME="no-such-table")
    reset_functions()
    answer = bulk("pr_x1", "pr_x2")
    assert answer.status == 503 and answer.headers["retry-after"]
    assert queued_messages(stack) == []


def test_a_queue_that_refuses_leaves_no_queued_run_in_the_ledger(stack: InProcessStack, ledger: Ledger) -> None:
    # Given a request recorded, and then a queue that takes nothing
    stack.set_env(DELETION_QUEUE_URL=stack.queues.queue_url.rsplit("/", 1)[0] + "/no-such-queue")
    answer = bulk("pr_q1", "pr_q2")
    assert answer.status == 503
    # Then the ledger holds the request with its runs rejected, never queued, and nothing reserved
    [request] = list(ledger.requests_of(TENANT_ID))
    runs = list(ledger.all_runs(request.request_id))
    assert {run.outcome for run in runs} == {Outcome.REJECTED}
    assert request.counts.get(Outcome.QUEUED, 0) == 0 and ledger.outstanding(TENANT_ID) == 0


def test_a_crash_between_the_record_and_the_queue_acknowledges_nothing_and_a_recount_repairs_the_cap(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given the function dying right after recording a request (begin), before anything was queued
    request = ledger.begin(TENANT_ID, RequestTrigger.API_BULK, {}, reserve=5, cap=100)
    # Then the ledger shows it taken in with no run, none of it is on the queue, and the caller got no answer
    shown = status(request.request_id)
    assert shown.body["status"] == "accepted" and shown.body["items"] == []
    assert queued_messages(stack) == []
    # and the reservation it left is given back by a recount from the ledger's own records
    assert ledger.outstanding(TENANT_ID) == 5
    assert ledger.recount(TENANT_ID) == 0 and ledger.outstanding(TENANT_ID) == 0


def test_a_recount_sets_the_cap_to_the_runs_the_queue_can_still_hold(stack: InProcessStack, ledger: Ledger) -> None:
    # Given a request of two queued runs, and a tenant count that has drifted from it
    answer = bulk("pr_rc_1", "pr_rc_2")
    assert answer.status == 202
    ledger.store.set_outstanding(TENANT_ID, 7)
    # Then a recount sets the count to the runs still queued, and finds the request that holds them
    assert ledger.recount(TENANT_ID) == 2 and ledger.outstanding(TENANT_ID) == 2
    oldest = ledger.oldest_outstanding(TENANT_ID)
    assert oldest is not None and oldest.request_id == answer.body["deletionRequestId"]
    # Past the queue's retention no message of it can be on the queue: nothing is outstanding
    later = time.time() + QUEUE_RETENTION_S + 60
    assert ledger.oldest_outstanding(TENANT_ID, now=later) is None
    assert ledger.recount(TENANT_ID, now=later) == 0 and ledger.outstanding(TENANT_ID) == 0


def test_an_outcome_the_ledger_cannot_take_returns_the_message_and_its_redelivery_settles_it(
    stack: InProcessStack, ledger: Ledger, moto_endpoint: str
) -> None:
    # Given a queued run, and DynamoDB failing every write when Extend has just answered
    stack.extend.seed(["pr_crash"], workspace_id=WS)
    request_id = bulk("pr_crash").body["deletionRequestId"]
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        proxy.fail("UpdateItem", UNAVAILABLE)
        first = consume_queue(stack)
        # Then the message is not consumed, though Extend deleted the run
        assert len(first["batchItemFailures"]) == 1
        assert not stack.extend.exists("pr_crash", workspace_id=WS)
        proxy.heal()
    # and its redelivery finds the run gone and records that: the ledger agrees with Extend
    assert consume_queue(stack, receive_count=2) == {"batchItemFailures": []}
    [item] = status(request_id).body["items"]
    assert item["outcome"] == "not_found"
    assert ledger.outstanding(TENANT_ID) == 0


def test_a_crash_between_recording_an_outcome_and_counting_it_is_repaired_by_the_redelivery(
    stack: InProcessStack, ledger: Ledger, moto_endpoint: str
) -> None:
    # Given a queued run whose outcome is written, and whose counting then fails (as if the function died there)
    stack.extend.seed(["pr_half"], workspace_id=WS)
    request_id = bulk("pr_half").body["deletionRequestId"]
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        proxy.fail("UpdateItem", UNAVAILABLE, after=1)  # the run's write passes, the count (and its retries) not
        first = consume_queue(stack)
    assert len(first["batchItemFailures"]) == 1
    assert [run.outcome for run in ledger.all_runs(request_id)] == [Outcome.DELETED]
    assert status(request_id).body["counts"]["queued"] == 1  # written, not yet counted

    # When the message comes back (and Extend now answers 404), its delivery counts the earlier outcome, once
    assert consume_queue(stack, receive_count=2) == {"batchItemFailures": []}
    shown = status(request_id).body
    assert shown["status"] == "completed" and shown["counts"]["deleted"] == 1 and shown["counts"]["queued"] == 0
    assert shown["counts"]["not_found"] == 0 and ledger.outstanding(TENANT_ID) == 0
    # and a third delivery of it changes nothing
    stack.sqs().send_message(
        QueueUrl=stack.queues.queue_url,
        MessageBody=json.dumps({"parserRunId": "pr_half", "deletionRequestId": request_id, "tenantId": TENANT_ID}),
    )
    assert consume_queue(stack) == {"batchItemFailures": []}
    assert status(request_id).body["counts"] == shown["counts"] and ledger.outstanding(TENANT_ID) == 0


def test_a_not_found_receipt_becomes_deleted_when_a_racing_delivery_proves_it(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given a queued run, and two deliveries of its message at once: the one that records first met the other's
    # deletion (Extend answered 404), the other's DELETE was the one Extend answered 200
    stack.extend.seed(["pr_raced"], workspace_id=WS)
    request_id = bulk("pr_raced").body["deletionRequestId"]
    stack.extend.inject("pr_raced", Fault.status(404))
    assert consume_queue(stack) == {"batchItemFailures": []}
    first = status(request_id).body
    assert (first["status"], first["counts"]["not_found"], first["counts"]["deleted"]) == ("completed", 1, 0)

    # When the other delivery's outcome arrives
    message = {"parserRunId": "pr_raced", "deletionRequestId": request_id, "tenantId": TENANT_ID}
    stack.sqs().send_message(QueueUrl=stack.queues.queue_url, MessageBody=json.dumps(message))
    assert consume_queue(stack) == {"batchItemFailures": []}

    # Then the receipt says deleted, and the counts agree: Extend's 200 proves this service deleted it
    [run] = ledger.all_runs(request_id)
    assert run.outcome is Outcome.DELETED and run.extend_status == 200
    shown = status(request_id).body
    assert (shown["counts"]["deleted"], shown["counts"]["not_found"], shown["counts"]["queued"]) == (1, 0, 0)
    assert shown["status"] == "completed" and ledger.outstanding(TENANT_ID) == 0
    assert not stack.extend.exists("pr_raced", workspace_id=WS)


def test_a_ledger_slower_than_the_margin_still_gets_the_batch_answered_before_lambdas_deadline(
    stack: InProcessStack, ledger: Ledger, moto_endpoint: str, emitted: Emitted
) -> None:
    # Given three queued runs, and a ledger whose every update takes 1.5 s (botocore tries each up to 3 times)
    ids = ["pr_slow_ledger_1", "pr_slow_ledger_2", "pr_slow_ledger_3"]
    stack.extend.seed(ids, workspace_id=WS)
    request_id = bulk(*ids).body["deletionRequestId"]
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        consume_queue(stack, timeout_s=0.0)  # a warm instance: the tenant cached, nothing attempted
        proxy.stall("UpdateItem", 1.5)

        # When a batch of them comes with 3 s left (1 s of margin): recording alone would take longer
        context = stack.context(timeout_s=3.0)
        messages = stack.sqs().receive_message(
            QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        response = queue_function.lambda_handler(
            sqs_event(*received_records(messages, stack.queues.queue_arn)), context
        )

        # Then the function answered while Lambda still waited for it, with every unrecorded record returned
        assert context.get_remaining_time_in_millis() > 0
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        assert failed == {m["MessageId"] for m in messages}
        # (their runs recorded, their batch's counts still being written: the batch's last writes are let go)
        let_go = "the batch's last writes still running at the deadline; their records are delivered again"
        assert [log["message"] for log in emitted.logs if log["message"] == let_go] == [let_go]
        proxy.heal()
        after_the_visibility_timeout(stack.sqs(), stack.queues.queue_url, messages, failed)
        # and the records it let go finish on their own (and are logged) once the ledger answers, their batch's
        # counts too (written once for the batch, after its records)
        assert all(not stack.extend.exists(parser_run_id, workspace_id=WS) for parser_run_id in ids)
        wait_until(
            lambda: (
                sorted(line["parser_run_id"] for line in emitted.outcome_logs if line["outcome"] == "deleted") == ids
            )
        )
        wait_until(lambda: ledger.outstanding(TENANT_ID) == 0)
    # and their redelivery, which finds the runs gone, changes nothing: each is counted once, as deleted
    assert consume_queue(stack, receive_count=2) == {"batchItemFailures": []}
    shown = status(request_id).body
    assert (shown["status"], shown["counts"]["deleted"], shown["counts"]["queued"]) == ("completed", 3, 0)


def test_throttled_ledger_writes_are_retried_and_nothing_is_lost(
    stack: InProcessStack, moto_endpoint: str, emitted: Emitted
) -> None:
    stack.extend.seed(["pr_t1", "pr_t2"], workspace_id=WS)
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        # botocore retries a throttled call: two throttles per operation are absorbed
        for operation in ("TransactWriteItems", "BatchWriteItem", "UpdateItem", "PutItem"):
            proxy.fail(operation, THROTTLED, times=2)
        answer = bulk("pr_t1", "pr_t2")
        assert answer.status == 202
        assert consume_queue(stack) == {"batchItemFailures": []}
        assert proxy.faults["UpdateItem"] == 2
        shown = status(answer.body["deletionRequestId"])
    assert shown.body["status"] == "completed" and shown.body["counts"]["deleted"] == 2


@pytest.mark.parametrize(
    "operation",
    [
        "PutItem",  # the replay guard's record of the signed request
        "TransactWriteItems",  # the run and its request, recorded together
    ],
)
def test_a_synchronous_delete_whose_write_landed_but_whose_answer_was_lost_is_served_once(
    stack: InProcessStack, moto_endpoint: str, operation: str
) -> None:
    # Given a DynamoDB write that is carried out, but whose answer is lost, so that botocore sends it again
    stack.extend.seed(["pr_lost_answer"], workspace_id=WS)
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        proxy.lose_answers(operation)
        # When a tenant deletes a run
        answer = invoke(rest_event("DELETE", "/parser_runs/pr_lost_answer"))
        assert proxy.faults[operation] == 1
    # Then its retry, meeting its own write, is not taken for a twin request (409) or a failure (503)
    assert answer.status == 200, answer.body
    assert not stack.extend.exists("pr_lost_answer", workspace_id=WS)
    shown = status(answer.body["deletionRequestId"])
    assert shown.body["status"] == "completed" and shown.body["counts"]["deleted"] == 1


def test_a_bulk_request_whose_record_landed_but_whose_answer_was_lost_is_accepted_once(
    stack: InProcessStack, ledger: Ledger, moto_endpoint: str
) -> None:
    stack.extend.seed(["pr_lost_1", "pr_lost_2"], workspace_id=WS)
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        proxy.lose_answers("PutItem", after=1)  # the replay guard's put goes through; the request's is lost
        answer = bulk("pr_lost_1", "pr_lost_2")
        assert proxy.faults["PutItem"] == 1
    assert answer.status == 202, answer.body
    assert consume_queue(stack) == {"batchItemFailures": []}
    shown = status(answer.body["deletionRequestId"])
    assert shown.body["status"] == "completed" and shown.body["counts"]["deleted"] == 2
    assert ledger.outstanding(TENANT_ID) == 0  # reserved once, released once


# ---------------------------------------------------------------- dead letters, redrives and expiry


def test_a_dead_lettered_run_is_recorded_so_and_a_redrive_takes_it_back_to_queued(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given a run Extend refuses on its last allowed receive
    stack.extend.seed(["pr_dl"], workspace_id=WS)
    stack.extend.inject("pr_dl", *[Fault.status(503)] * 3)
    request_id = bulk("pr_dl").body["deletionRequestId"]
    assert consume_queue(stack, receive_count=stack.queues.max_receive_count) == {"batchItemFailures": []}
    shown = status(request_id)
    assert shown.body["status"] == "completed_with_failures"
    [item] = shown.body["items"]
    assert item["outcome"] == "dead_lettered" and "503" in item["reason"]
    assert ledger.outstanding(TENANT_ID) == 0
    [parked] = stack.dead_letters()
    assert parked["MessageAttributes"]["DeletionRequestId"]["StringValue"] == request_id

    # When an operator redrives it, and the run fails once more before it is deleted
    stack.sqs().send_message(
        QueueUrl=stack.queues.queue_url,
        MessageBody=parked["Body"],
        MessageAttributes={"DeletionRequestId": parked["MessageAttributes"]["DeletionRequestId"]},
    )
    stack.extend.inject("pr_dl", Fault.status(503), Fault.status(503), Fault.status(503))
    assert len(consume_queue(stack)["batchItemFailures"]) == 1
    # Then it is queued again, and counted against the tenant
    again = status(request_id)
    assert again.body["status"] == "in_progress" and items_of(again)["pr_dl"]["outcome"] == "queued"
    assert ledger.outstanding(TENANT_ID) == 1
    # and once deleted, the request completes
    assert consume_queue(stack, receive_count=2) == {"batchItemFailures": []}
    assert status(request_id).body["status"] == "completed" and ledger.outstanding(TENANT_ID) == 0


def test_runs_still_queued_past_the_queues_retention_show_as_failed_expired(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given a request recorded 15 days ago, whose message the queue has dropped since
    request_id = "dr_01000000000000000000000000"
    created = iso(time.time() - QUEUE_RETENTION_S - 86_400)
    request = RequestRecord(request_id, TENANT_ID, RequestTrigger.API_BULK, created, updated_at=created)
    ledger.store.begin(request)
    ledger.store.record_intake(replace(request, tenant_id=None), [RunRecord("pr_old", Outcome.QUEUED)])
    # Then it reads as finished, its run failed, expired
    shown = status(request_id)
    assert shown.body["status"] == "completed_with_failures"
    assert shown.body["counts"]["failed"] == 1 and shown.body["counts"]["queued"] == 0
    assert shown.body["items"][0]["reason"] == EXPIRED_REASON


def test_an_operators_message_is_recorded_under_a_request_of_its_own(stack: InProcessStack, ledger: Ledger) -> None:
    stack.extend.seed(["pr_op"], workspace_id=WS)
    stack.sqs().send_message(
        QueueUrl=stack.queues.queue_url, MessageBody=json.dumps({"parserRunId": "pr_op", "requestedBy": "ops"})
    )
    assert consume_queue(stack) == {"batchItemFailures": []}
    [request] = list(ledger.requests_of(None))
    assert request.trigger is RequestTrigger.QUEUE and request.audit == {"requestedBy": "ops"}
    assert [run.outcome for run in ledger.all_runs(request.request_id)] == [Outcome.DELETED]


# ---------------------------------------------------------------- the cap


def test_a_bulk_request_beyond_the_cap_gets_429_with_the_numbers(stack: InProcessStack) -> None:
    stack.tenant_admin().set_limits(TENANT_ID, max_outstanding=3)
    reset_functions()
    assert bulk("pr_c1", "pr_c2").status == 202
    over = bulk("pr_c3", "pr_c4")
    assert over.status == 429 and over.headers["retry-after"]
    assert (over.body["outstanding"], over.body["cap"], over.body["requested"]) == (2, 3, 2)
    assert len(queued_messages(stack)) == 2  # nothing of the refused request was queued


def test_the_cap_is_reached_exactly_and_never_passed_by_a_first_request(stack: InProcessStack, ledger: Ledger) -> None:
    stack.tenant_admin().set_limits(TENANT_ID, max_outstanding=3)
    reset_functions()
    # A first request bigger than the cap, on a tenant with nothing outstanding yet, is refused whole
    first = bulk("pr_x1", "pr_x2", "pr_x3", "pr_x4")
    assert first.status == 429 and (first.body["outstanding"], first.body["requested"]) == (0, 4)
    assert queued_messages(stack) == [] and ledger.outstanding(TENANT_ID) == 0
    # exactly the cap fits
    assert bulk("pr_e1", "pr_e2", "pr_e3").status == 202 and ledger.outstanding(TENANT_ID) == 3
    # and one more does not
    over = bulk("pr_e4")
    assert over.status == 429 and (over.body["outstanding"], over.body["cap"], over.body["requested"]) == (3, 3, 1)


def test_the_cap_holds_under_concurrent_requests(stack: InProcessStack, ledger: Ledger) -> None:
    # Given 12 requests of 3 runs each racing for a cap of 10
    accepted: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()

    def take_in() -> None:
        try:
            request = ledger.begin(TENANT_ID, RequestTrigger.API_BULK, {}, reserve=3, cap=10)
        except OverCap as error:
            with lock:
                refused.append(error.outstanding)
            return
        with lock:
            accepted.append(request.request_id)

    threads = [threading.Thread(target=take_in) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no more were taken in than fit, and the count is exact
    assert len(accepted) == 3 and len(refused) == 9
    assert ledger.outstanding(TENANT_ID) == 9


# ---------------------------------------------------------------- Idempotency-Key


def test_the_same_idempotency_key_and_request_get_the_first_answer_and_the_same_deletion_request(
    stack: InProcessStack,
) -> None:
    body = json.dumps({"parserRunIds": ["pr_k1", "pr_k2"]})
    key = {"Idempotency-Key": "order-4711-erasure"}
    # each send is signed afresh (a new webhook-id), as a client retrying after a lost answer signs it
    first = invoke(rest_event("POST", "/deletions", body=body, headers=key))
    again = invoke(rest_event("POST", "/deletions", body=body, headers=key))
    assert first.status == again.status == 202
    assert again.body == first.body and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert sorted(m["parserRunId"] for m in queued_messages(stack)) == ["pr_k1", "pr_k2"]  # queued once


def test_an_idempotent_delete_reaches_extend_once(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_kd"], workspace_id=WS)
    key = {"Idempotency-Key": "erase-pr_kd"}
    first = invoke(rest_event("DELETE", "/parser_runs/pr_kd", headers=key))
    again = invoke(rest_event("DELETE", "/parser_runs/pr_kd", headers=key))
    assert (first.status, again.status) == (200, 200) and again.body == first.body
    assert len([r for r in stack.extend.requests_for("pr_kd") if r.method == "DELETE"]) == 1


def test_the_same_idempotency_key_for_another_request_gets_422(stack: InProcessStack) -> None:
    key = {"Idempotency-Key": "reused-key"}
    assert invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_a"]}', headers=key)).status == 202
    other = invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_b"]}', headers=key))
    assert other.status == 422 and "this Idempotency-Key was used for another request" in other.body["message"]
    assert [m["parserRunId"] for m in queued_messages(stack)] == ["pr_a"]


def test_a_request_whose_idempotency_key_is_still_being_served_gets_409(stack: InProcessStack) -> None:
    body = '{"parserRunIds": ["pr_twin"]}'
    hold_in_progress(
        stack,
        stack.tenant.tenant,
        "twin-key",
        method="POST",
        path="/deletions",
        body=body.encode(),
        idempotency_key=True,
    )
    answer = invoke(rest_event("POST", "/deletions", body=body, headers={"Idempotency-Key": "twin-key"}))
    assert answer.status == 409 and "Idempotency-Key" in answer.body["message"]
    assert queued_messages(stack) == []


@pytest.mark.parametrize("key", ["", "k" * 256, "naïve", "line\nbreak"])
def test_a_malformed_idempotency_key_gets_400(stack: InProcessStack, key: str) -> None:
    answer = invoke(
        rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_a"]}', headers={"Idempotency-Key": key})
    )
    assert answer.status == 400 and "Idempotency-Key" in answer.body["message"]
    assert queued_messages(stack) == []


def test_an_idempotency_key_is_remembered_for_24_hours(stack: InProcessStack) -> None:
    # Given a bulk request sent with an Idempotency-Key
    sent_at = time.time()
    body = '{"parserRunIds": ["pr_24h"]}'
    first = invoke(rest_event("POST", "/deletions", body=body, headers={"Idempotency-Key": "erasure-24h"}))
    assert first.status == 202

    # Then the replay store keeps it a day: its record expires 24 hours after it was made, not sooner
    expirations = replay_expirations(stack, "idempotency-key")
    assert len(expirations) == 1 and 24 * 3600 - 5 <= expirations[0] - sent_at <= 24 * 3600 + 60


def replay_expirations(stack: InProcessStack, key_prefix: str) -> list[float]:
    """When each of the replay store's records of this kind expires (Powertools' ``expiration``, Unix seconds)."""
    from devstack.moto_stack import aws_client

    assert stack.tables is not None
    items = aws_client("dynamodb", stack.endpoint).scan(TableName=stack.tables.idempotency_table)["Items"]
    return [float(item["expiration"]["N"]) for item in items if item["id"]["S"].startswith(key_prefix)]


def test_a_message_that_overtakes_its_intake_waits_for_it_and_is_never_overwritten(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given a request recorded, its message on the queue, but its run not recorded yet (the intake's write pending)
    stack.extend.seed(["pr_race"], workspace_id=WS)
    request = ledger.begin(TENANT_ID, RequestTrigger.API_BULK, {}, reserve=1, cap=None)
    body = {"parserRunId": "pr_race", "deletionRequestId": request.request_id, "tenantId": TENANT_ID}

    # When the queue function gets the message first, and the intake records the run a moment later
    intake = threading.Timer(0.5, lambda: ledger.take_in(request, [RunRecord("pr_race", Outcome.QUEUED)]))
    intake.start()
    try:
        first = consume_queue_once(stack, body)
    finally:
        intake.join()

    # Then the deletion it did waited for the intake's record and settled on top of it: deleted, counted once
    assert first == {"batchItemFailures": []} and not stack.extend.exists("pr_race", workspace_id=WS)
    shown = status(request.request_id).body
    assert shown["status"] == "completed" and shown["counts"]["deleted"] == 1 and shown["counts"]["queued"] == 0
    assert ledger.outstanding(TENANT_ID) == 0


def test_a_message_whose_intake_outlasts_the_invocation_returns_and_is_never_overwritten(
    stack: InProcessStack, ledger: Ledger
) -> None:
    # Given a request recorded, its message on the queue, and an intake that does not record the run in time
    stack.extend.seed(["pr_late_intake"], workspace_id=WS)
    request = ledger.begin(TENANT_ID, RequestTrigger.API_BULK, {}, reserve=1, cap=None)
    body = {"parserRunId": "pr_late_intake", "deletionRequestId": request.request_id, "tenantId": TENANT_ID}

    # When the queue function gets the message first, with only a few seconds to wait for it
    first = consume_queue_once(stack, body, timeout_s=3.0)

    # Then it deletes the run but does not record it, and returns the message: the intake's record comes first
    assert len(first["batchItemFailures"]) == 1 and not stack.extend.exists("pr_late_intake", workspace_id=WS)
    assert list(ledger.all_runs(request.request_id)) == []
    # and once the intake has recorded it, the redelivery settles it on top: nothing is overwritten or counted twice
    ledger.take_in(request, [RunRecord("pr_late_intake", Outcome.QUEUED)])
    assert consume_queue_once(stack, body, receive_count=2) == {"batchItemFailures": []}
    shown = status(request.request_id).body
    assert shown["status"] == "completed" and shown["counts"]["not_found"] == 1 and shown["counts"]["queued"] == 0
    assert ledger.outstanding(TENANT_ID) == 0


def consume_queue_once(
    stack: InProcessStack, body: dict[str, Any], *, receive_count: int = 1, timeout_s: float = 30.0
) -> dict[str, Any]:
    result: dict[str, Any] = queue_function.lambda_handler(
        delivered(stack, sqs_event(sqs_record(json.dumps(body), receive_count=receive_count))),
        stack.context(timeout_s=timeout_s),
    )
    return result
