"""The fate of a queue message, decided from its deletion result and its receive count alone."""

from __future__ import annotations

import pytest

from parser_run_deleter.logic.extend_results import DeleteResult
from parser_run_deleter.logic.message_fate import Decision, FailureKind, Fate, decide_fate
from parser_run_deleter.logic.outcomes import Outcome

MAX_RECEIVES = 5


def result(outcome: Outcome, *, retryable: bool = False) -> DeleteResult:
    return DeleteResult("pr_1", outcome, attempts=1, retryable=retryable)


@pytest.mark.parametrize("outcome", [Outcome.DELETED, Outcome.NOT_FOUND])
@pytest.mark.parametrize("receive_count", [1, MAX_RECEIVES, MAX_RECEIVES + 3])
def test_a_finished_deletion_is_consumed_on_any_receive(outcome: Outcome, receive_count: int) -> None:
    decision = decide_fate(result(outcome), receive_count=receive_count, max_receive_count=MAX_RECEIVES)
    assert decision == Decision(Fate.CONSUME)


@pytest.mark.parametrize("receive_count", [1, MAX_RECEIVES])
def test_a_malformed_message_is_dead_lettered_at_once(receive_count: int) -> None:
    decision = decide_fate(None, receive_count=receive_count, max_receive_count=MAX_RECEIVES)
    assert decision == Decision(Fate.DEAD_LETTER, FailureKind.INVALID)


@pytest.mark.parametrize("retryable", [True, False])
def test_a_failure_before_the_last_receive_is_returned_for_another(retryable: bool) -> None:
    failed = result(Outcome.FAILED, retryable=retryable)
    assert decide_fate(failed, receive_count=MAX_RECEIVES - 1, max_receive_count=MAX_RECEIVES).fate is Fate.RETRY


@pytest.mark.parametrize(("retryable", "kind"), [(True, FailureKind.RETRIES_EXHAUSTED), (False, FailureKind.PERMANENT)])
def test_a_failure_on_the_last_receive_is_dead_lettered_with_its_kind(retryable: bool, kind: FailureKind) -> None:
    failed = result(Outcome.FAILED, retryable=retryable)
    for receive_count in (MAX_RECEIVES, MAX_RECEIVES + 1):  # SQS may deliver once more than the count
        decision = decide_fate(failed, receive_count=receive_count, max_receive_count=MAX_RECEIVES)
        assert decision == Decision(Fate.DEAD_LETTER, kind)


def test_without_a_known_max_receive_count_a_failure_is_left_to_sqs_redrive() -> None:
    failed = result(Outcome.FAILED)
    assert decide_fate(failed, receive_count=100, max_receive_count=None).fate is Fate.RETRY


def test_a_deletion_never_started_is_returned_even_on_the_last_receive() -> None:
    not_started = DeleteResult("pr_1", Outcome.FAILED, attempts=0, retryable=True)
    decision = decide_fate(not_started, receive_count=MAX_RECEIVES, max_receive_count=MAX_RECEIVES, started=False)
    assert decision == Decision(Fate.RETRY)
