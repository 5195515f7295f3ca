"""Beyond one parse run, the pure parts: resource types per API version, the messages and bodies that carry them,
and the ledger's rules for cancelled items, dry runs and due dates."""

from __future__ import annotations

import json
import time

import pytest

from parser_run_deleter.intake.api_bodies import InvalidRequestBody, parse_bulk_body
from parser_run_deleter.logic.ledger import due_date
from parser_run_deleter.logic.ledger_records import (
    RequestRecord,
    RequestStatus,
    RequestTrigger,
    may_follow,
    may_still_change,
)
from parser_run_deleter.logic.outcomes import FAILURES, FINAL_OUTCOMES, Outcome
from parser_run_deleter.logic.queue_messages import DeletionRequest, InvalidDeletionRequest, parse_deletion_message
from parser_run_deleter.shared.extend_resources import (
    API_2025,
    API_2026,
    Resource,
    UnknownResource,
    carries_metadata,
    has_cancel,
    has_source_file,
    known_prefixes,
    parse_run_resource,
    resolve_resource,
    resource_for_id,
)
from parser_run_deleter.shared.timestamps import iso, parse_iso

# ---------------------------------------------------------------- resource types


@pytest.mark.parametrize(
    ("item_id", "version", "resource"),
    [
        ("pr_1", API_2026, Resource.PARSE_RUNS),
        ("parser_run_1", API_2026, Resource.PARSE_RUNS),
        ("exr_1", API_2026, Resource.EXTRACT_RUNS),
        ("clr_1", API_2026, Resource.CLASSIFY_RUNS),
        ("splr_1", API_2026, Resource.SPLIT_RUNS),
        ("edr_1", API_2026, Resource.EDIT_RUNS),
        ("workflow_run_1", API_2026, Resource.WORKFLOW_RUNS),
        ("file_1", API_2026, Resource.FILES),
        ("parser_run_1", API_2025, Resource.PARSER_RUNS),
        ("pr_1", API_2025, Resource.PARSER_RUNS),
        ("dpr_1", API_2025, Resource.PROCESSOR_RUNS),
        ("exr_1", API_2025, Resource.PROCESSOR_RUNS),
        ("workflow_run_1", API_2025, Resource.WORKFLOW_RUNS),
        ("file_1", API_2025, Resource.FILES),
    ],
)
def test_an_ids_prefix_names_its_type_as_its_version_has_it(item_id: str, version: str, resource: Resource) -> None:
    assert resource_for_id(item_id, version) is resource


@pytest.mark.parametrize("item_id", ["clr_1", "splr_1", "edr_1"])
def test_types_2025_04_21_does_not_have_are_no_type_there(item_id: str) -> None:
    assert resource_for_id(item_id, API_2025) is None


@pytest.mark.parametrize("item_id", ["batch_1", "bpr_1", "x", "file_", "PR_1", "prx_1", ""])
def test_an_unknown_or_bare_prefix_names_no_type(item_id: str) -> None:
    assert resource_for_id(item_id, API_2026) is None


def test_either_parse_run_name_is_the_versions_own_and_other_types_must_exist_in_it() -> None:
    for name in ("parser_runs", "parse_runs"):
        assert resolve_resource(name, API_2026) is Resource.PARSE_RUNS
        assert resolve_resource(name, API_2025) is Resource.PARSER_RUNS
    assert resolve_resource("files", API_2025) is Resource.FILES
    assert parse_run_resource(API_2026) is Resource.PARSE_RUNS and parse_run_resource(API_2025) is Resource.PARSER_RUNS
    with pytest.raises(UnknownResource) as refused:  # the message lists the version's types
        resolve_resource("extract_runs", API_2025)
    assert str(refused.value) == (
        "'extract_runs' is not a resource type of Extend API 2025-04-21: one of parser_runs, processor_runs, "
        "workflow_runs, files"
    )
    with pytest.raises(UnknownResource) as long_name:  # a caller's name is echoed at most 64 characters long
        resolve_resource("x" * 100, API_2026)
    assert str(long_name.value).startswith(repr("x" * 64) + " is not")
    with pytest.raises(UnknownResource):
        resolve_resource("processor_runs", API_2026)
    with pytest.raises(UnknownResource):
        resolve_resource("deletions", API_2026)


def test_the_known_prefixes_are_listed_in_the_order_they_are_tried() -> None:
    assert known_prefixes(API_2026) == "workflow_run_, parser_run_, splr_, file_, exr_, clr_, edr_, pr_"
    assert known_prefixes(API_2025) == "workflow_run_, parser_run_, file_, dpr_, exr_, pr_"


def test_runs_carry_metadata_and_a_source_file_files_neither_and_edit_runs_have_no_cancel() -> None:
    runs = [resource for resource in Resource if resource is not Resource.FILES]
    assert all(carries_metadata(r) and has_source_file(r) for r in runs)
    assert not carries_metadata(Resource.FILES) and not has_source_file(Resource.FILES)
    assert {r for r in Resource if has_cancel(r)} == set(runs) - {Resource.EDIT_RUNS}


# ---------------------------------------------------------------- messages and bodies


def test_a_typed_dry_run_item_with_its_file_round_trips_through_a_message() -> None:
    request = DeletionRequest(
        "exr_1", tenant_id="acme", deletion_request_id="dr_" + "0" * 26, resource=Resource.EXTRACT_RUNS, dry_run=True
    )
    body = json.loads(request.to_message_body())
    assert body["id"] == "exr_1" and body["resource"] == "extract_runs" and body["dryRun"] is True
    assert "parserRunId" not in body
    assert parse_deletion_message(request.to_message_body()) == request
    with_file = DeletionRequest("pr_1", deletion_request_id="dr_" + "0" * 26, include_file=True)
    assert json.loads(with_file.to_message_body())["include"] == "file"
    assert parse_deletion_message(with_file.to_message_body()) == with_file


def test_a_parse_run_is_written_as_it_always_was() -> None:
    for resource in (None, Resource.PARSE_RUNS, Resource.PARSER_RUNS):
        body = json.loads(DeletionRequest("pr_1", resource=resource).to_message_body())
        assert body == {"parserRunId": "pr_1"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "exr_1"}, "must name its 'resource'"),
        ({"id": "exr_1", "parserRunId": "exr_1", "resource": "extract_runs"}, "not both"),
        ({"id": "w_1", "resource": "widgets"}, "'resource' must be one of"),
        ({"parserRunId": "pr_1", "dryRun": "yes"}, "'dryRun' must be true or false"),
        ({"parserRunId": "pr_1", "include": "everything"}, "'include' may only be"),
        ({"parserRunId": "pr_1", "include": "file"}, "'include' needs the 'deletionRequestId'"),
        ({"id": "file_1", "resource": "files", "sourceOf": "pr_1"}, "only a file of a deletion request"),
        ({"parserRunId": "pr_1", "sourceOf": "pr_0", "deletionRequestId": "dr_" + "0" * 26}, "only a file"),
    ],
)
def test_a_malformed_typed_message_has_a_precise_reason(body: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidDeletionRequest, match=reason):
        parse_deletion_message(json.dumps(body))


def test_a_bulk_body_is_ids_typed_by_prefix_or_parse_runs_with_a_dry_run_and_include() -> None:
    typed = parse_bulk_body('{"ids": ["pr_1", "file_1"], "dryRun": true, "include": ["file"]}')
    assert (typed.values, typed.typed_by_prefix, typed.dry_run, typed.include_file) == (
        ["pr_1", "file_1"],
        True,
        True,
        True,
    )
    legacy = parse_bulk_body('{"parserRunIds": ["pr_1"]}')
    assert (legacy.typed_by_prefix, legacy.dry_run, legacy.include_file) == (False, False, False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"ids": ["pr_1"], "parserRunIds": ["pr_1"]}', "not both"),
        ('{"dryRun": true}', "no 'ids' nor 'parserRunIds'"),
        ('{"ids": ["pr_1"], "dryRun": 1}', "'dryRun' must be true or false"),
        ('{"ids": ["pr_1"], "include": "file"}', "must be an array"),
        ('{"ids": ["pr_1"], "include": ["runs"]}', "must be an array"),
        ('{"ids": []}', "'ids' must hold at least 1 id"),
    ],
)
def test_a_malformed_bulk_body_says_what_is_wrong(body: str, message: str) -> None:
    with pytest.raises(InvalidRequestBody, match=message):
        parse_bulk_body(body)


# ---------------------------------------------------------------- the ledger's rules


def test_cancelled_and_would_delete_are_final_and_neither_is_a_failure() -> None:
    assert {Outcome.CANCELLED, Outcome.WOULD_DELETE} <= FINAL_OUTCOMES
    assert not {Outcome.CANCELLED, Outcome.WOULD_DELETE} & FAILURES


def test_a_cancelled_item_moves_only_to_what_a_delete_already_on_its_way_found() -> None:
    assert may_follow(Outcome.QUEUED, Outcome.CANCELLED)
    assert may_follow(Outcome.CANCELLED, Outcome.DELETED) and may_follow(Outcome.CANCELLED, Outcome.NOT_FOUND)
    for after in (Outcome.QUEUED, Outcome.FAILED, Outcome.DEAD_LETTERED, Outcome.REJECTED, Outcome.WOULD_DELETE):
        assert not may_follow(Outcome.CANCELLED, after), after
        assert not may_still_change(Outcome.CANCELLED, after), after
    assert may_still_change(Outcome.CANCELLED, Outcome.DELETED)
    assert not may_follow(Outcome.DELETED, Outcome.CANCELLED) and not may_follow(Outcome.WOULD_DELETE, Outcome.DELETED)


def _request(counts: dict[Outcome, int], **fields: object) -> RequestRecord:
    now = iso(time.time())
    return RequestRecord("dr_" + "0" * 26, "acme", RequestTrigger.API_BULK, now, counts=counts, transitions=1, **fields)  # type: ignore[arg-type]


def test_a_cancelled_request_reads_cancelled_once_nothing_is_queued() -> None:
    at = iso(time.time())
    assert _request({Outcome.DELETED: 1, Outcome.CANCELLED: 2}, cancelled_at=at).status() is RequestStatus.CANCELLED
    assert _request({Outcome.QUEUED: 1, Outcome.CANCELLED: 2}, cancelled_at=at).status() is RequestStatus.IN_PROGRESS
    # a dry run completes when each item would be deleted or was not found
    assert _request({Outcome.WOULD_DELETE: 2, Outcome.NOT_FOUND: 1}, dry_run=True).status() is RequestStatus.COMPLETED


def test_a_request_is_overdue_only_past_its_due_date_with_items_pending() -> None:
    now = time.time()
    past, future = iso(now - 1), iso(now + 3600)
    assert _request({Outcome.QUEUED: 1}, due_by=past).overdue(now)
    assert not _request({Outcome.QUEUED: 1}, due_by=future).overdue(now)
    assert not _request({Outcome.DELETED: 1}, due_by=past).overdue(now)
    assert not _request({Outcome.QUEUED: 1}).overdue(now)  # recorded before due dates


def test_a_due_date_is_the_deadline_in_days_from_creation() -> None:
    moment = 1_796_000_000.0
    due = due_date(moment, 30)
    assert due is not None and parse_iso(due) - moment == pytest.approx(30 * 86_400, abs=0.001)
    assert due_date(moment, None) is None
