"""The ledger's rules, pure: what a request's status is, what may follow what, and its ids."""

from __future__ import annotations

import time

import pytest

from parser_run_deleter.adapters.ledger_table import legacy_settled_marker, settled_marker
from parser_run_deleter.logic.ledger_records import (
    EXPIRED_REASON,
    QUEUE_RETENTION_S,
    RequestRecord,
    RequestStatus,
    RequestTrigger,
    RunRecord,
    may_follow,
    may_still_change,
    new_request_id,
    outstanding_change,
    request_id_for_message,
    request_status,
    shown_run,
)
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.parser_run_ids import is_request_id
from parser_run_deleter.shared.timestamps import iso

Q, D, N, F, DL, R = (Outcome.QUEUED, Outcome.DELETED, Outcome.NOT_FOUND, Outcome.FAILED,
                     Outcome.DEAD_LETTERED, Outcome.REJECTED)  # fmt: skip


@pytest.mark.parametrize(
    ("counts", "started", "status"),
    [
        ({}, False, RequestStatus.ACCEPTED),  # taken in, runs not recorded yet
        ({"queued": 3}, False, RequestStatus.ACCEPTED),
        ({"queued": 3, "rejected": 1}, False, RequestStatus.ACCEPTED),  # a rejection is not progress
        ({"queued": 2}, True, RequestStatus.IN_PROGRESS),  # an attempt failed: work is under way
        ({"queued": 1, "deleted": 2}, True, RequestStatus.IN_PROGRESS),
        ({"deleted": 2, "not_found": 1}, True, RequestStatus.COMPLETED),
        ({"deleted": 2, "rejected": 1}, False, RequestStatus.COMPLETED_WITH_FAILURES),
        ({"deleted": 2, "dead_lettered": 1}, True, RequestStatus.COMPLETED_WITH_FAILURES),
        ({"failed": 1}, False, RequestStatus.COMPLETED_WITH_FAILURES),
    ],
)
def test_a_requests_status_follows_from_its_counts(
    counts: dict[str, int], started: bool, status: RequestStatus
) -> None:
    assert request_status(counts, started=started) is status


def test_final_outcomes_are_final_but_a_dead_letter_can_be_redriven_and_not_found_proved_deleted() -> None:
    for final in (D, F, R):
        assert not any(may_follow(final, after) for after in Outcome)
    # A 404 met by one delivery, and Extend's 200 to a racing one: the run was this service's to delete.
    assert [after for after in Outcome if may_follow(N, after)] == [D]
    assert all(may_follow(None, after) for after in Outcome) and all(may_follow(Q, after) for after in Outcome)
    assert may_follow(DL, Q) and may_follow(DL, D) and may_follow(DL, N) and not may_follow(DL, R)


def test_only_queued_runs_are_outstanding() -> None:
    assert outstanding_change(Q, D) == -1 and outstanding_change(Q, DL) == -1 and outstanding_change(DL, Q) == 1
    assert outstanding_change(None, D) == 0 and outstanding_change(Q, Q) == 0 and outstanding_change(None, Q) == 1


def test_every_character_of_an_operators_request_id_carries_the_message_ids_hash() -> None:
    # 130 bits of the message id's SHA-256, 5 per character: each of the 26 positions takes any of the 32 letters
    # (a position fed by fewer bits, or by none, would take 16 or 1), so two messages share a request by chance
    # with odds of one in 2^130
    ids = [request_id_for_message(f"message-{n}").removeprefix("dr_") for n in range(400)]
    assert {len(set(column)) for column in zip(*ids, strict=True)} == {32}


@pytest.mark.parametrize(
    ("current", "incoming", "changes"),
    [
        (Outcome.NOT_FOUND, Outcome.DELETED, True),  # this delivery's deletion proves the run was there
        (Outcome.DEAD_LETTERED, Outcome.DELETED, True),  # a redrive
        (Outcome.DEAD_LETTERED, Outcome.QUEUED, True),
        (Outcome.DEAD_LETTERED, Outcome.DEAD_LETTERED, False),
        (Outcome.DELETED, Outcome.DELETED, False),  # a redelivery of a settled run
        (Outcome.DELETED, Outcome.NOT_FOUND, False),
        (Outcome.NOT_FOUND, Outcome.NOT_FOUND, False),
        (Outcome.FAILED, Outcome.DELETED, False),
    ],
)
def test_a_settled_run_moves_again_only_when_redriven_or_proved_deleted(
    current: Outcome, incoming: Outcome, changes: bool
) -> None:
    assert may_still_change(current, incoming) is changes


def test_request_ids_are_well_formed_unique_and_sort_by_creation() -> None:
    ids = [new_request_id() for _ in range(200)]
    assert all(is_request_id(i) for i in ids) and len(set(ids)) == 200
    earlier = new_request_id(now=1_800_000_000.000)
    assert earlier < new_request_id(now=1_800_000_000.001)  # a millisecond later sorts after, whatever its randomness
    # an operator's message is recorded under the same request on every delivery, and only that message's
    assert request_id_for_message("m-1") == request_id_for_message("m-1") != request_id_for_message("m-2")
    assert is_request_id(request_id_for_message("m-1"))
    assert not is_request_id("dr_short") and not is_request_id("dr_" + "I" * 26) and not is_request_id(None)


def test_queued_runs_past_the_queues_retention_read_as_failed_expired() -> None:
    old = RequestRecord("dr_x", "acme", RequestTrigger.API_BULK, iso(time.time() - QUEUE_RETENTION_S - 60),
                        counts={Q: 2, D: 1})  # fmt: skip
    assert old.shown_counts()["failed"] == 2 and old.shown_counts()["queued"] == 0
    assert old.status() is RequestStatus.COMPLETED_WITH_FAILURES
    assert shown_run(RunRecord("pr_1", Q), old) == RunRecord("pr_1", F, reason=EXPIRED_REASON)
    young = RequestRecord("dr_y", "acme", RequestTrigger.API_BULK, iso(time.time()), counts={Q: 2})
    assert young.shown_counts()["queued"] == 2 and shown_run(RunRecord("pr_1", Q), young).outcome is Q


def test_a_settled_marker_is_fixed_size_distinct_and_carries_128_bits() -> None:
    markers = {settled_marker(f"pr_{n}" * 40) for n in range(1000)}
    # 22 base64url characters: 132 bits of room, 128 of them the run id's SHA-256 (no crafted collision is feasible)
    assert len(markers) == 1000 and {len(m) for m in markers} == {22}
    assert {len(legacy_settled_marker(f"pr_{n}")) for n in range(10)} == {10}  # the old kind, still honoured
