"""What logic learns from Extend: the result of deleting or reading one item (a run or a file), in logic's own
types.

``ports.ExtendItems`` returns these; ``adapters.extend_client`` makes them from Extend's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from parser_run_deleter.logic.outcomes import Outcome

# An attempt that cannot get this long is not worth starting: it would only time out.
MIN_ATTEMPT_S: Final = 0.25


class CredentialsError(RuntimeError):
    """Extend's key could not be read or holds no usable key. Never carries the secret's value."""


@dataclass(frozen=True, slots=True)
class DeleteResult:
    parser_run_id: str
    outcome: Outcome  # DELETED, NOT_FOUND or FAILED
    attempts: int
    status_code: int | None = None
    retryable: bool = False
    extend_request_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    throttled_responses: int = 0
    # Not found because the run is not the caller's (its ownership policy refused it): set by the ownership check,
    # never by the client. The caller is told "not found", exactly as for a missing run.
    not_owned: bool = False
    # An earlier attempt of this call was sent but got no answer: a later "not found" may be its doing.
    answer_lost_before: bool = False
    # A run's source file, when a read decided the result (a dry run's check): what ``include`` deletes with it.
    source_file_id: str | None = None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


def failed_before_extend(parser_run_id: str, reason: str | None = None, *, retryable: bool = True) -> DeleteResult:
    """A deletion that never reached Extend (no attempt made): retryable unless said otherwise."""
    return DeleteResult(parser_run_id, Outcome.FAILED, attempts=0, retryable=retryable, reason=reason)


class ReadOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A read of one run: found (with its custom ``metadata``, if any), not found, or failed."""

    parser_run_id: str
    outcome: ReadOutcome
    attempts: int
    metadata: dict[str, Any] | None = None
    status: str | None = None  # Extend's status of the item (PROCESSING, PROCESSED, ...), when it has one
    source_file_id: str | None = None  # a run's source file, when its GET names one
    status_code: int | None = None
    retryable: bool = False
    extend_request_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    throttled_responses: int = 0
    answer_lost_before: bool = False  # meaningless for a read; kept so both results take the same fields
