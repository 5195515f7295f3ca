"""The sweeper, against moto: runs the queue dropped are recorded failed in storage and their request completes with
its callback; overdue requests are counted and named; a leaked count is repaired only when it is safe; and only its
own schedule rule's event is served."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import Any

import pytest

from devstack.events import scheduled_event
from devstack.moto_stack import aws_client
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.entrypoints import sweeper_function
from parser_run_deleter.intake.event_shapes import UnsupportedEvent
from parser_run_deleter.logic import sweeper
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import (
    EXPIRED_REASON,
    INTAKE_GRACE_S,
    QUEUE_RETENTION_S,
    LedgerUnavailable,
    RequestRecord,
    RequestTrigger,
    RunRecord,
)
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.sweeper import SweeperServices
from parser_run_deleter.shared.observability import metrics
from parser_run_deleter.shared.timestamps import iso
from tests.integration.test_ledger import status
from tests.support.api import TENANT_ID
from tests.support.stacks import Emitted, InProcessStack

RULE = "local-sweeper"


@pytest.fixture
def sweeper_env(stack: InProcessStack) -> None:
    stack.set_env(SCHEDULE_RULE_NAME=RULE)
    sweeper_function.root.reset()


def sweep(stack: InProcessStack) -> dict[str, Any]:
    result: dict[str, Any] = sweeper_function.lambda_handler(scheduled_event(RULE), stack.context())
    return result


def services_over(stack: InProcessStack, store: Any) -> SweeperServices:
    """The sweeper's services as its entry point builds them, but over ``store``: the real ledger behind a hook."""
    assert stack.tables is not None
    return SweeperServices(
        ledger=Ledger(store),
        tenants=TenantTable(stack.tables.tenants_table, aws_client("dynamodb", stack.endpoint)),
        callbacks=SqsQueue(os.environ["CALLBACK_QUEUE_URL"], aws_client("sqs", stack.endpoint)),
    )


def old_request(ledger: Ledger, request_id: str, age_s: float, runs: list[RunRecord], **fields: Any) -> RequestRecord:
    """A request of the test's tenant recorded ``age_s`` ago, with its runs, as its intake left it."""
    created = iso(time.time() - age_s)
    request = RequestRecord(request_id, TENANT_ID, RequestTrigger.API_BULK, created, updated_at=created, **fields)
    ledger.store.begin(request, reserve=sum(run.outcome is Outcome.QUEUED for run in runs))
    ledger.store.record_intake(request, runs)
    return request


def test_runs_the_queue_dropped_are_recorded_failed_and_their_request_completes_with_its_callback(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None, emitted: Emitted
) -> None:
    # Given a request of 15 days ago with a deleted run and two runs still queued, whose messages SQS dropped
    stack.tenant_admin().set_callback(TENANT_ID, "https://tenant.example/callbacks")
    request = old_request(
        ledger,
        "dr_01000000000000000000000001",
        QUEUE_RETENTION_S + 86_400,
        [
            RunRecord("pr_done", Outcome.DELETED),
            RunRecord("pr_lost_1", Outcome.QUEUED),
            RunRecord("pr_lost_2", Outcome.QUEUED),
        ],
    )
    other = old_request(
        ledger,
        "dr_0100000000000000000000000c",
        QUEUE_RETENTION_S + 2 * 86_400,
        [RunRecord("pr_lost_3", Outcome.QUEUED)],
    )
    # and one older than the sweeper looks back (it would have been swept by the sweeps of that week)
    ancient = old_request(
        ledger, "dr_0100000000000000000000000d", 30 * 86_400, [RunRecord("pr_ancient", Outcome.QUEUED)]
    )
    assert ledger.outstanding(TENANT_ID) == 4
    # When the sweeper's hour comes
    result = sweep(stack)
    # Then the runs of both requests in its window are failed (expired) in storage, not only when read, and counted
    assert result["expiredRuns"] == 3
    assert [run.outcome for run in ledger.all_runs(other.request_id)] == [Outcome.FAILED]
    assert [run.outcome for run in ledger.all_runs(ancient.request_id)] == [Outcome.QUEUED]
    stored = {run.parser_run_id: run for run in ledger.all_runs(request.request_id)}
    assert {run_id: (run.outcome, run.reason) for run_id, run in stored.items() if run_id != "pr_done"} == {
        "pr_lost_1": (Outcome.FAILED, EXPIRED_REASON),
        "pr_lost_2": (Outcome.FAILED, EXPIRED_REASON),
    }
    record = ledger.request(request.request_id)
    assert record is not None and record.counts.get(Outcome.QUEUED, 0) == 0 and record.counts[Outcome.FAILED] == 2
    # and the tenant's count holds only what the queue can still deliver: none (the ancient run expired too, and the
    # sweeper's repair counts the last 14 days' requests, as `tenants recount` does)
    assert record.completed_at is not None and ledger.outstanding(TENANT_ID) == 0
    # and the tenant is told: one callback queued, for this request
    queue_url = os.environ["CALLBACK_QUEUE_URL"]
    callbacks = stack.sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(message["Body"])["deletionRequestId"] for message in callbacks) == sorted(
        [request.request_id, other.request_id]
    )
    # and each expired run has its outcome line
    expired = [line for line in emitted.outcome_logs if line.get("trigger") == "schedule"]
    assert sorted(line["parser_run_id"] for line in expired) == ["pr_lost_1", "pr_lost_2", "pr_lost_3"]
    for line in expired:
        assert (line["outcome"], line["reason"], line["tenant_id"]) == ("failed", EXPIRED_REASON, TENANT_ID)
        expected = other.request_id if line["parser_run_id"] == "pr_lost_3" else request.request_id
        assert line["deletion_request_id"] == expected
    # and a second sweep changes nothing
    assert sweep(stack)["expiredRuns"] == 0
    assert ledger.request(request.request_id) == record


def test_requests_past_due_with_items_pending_are_counted_and_named(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None, emitted: Emitted
) -> None:
    # Given one request past its due date and pending, one past due but done, and one pending but not yet due
    past = iso(time.time() - 3600)
    overdue = old_request(
        ledger, "dr_01000000000000000000000002", 2 * 86_400, [RunRecord("pr_a", Outcome.QUEUED)], due_by=past
    )
    old_request(ledger, "dr_01000000000000000000000003", 2 * 86_400, [RunRecord("pr_b", Outcome.DELETED)], due_by=past)
    future = iso(time.time() + 86_400)
    old_request(ledger, "dr_01000000000000000000000004", 2 * 86_400, [RunRecord("pr_c", Outcome.QUEUED)], due_by=future)
    also = old_request(
        ledger, "dr_0100000000000000000000000b", 86_400, [RunRecord("pr_d", Outcome.QUEUED)], due_by=past
    )
    result = sweep(stack)
    # Then the first and the last are overdue: the metric counts both, a log line names each, the status says so
    assert result["overdueRequests"] == 2
    assert result["overdue"] == sorted([overdue.request_id, also.request_id])
    assert emitted.metric_totals()["DeletionRequestsOverdue"] == 2
    lines = [log for log in emitted.logs if log.get("message") == "deletion request overdue"]
    assert sorted(line["deletion_request_id"] for line in lines) == sorted([overdue.request_id, also.request_id])
    assert all(line["tenant_id"] == TENANT_ID and line["due_by"] == past for line in lines)
    assert lines[0]["counts"]["queued"] == 1
    shown = status(overdue.request_id).body
    assert shown["overdue"] is True and shown["dueBy"] == past


def test_a_leaked_count_is_repaired_when_no_intake_can_be_running(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None, emitted: Emitted
) -> None:
    # Given a tenant whose count a crashed intake left 3 too high (reserved, never recorded)
    old_request(ledger, "dr_01000000000000000000000005", 3600, [RunRecord("pr_q", Outcome.QUEUED)])
    ledger.store.add_outstanding(TENANT_ID, 3)
    assert ledger.outstanding(TENANT_ID) == 4
    # When the sweeper's hour comes: the count is the runs its requests still hold
    result = sweep(stack)
    assert result["repairedTenants"] == [TENANT_ID] and result["repaired"] == {TENANT_ID: {"before": 4, "after": 1}}
    assert ledger.outstanding(TENANT_ID) == 1
    [line] = [log for log in emitted.logs if log.get("message") == "repaired the tenant's count of outstanding runs"]
    assert (line["tenant_id"], line["before"], line["after"]) == (TENANT_ID, 4, 1)


def test_a_count_is_left_alone_while_an_intake_may_be_recording(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None
) -> None:
    # Given a request younger than an intake's grace: its intake may be between its reservation and its record
    old_request(ledger, "dr_01000000000000000000000006", INTAKE_GRACE_S / 2, [])
    ledger.store.add_outstanding(TENANT_ID, 2)
    assert sweep(stack)["repairedTenants"] == []
    assert ledger.outstanding(TENANT_ID) == 2


def test_a_count_that_moves_while_it_is_summed_is_not_overwritten(stack: InProcessStack, ledger: Ledger) -> None:
    old_request(ledger, "dr_01000000000000000000000007", 3600, [])
    ledger.store.add_outstanding(TENANT_ID, 2)

    class Moving:
        """The store, with an intake reserving 5 runs between the sweeper's two reads of the count."""

        def __init__(self) -> None:
            self.reads = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(ledger.store, name)

        def outstanding(self, tenant_id: str) -> int:
            self.reads += 1
            if self.reads == 2:
                ledger.store.add_outstanding(tenant_id, 5)
            return ledger.store.outstanding(tenant_id)

    moving = Ledger(Moving())  # the real store behind a hook
    assert moving.repair_outstanding(TENANT_ID) is None
    assert ledger.outstanding(TENANT_ID) == 7


@pytest.mark.parametrize(
    "event",
    [
        scheduled_event("another-stack-sweeper"),
        {**scheduled_event(RULE), "source": "my.app"},
        {**scheduled_event(RULE), "detail-type": "Object Created"},
        {"Records": [{"eventSource": "aws:sqs"}]},
        {},
    ],
    ids=["another rule", "another source", "another detail type", "an SQS batch", "an empty event"],
)
def test_only_its_own_rules_event_is_served(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None, emitted: Emitted, event: dict[str, Any]
) -> None:
    request = old_request(
        ledger, "dr_01000000000000000000000008", QUEUE_RETENTION_S + 86_400, [RunRecord("pr_x", Outcome.QUEUED)]
    )
    with pytest.raises(UnsupportedEvent):
        sweeper_function.lambda_handler(event, stack.context())
    assert emitted.metric_totals()["UnsupportedEvent"] == 1
    assert [run.outcome for run in ledger.all_runs(request.request_id)] == [Outcome.QUEUED]  # nothing swept


def test_operators_requests_are_swept_too(stack: InProcessStack, ledger: Ledger, sweeper_env: None) -> None:
    created = iso(time.time() - QUEUE_RETENTION_S - 86_400)
    request = RequestRecord("dr_01000000000000000000000009", None, RequestTrigger.QUEUE, created, updated_at=created)
    ledger.store.begin(request)
    ledger.store.record_intake(replace(request, tenant_id=None), [RunRecord("pr_op_lost", Outcome.QUEUED)])
    assert sweep(stack)["expiredRuns"] == 1
    assert [run.outcome for run in ledger.all_runs(request.request_id)] == [Outcome.FAILED]


def test_a_tenant_whose_requests_cannot_be_read_is_named_and_the_others_are_swept(
    stack: InProcessStack, ledger: Ledger, emitted: Emitted
) -> None:
    # Given a second tenant with a request whose runs expired, and a ledger that cannot read the first tenant's
    stack.register_tenant("globex", workspace_id="ws_globex", api_key_ids=("g1l2o3b4e5",))
    created = iso(time.time() - QUEUE_RETENTION_S - 86_400)
    theirs = RequestRecord("dr_0100000000000000000000000a", "globex", RequestTrigger.API_BULK, created)
    ledger.store.begin(theirs, reserve=1)
    ledger.store.record_intake(theirs, [RunRecord("pr_globex_lost", Outcome.QUEUED)])

    class Unreadable:
        """The real store, but the test tenant's requests cannot be read (a throttled or failing index)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(ledger.store, name)

        def requests_of(self, tenant_id: str | None, *, since: str = "") -> Any:
            if tenant_id in (TENANT_ID, None):  # the test tenant's, and the operators' requests
                raise LedgerUnavailable("cannot read the tenant's requests: ProvisionedThroughputExceededException")
            return ledger.store.requests_of(tenant_id, since=since)

    services = services_over(stack, Unreadable())
    result = sweeper.sweep(services)
    metrics.flush_metrics()  # as the handler's decorator does
    # Then that tenant is named as not swept, with a log line and a metric, and the other one was swept
    assert (result.failed_tenants, result.expired) == ([TENANT_ID, "operator"], 1)
    lines = [log for log in emitted.logs if log.get("message") == "cannot sweep the tenant's requests"]
    assert [line.get("tenant_id") for line in lines] == [TENANT_ID, None]
    assert all("ProvisionedThroughputExceeded" in line["reason"] for line in lines)
    assert emitted.metric_totals()["LedgerWriteFailed"] == 2
    assert [run.outcome for run in ledger.all_runs(theirs.request_id)] == [Outcome.FAILED]
    # and the sweep's one line says what it did
    [done] = [log for log in emitted.logs if log.get("message") == "sweep done"]
    assert (done["expired_runs"], done["overdue_requests"], done["failed_tenants"]) == (1, 0, [TENANT_ID, "operator"])
    assert done["repaired_tenants"] == []


def test_a_malformed_tenant_item_is_logged_and_every_other_tenant_is_swept(
    stack: InProcessStack, ledger: Ledger, sweeper_env: None, emitted: Emitted
) -> None:
    # Given a registry item that is no tenant's definition, beside tenants whose requests' runs expired
    assert stack.tables is not None
    dynamodb = aws_client("dynamodb", stack.endpoint)
    dynamodb.put_item(
        TableName=stack.tables.tenants_table,
        Item={"pk": {"S": "TENANT#broken"}, "sk": {"S": "TENANT"}, "tenantId": {"S": "broken"}},
    )
    created = iso(time.time() - QUEUE_RETENTION_S - 86_400)
    requests = []
    for n, tenant_id in enumerate(("globex", "initech", "umbrella")):
        stack.register_tenant(tenant_id, workspace_id=f"ws_{tenant_id}", api_key_ids=(f"key{tenant_id}0",))
        request = RequestRecord(f"dr_010000000000000000000000{n}e", tenant_id, RequestTrigger.API_BULK, created)
        ledger.store.begin(request, reserve=1)
        ledger.store.record_intake(request, [RunRecord(f"pr_{tenant_id}_lost", Outcome.QUEUED)])
        requests.append(request)
    result = sweep(stack)
    # Then the item is logged as not swept, and every tenant's expired runs were settled all the same
    [line] = [log for log in emitted.logs if log.get("message") == "a malformed tenant item is not swept"]
    assert "ownership" in line["reason"]
    assert result["expiredRuns"] == 3 and result["failedTenants"] == []
    for request in requests:
        assert [run.outcome for run in ledger.all_runs(request.request_id)] == [Outcome.FAILED]


def test_expired_runs_whose_counts_cannot_be_written_leave_their_tenant_for_the_next_sweep(
    stack: InProcessStack, ledger: Ledger, emitted: Emitted
) -> None:
    request = old_request(
        ledger, "dr_0100000000000000000000000f", QUEUE_RETENTION_S + 86_400, [RunRecord("pr_uncounted", Outcome.QUEUED)]
    )

    class Uncountable:
        """The real store, but the request's counters cannot be written (throttled)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(ledger.store, name)

        def count_runs(self, *args: Any, **kwargs: Any) -> Any:
            raise LedgerUnavailable("cannot count the outcomes: ProvisionedThroughputExceededException")

        def count(self, *args: Any, **kwargs: Any) -> Any:
            raise LedgerUnavailable("cannot count the outcome: ProvisionedThroughputExceededException")

    services = services_over(stack, Uncountable())
    result = sweeper.sweep(services)
    # Then the tenant is named, and its request is not completed: the next sweep counts what this one could not
    assert result.failed_tenants == [TENANT_ID]
    [line] = [log for log in emitted.logs if log.get("message") == "cannot sweep the tenant's requests"]
    assert line["reason"] == "cannot count the expired runs; the next sweep will"
    record = ledger.request(request.request_id)
    assert record is not None and record.completed_at is None
    # and the next sweep, with a store that can count, finishes it
    assert ledger.store is not None
    again = sweeper.sweep(replace(services, ledger=ledger))
    assert again.failed_tenants == [] and ledger.request(request.request_id).completed_at is not None  # type: ignore[union-attr]
