"""Deletion requests as durable records, and the rules they follow. Pure: no I/O.

A **deletion request** is what one API call (or one operator message) asked for: its id (``dr_...``), tenant,
trigger, audit fields, and how many of its runs sit in each outcome. Each **run** in it moves from ``queued`` to
one final outcome; only a redrive takes a ``dead_lettered`` run back to ``queued``. ``logic.ledger`` records them
through the ``LedgerStore`` port; ``adapters.ledger_table`` owns how they are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from parser_run_deleter.logic.extend_results import DeleteResult
from parser_run_deleter.logic.outcomes import FAILURES, RUN_OUTCOMES, Outcome
from parser_run_deleter.shared.parser_run_ids import REQUEST_ID_ALPHABET as _ID_ALPHABET
from parser_run_deleter.shared.parser_run_ids import REQUEST_ID_PREFIX
from parser_run_deleter.shared.timestamps import now_iso, parse_iso

# A run still queued this long after its request was made cannot be on the queue any more: SQS keeps a message
# 14 days (template.yaml's MessageRetentionPeriod), so it expired there without being deleted.
QUEUE_RETENTION_S: Final = 14 * 24 * 3600
# How long an intake may still be recording a request's runs after its messages are on the queue: longer than the
# API function's timeout (20 s), so a run still unrecorded after it never will be (that intake failed).
INTAKE_GRACE_S: Final = 60
EXPIRED_REASON: Final = "expired: the queue dropped it after 14 days without its deletion being done"


class LedgerUnavailable(RuntimeError):
    """The ledger could not be read or written. Carries the error's type only: nothing was recorded."""


class OverCap(Exception):
    """Taking the request in would put the tenant over its cap of outstanding runs."""

    def __init__(self, outstanding: int, cap: int, requested: int) -> None:
        super().__init__(f"{outstanding} runs outstanding, cap {cap}, {requested} more requested")
        self.outstanding, self.cap, self.requested = outstanding, cap, requested


class RunChanged(Exception):
    """The run was not in the outcome the transition expected (another delivery moved it first)."""


class NotYetRecorded(RuntimeError):
    """The message overtook its intake: the run is not recorded yet. Try again shortly, once it is."""


class RequestStatus(StrEnum):
    ACCEPTED = "accepted"  # taken in; nothing has happened to its runs yet
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # every run deleted or not found
    COMPLETED_WITH_FAILURES = "completed_with_failures"  # every run settled, some failed, dead-lettered or rejected
    CANCELLED = "cancelled"  # cancelled by its tenant, and nothing of it is still queued


class RequestTrigger(StrEnum):
    API_DELETE = "api_delete"
    API_BULK = "api_bulk"
    QUEUE = "queue"  # a message that came without a request: an operator's, recorded when it is consumed


def new_request_id(now: float | None = None) -> str:
    """``dr_`` and 26 base32 characters: a millisecond timestamp (``now``, Unix seconds; default the clock), so ids
    sort by creation, then 80 random bits."""
    moment = time.time() if now is None else now
    value = (int(moment * 1000) << 80) | secrets.randbits(80)
    return REQUEST_ID_PREFIX + "".join(_ID_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def request_id_for_message(message_id: str) -> str:
    """The request an operator's message (sent without one) is recorded under: the same on every redelivery."""
    digest = int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:17], "big") >> 6
    return REQUEST_ID_PREFIX + "".join(_ID_ALPHABET[(digest >> shift) & 31] for shift in range(125, -1, -5))


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One parser run's state within a request, as the ledger keeps it and the status resource shows it."""

    parser_run_id: str
    outcome: Outcome
    attempts: int = 0
    extend_status: int | None = None
    extend_request_id: str | None = None
    reason: str | None = None
    completed_at: str | None = None
    redrives: int = 0
    resource: str | None = None  # Extend's resource type (its path segment); None in records made before types
    source_of: str | None = None  # a file included with a run's deletion: the run it is the source file of


def run_record(
    parser_run_id: str,
    outcome: Outcome,
    result: DeleteResult | None = None,
    reason: str | None = None,
    *,
    resource: str | None = None,
) -> RunRecord:
    """A run's record from what became of it: Extend's answer when there was one, and why when it failed."""
    return RunRecord(
        resource=resource,
        parser_run_id=parser_run_id,
        outcome=outcome,
        attempts=result.attempts if result else 0,
        extend_status=result.status_code if result else None,
        extend_request_id=result.extend_request_id if result else None,
        reason=reason or (result.reason if result else None),
        completed_at=None if outcome is Outcome.QUEUED else now_iso(),
    )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A deletion request's own record: who asked, when, how, and how many of its runs are in each outcome."""

    request_id: str
    tenant_id: str | None
    trigger: RequestTrigger
    created_at: str
    audit: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[Outcome, int] = field(default_factory=dict)
    updated_at: str | None = None
    completed_at: str | None = None
    callback: Mapping[str, Any] | None = None
    transitions: int = 0  # outcomes recorded after intake, failed attempts included
    completions: int = 0  # times it completed: more than once only after a redrive reopened it
    dry_run: bool = False  # its items are checked, never deleted
    due_by: str | None = None  # when the tenant's deadline for it passes
    cancelled_at: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def expired(self, now: float | None = None) -> bool:
        """Its queued runs, if any, can no longer be on the queue."""
        moment = time.time() if now is None else now
        return moment - parse_iso(self.created_at) > QUEUE_RETENTION_S

    def shown_counts(self, now: float | None = None) -> dict[str, int]:
        """The counts as the status resource shows them: every outcome, and queued runs past the queue's retention
        as failed."""
        shown = {outcome.value: int(self.counts.get(outcome, 0)) for outcome in RUN_OUTCOMES}
        if shown[Outcome.QUEUED] and self.expired(now):
            shown[Outcome.FAILED] += shown[Outcome.QUEUED]
            shown[Outcome.QUEUED] = 0
        return shown

    def status(self, now: float | None = None) -> RequestStatus:
        status = request_status(self.shown_counts(now), started=self.transitions > 0)
        if self.cancelled_at is not None and status not in (RequestStatus.ACCEPTED, RequestStatus.IN_PROGRESS):
            return RequestStatus.CANCELLED
        return status

    def overdue(self, now: float | None = None) -> bool:
        """Past its due date with items still pending."""
        moment = time.time() if now is None else now
        pending = self.status(now) in (RequestStatus.ACCEPTED, RequestStatus.IN_PROGRESS)
        return pending and self.due_by is not None and moment > parse_iso(self.due_by)


def request_status(counts: Mapping[str, int], *, started: bool) -> RequestStatus:
    """``accepted`` until something happens to one of its runs after intake (``started``); ``in_progress`` while
    some are still queued; then ``completed``, or ``completed_with_failures`` if any run failed, was dead-lettered
    or rejected."""
    queued = counts.get(Outcome.QUEUED, 0)
    failures = sum(counts.get(outcome, 0) for outcome in FAILURES)
    if queued:
        return RequestStatus.IN_PROGRESS if started else RequestStatus.ACCEPTED
    if sum(counts.values()) == 0:
        return RequestStatus.ACCEPTED  # taken in, its runs not recorded yet
    return RequestStatus.COMPLETED_WITH_FAILURES if failures else RequestStatus.COMPLETED


def shown_run(run: RunRecord, request: RequestRecord, now: float | None = None) -> RunRecord:
    """A run as the status resource shows it: still queued past the queue's retention, it failed (expired)."""
    if run.outcome is Outcome.QUEUED and request.expired(now):
        return RunRecord(run.parser_run_id, Outcome.FAILED, run.attempts, reason=EXPIRED_REASON, resource=run.resource)
    return run


def outstanding_change(before: Outcome | None, after: Outcome) -> int:
    """How a transition changes the tenant's count of outstanding (queued) runs."""
    return int(after is Outcome.QUEUED) - int(before is Outcome.QUEUED)


def may_follow(before: Outcome | None, after: Outcome) -> bool:
    """Whether a run may move from ``before`` (None: not recorded yet) to ``after``. A final outcome is final, but
    a dead-lettered run may be redriven; a queued run may be recorded queued again (a failed attempt); and a run
    found missing may turn out deleted: two deliveries of one message raced, the first to answer met the other's
    deletion (a 404), and Extend's 200 to the other proves this service deleted it."""
    if before is None or before is Outcome.QUEUED:
        return True
    if before is Outcome.NOT_FOUND:
        return after is Outcome.DELETED
    if before is Outcome.CANCELLED:
        # A cancel cannot recall a DELETE already on its way: what Extend did to the item is what it records.
        return after in (Outcome.DELETED, Outcome.NOT_FOUND)
    return before is Outcome.DEAD_LETTERED and after is not Outcome.REJECTED


def may_still_change(current: Outcome, incoming: Outcome) -> bool:
    """Whether a run found settled as ``current`` is still to move to ``incoming``: a dead-lettered run redriven, or
    a run found missing that this delivery's deletion proves deleted."""
    if current is Outcome.DEAD_LETTERED:
        return incoming is not Outcome.DEAD_LETTERED
    if current is Outcome.CANCELLED:
        return incoming in (Outcome.DELETED, Outcome.NOT_FOUND)
    return current is Outcome.NOT_FOUND and incoming is Outcome.DELETED


@dataclass(frozen=True, slots=True)
class Transition:
    before: Outcome | None
    after: Outcome
    request: RequestRecord | None = None  # the request as counted, when the write returned it
