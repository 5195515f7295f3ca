"""Deletion requests as durable records: what a request and each parser run in it are, and what becomes of them.

A **deletion request** is what one API call (or one operator message) asked for: its id (``dr_...``), tenant,
trigger, audit fields, and how many of its runs sit in each outcome. Each **run** in it moves from ``queued`` to
one final outcome; only a redrive takes a ``dead_lettered`` run back to ``queued``. Pure: the records are written
by ``adapters.ledger_table``; the rules for what may follow what, and what a request's status is, live here.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from parser_run_deleter.adapters.ledger_table import LedgerTable, LedgerUnavailable, OverCap, RunChanged, counter
from parser_run_deleter.shared.parser_run_ids import REQUEST_ID_ALPHABET as _ID_ALPHABET
from parser_run_deleter.shared.parser_run_ids import REQUEST_ID_PREFIX
from parser_run_deleter.shared.timestamps import iso, now_iso, parse_iso

if TYPE_CHECKING:  # the callback function reads the ledger, and has no Extend client to load
    from parser_run_deleter.adapters.extend_client import DeleteResult

# A run still queued this long after its request was made cannot be on the queue any more: SQS keeps a message
# 14 days (template.yaml's MessageRetentionPeriod), so it expired there without being deleted.
QUEUE_RETENTION_S: Final = 14 * 24 * 3600
# How long an intake may still be recording a request's runs after its messages are on the queue: longer than the
# API function's timeout (20 s), so a run still unrecorded after it never will be (that intake failed).
INTAKE_GRACE_S: Final = 60
EXPIRED_REASON: Final = "expired: the queue dropped it after 14 days without its deletion being done"


class NotYetRecorded(RuntimeError):
    """The message overtook its intake: the run is not recorded yet. Try again shortly, once it is."""


class RunOutcome(StrEnum):
    QUEUED = "queued"
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"


FINAL_OUTCOMES: Final = frozenset(RunOutcome) - {RunOutcome.QUEUED}
FAILURES: Final = frozenset({RunOutcome.FAILED, RunOutcome.DEAD_LETTERED, RunOutcome.REJECTED})


class RequestStatus(StrEnum):
    ACCEPTED = "accepted"  # taken in; nothing has happened to its runs yet
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # every run deleted or not found
    COMPLETED_WITH_FAILURES = "completed_with_failures"  # every run settled, some failed, dead-lettered or rejected


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
    outcome: RunOutcome
    attempts: int = 0
    extend_status: int | None = None
    extend_request_id: str | None = None
    reason: str | None = None
    completed_at: str | None = None
    redrives: int = 0

    def to_values(self) -> dict[str, Any]:
        return {
            "parserRunId": self.parser_run_id,
            "outcome": self.outcome.value,
            "attempts": self.attempts,
            "extendStatus": self.extend_status,
            "extendRequestId": self.extend_request_id,
            "reason": self.reason,
            "completedAt": self.completed_at,
            "redrives": self.redrives or None,
        }


def run_record(
    parser_run_id: str, outcome: RunOutcome, result: DeleteResult | None = None, reason: str | None = None
) -> RunRecord:
    """A run's record from what became of it: Extend's answer when there was one, and why when it failed."""
    return RunRecord(
        parser_run_id=parser_run_id,
        outcome=outcome,
        attempts=result.attempts if result else 0,
        extend_status=result.status_code if result else None,
        extend_request_id=result.extend_request_id if result else None,
        reason=reason or (result.reason if result else None),
        completed_at=None if outcome is RunOutcome.QUEUED else now_iso(),
    )


def run_from_values(values: Mapping[str, Any]) -> RunRecord:
    status = values.get("extendStatus")
    return RunRecord(
        parser_run_id=str(values["parserRunId"]),
        outcome=RunOutcome(str(values["outcome"])),
        attempts=int(values.get("attempts", 0)),
        extend_status=int(status) if status is not None else None,
        extend_request_id=values.get("extendRequestId"),
        reason=values.get("reason"),
        completed_at=values.get("completedAt"),
        redrives=int(values.get("redrives", 0)),
    )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A deletion request's own record: who asked, when, how, and how many of its runs are in each outcome."""

    request_id: str
    tenant_id: str | None
    trigger: RequestTrigger
    created_at: str
    audit: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[RunOutcome, int] = field(default_factory=dict)
    updated_at: str | None = None
    completed_at: str | None = None
    callback: Mapping[str, Any] | None = None
    transitions: int = 0  # outcomes recorded after intake, failed attempts included
    completions: int = 0  # times it completed: more than once only after a redrive reopened it

    def to_values(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "trigger": self.trigger.value,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at or self.created_at,
            "audit": dict(self.audit) or None,
            **{counter(outcome.value): n for outcome, n in self.counts.items() if n},
        }

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
        shown = {outcome.value: int(self.counts.get(outcome, 0)) for outcome in RunOutcome}
        if shown[RunOutcome.QUEUED] and self.expired(now):
            shown[RunOutcome.FAILED] += shown[RunOutcome.QUEUED]
            shown[RunOutcome.QUEUED] = 0
        return shown

    def status(self, now: float | None = None) -> RequestStatus:
        return request_status(self.shown_counts(now), started=self.transitions > 0)


def request_status(counts: Mapping[str, int], *, started: bool) -> RequestStatus:
    """``accepted`` until something happens to one of its runs after intake (``started``); ``in_progress`` while
    some are still queued; then ``completed``, or ``completed_with_failures`` if any run failed, was dead-lettered
    or rejected."""
    queued = counts.get(RunOutcome.QUEUED, 0)
    failures = sum(counts.get(outcome, 0) for outcome in FAILURES)
    if queued:
        return RequestStatus.IN_PROGRESS if started else RequestStatus.ACCEPTED
    if sum(counts.values()) == 0:
        return RequestStatus.ACCEPTED  # taken in, its runs not recorded yet
    return RequestStatus.COMPLETED_WITH_FAILURES if failures else RequestStatus.COMPLETED


def shown_run(run: RunRecord, request: RequestRecord, now: float | None = None) -> RunRecord:
    """A run as the status resource shows it: still queued past the queue's retention, it failed (expired)."""
    if run.outcome is RunOutcome.QUEUED and request.expired(now):
        return RunRecord(run.parser_run_id, RunOutcome.FAILED, run.attempts, reason=EXPIRED_REASON)
    return run


def outstanding_change(before: RunOutcome | None, after: RunOutcome) -> int:
    """How a transition changes the tenant's count of outstanding (queued) runs."""
    return int(after is RunOutcome.QUEUED) - int(before is RunOutcome.QUEUED)


def may_follow(before: RunOutcome | None, after: RunOutcome) -> bool:
    """Whether a run may move from ``before`` (None: not recorded yet) to ``after``. A final outcome is final, but
    a dead-lettered run may be redriven; a queued run may be recorded queued again (a failed attempt); and a run
    found missing may turn out deleted: two deliveries of one message raced, the first to answer met the other's
    deletion (a 404), and Extend's 200 to the other proves this service deleted it."""
    if before is None or before is RunOutcome.QUEUED:
        return True
    if before is RunOutcome.NOT_FOUND:
        return after is RunOutcome.DELETED
    return before is RunOutcome.DEAD_LETTERED and after is not RunOutcome.REJECTED


def request_from_values(values: Mapping[str, Any]) -> RequestRecord:
    counts = {outcome: int(values.get(counter(outcome.value), 0)) for outcome in RunOutcome}
    return RequestRecord(
        request_id=str(values["requestId"]),
        tenant_id=values.get("tenantId"),
        trigger=RequestTrigger(str(values.get("trigger", RequestTrigger.QUEUE.value))),
        created_at=str(values["createdAt"]),
        audit={str(k): str(v) for k, v in (values.get("audit") or {}).items()},
        counts={outcome: n for outcome, n in counts.items() if n},
        updated_at=values.get("updatedAt"),
        completed_at=values.get("completedAt"),
        callback=_plain(values.get("callback")),
        transitions=int(values.get("transitions", 0)),
        completions=int(values.get("completions", 0)),
    )


def _plain(value: Any) -> Any:
    """DynamoDB's numbers come back as Decimal: whole ones as int, so that they serialise as JSON numbers."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _may_still_change(current: RunOutcome, incoming: RunOutcome) -> bool:
    """Whether a run found settled as ``current`` is still to move to ``incoming``: a dead-lettered run redriven, or
    a run found missing that this delivery's deletion proves deleted."""
    if current is RunOutcome.DEAD_LETTERED:
        return incoming is not RunOutcome.DEAD_LETTERED
    return current is RunOutcome.NOT_FOUND and incoming is RunOutcome.DELETED


@dataclass(frozen=True, slots=True)
class Transition:
    before: RunOutcome | None
    after: RunOutcome
    request: RequestRecord | None = None  # the request as counted, when the write returned it


class Ledger:
    """The ledger's operations in the domain's terms: requests and runs in, records and transitions out."""

    def __init__(self, table: LedgerTable) -> None:
        self.table = table

    # ---- intake

    def begin(
        self,
        tenant_id: str | None,
        trigger: RequestTrigger,
        audit: Mapping[str, str],
        *,
        reserve: int = 0,
        cap: int | None = None,
    ) -> RequestRecord:
        """A new request, recorded before anything of it is queued, with ``reserve`` runs counted against the
        tenant's ``cap``. Raises ``OverCap`` or ``LedgerUnavailable``."""
        request = RequestRecord(new_request_id(), tenant_id, trigger, now_iso(), audit=audit)
        self.table.begin(request.request_id, tenant_id, request.to_values(), reserve=reserve, cap=cap)
        return request

    def take_in(self, request: RequestRecord, runs: Sequence[RunRecord], *, released: int = 0) -> RequestRecord:
        """Record the runs a request took in: the queued ones once SQS holds them, the rejected ones with their
        reasons; give back ``released`` reserved runs that were not queued."""
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.outcome.value] = counts.get(run.outcome.value, 0) + 1
        self.table.record_intake(
            request.request_id,
            [run.to_values() for run in runs],
            counts,
            tenant_id=request.tenant_id,
            released=released,
        )
        return replace(request, counts={RunOutcome(outcome): n for outcome, n in counts.items()})

    def record_single(
        self, tenant_id: str | None, trigger: RequestTrigger, audit: Mapping[str, str], run: RunRecord
    ) -> RequestRecord:
        """A request of one run whose outcome is already known (the synchronous path), recorded in one write."""
        request = RequestRecord(new_request_id(), tenant_id, trigger, now_iso(), audit=audit, counts={run.outcome: 1})
        self.table.record_single(request.request_id, tenant_id, request.to_values(), run.to_values())
        return request

    # ---- outcomes

    def record_outcome(
        self, request_id: str, run: RunRecord, *, tenant_id: str | None, create: RequestRecord | None = None
    ) -> Transition | None:
        """Move the run to ``run.outcome``, and count it in its request and its tenant's outstanding runs. None when
        the run had settled already and was counted (a redelivered message): nothing changes. ``create`` is the
        request to record as well where it is not yet (an operator's message). Raises ``LedgerUnavailable``.

        From queued (or unrecorded) the writes are separate but each idempotent: a crash between them is repaired
        when the message comes back, by counting what was not counted. A redrive (from dead-lettered) is rare and
        takes one transaction."""
        before: RunOutcome | None = None if create is not None else RunOutcome.QUEUED
        request_values = create.to_values() if create is not None else None
        for _ in range(3):
            if not may_follow(before, run.outcome):
                return None
            recorded = replace(run, redrives=1 if before is RunOutcome.DEAD_LETTERED else 0)
            # A run the API queued but could not record (its intake write failed) was still reserved.
            delta = outstanding_change(
                before if before is not None or create is not None else RunOutcome.QUEUED, run.outcome
            )
            before_value = before.value if before is not None else None
            try:
                if before in (RunOutcome.DEAD_LETTERED, RunOutcome.NOT_FOUND):
                    self.table.transition(
                        request_id,
                        recorded.to_values(),
                        before_value,
                        tenant_id=tenant_id,
                        outstanding_delta=delta,
                        request_values=request_values,
                    )
                    return Transition(before, run.outcome)
                counted = self.table.settle(
                    request_id,
                    recorded.to_values(),
                    before_value,
                    tenant_id=tenant_id,
                    outstanding_delta=delta,
                    request_values=request_values,
                )
            except RunChanged:
                found = self.table.current_outcome(request_id, run.parser_run_id)
                current = RunOutcome(found) if found is not None else None
                if current is not None and current in FINAL_OUTCOMES:
                    # Settled by an earlier delivery, which may have stopped before counting it: count it now. The
                    # count is idempotent, so a delivery that had counted it changes nothing here.
                    counted = self.table.count(
                        request_id,
                        {"parserRunId": run.parser_run_id, "outcome": current.value},
                        before_value,
                        tenant_id=tenant_id,
                        outstanding_delta=outstanding_change(
                            before if before is not None or create is not None else RunOutcome.QUEUED, current
                        ),
                        request_values=request_values,
                    )
                    if not _may_still_change(current, run.outcome):
                        return Transition(before, current, request_from_values(counted)) if counted else None
                # The intake records a run after SQS took its message: a fast consumer can get here first, and
                # writing the run now would be overwritten by the intake's own write. Wait for it, unless the intake
                # has had all the time it could take (then it failed, and this is the run's only record).
                if current is None and create is None and self._intake_may_be_running(request_id):
                    raise NotYetRecorded(f"run {run.parser_run_id} of {request_id} is not recorded yet") from None
                before = current
                continue
            return Transition(before, run.outcome, request_from_values(counted) if counted else None)
        raise LedgerUnavailable("cannot record the outcome: the run kept changing under the update")

    def _intake_may_be_running(self, request_id: str) -> bool:
        found = self.table.request(request_id)
        return found is None or time.time() - parse_iso(str(found["createdAt"])) < INTAKE_GRACE_S

    # ---- completion

    def complete_if_settled(self, request_id: str, *, with_callback: bool) -> RequestRecord | None:
        """Mark the request completed once none of its runs is queued; the request, if this call completed it
        (so exactly one caller tells the tenant). ``with_callback`` records a callback delivery as pending."""
        callback = {"state": "pending", "attempts": 0} if with_callback else None
        found = self.table.complete(request_id, now_iso(), callback)
        return request_from_values(found) if found else None

    def set_callback(self, request_id: str, state: Mapping[str, Any]) -> None:
        self.table.set_callback(request_id, {k: v for k, v in state.items() if v is not None})

    # ---- reading

    def request(self, request_id: str) -> RequestRecord | None:
        found = self.table.request(request_id)
        return request_from_values(found) if found else None

    def runs(self, request_id: str, *, limit: int, after: str | None = None) -> tuple[list[RunRecord], str | None]:
        """A page of the request's runs in id order, and the run id to continue after (None at the end)."""
        found, more = self.table.runs(request_id, limit=limit, after=after)
        runs = [run_from_values(values) for values in found]
        return runs, runs[-1].parser_run_id if more and runs else None

    def all_runs(self, request_id: str) -> Iterator[RunRecord]:
        for values in self.table.all_runs(request_id):
            yield run_from_values(values)

    def outstanding(self, tenant_id: str) -> int:
        return self.table.outstanding(tenant_id)

    def requests_of(self, tenant_id: str | None, *, since: str = "") -> Iterator[RequestRecord]:
        for values in self.table.requests_of(tenant_id, since=since):
            yield request_from_values(values)

    def recount(self, tenant_id: str, now: float | None = None) -> int:
        """Set the tenant's outstanding count from its requests' own counters: the repair for a reservation a
        crashed intake left behind. Run it while the tenant is quiet: a request taken in meanwhile is missed."""
        moment = time.time() if now is None else now
        since = iso(moment - QUEUE_RETENTION_S)
        queued = sum(request.counts.get(RunOutcome.QUEUED, 0) for request in self.requests_of(tenant_id, since=since))
        self.table.set_outstanding(tenant_id, queued)
        return queued

    def oldest_outstanding(self, tenant_id: str, now: float | None = None) -> RequestRecord | None:
        """The tenant's oldest request with runs still queued: only the queue's retention can hold any."""
        moment = time.time() if now is None else now
        for request in self.requests_of(tenant_id, since=iso(moment - QUEUE_RETENTION_S)):
            if request.counts.get(RunOutcome.QUEUED):
                return request
        return None


@cache
def ledger(table_name: str, retention_days: int) -> Ledger:
    return Ledger(LedgerTable(table_name, retention_days=retention_days))


def reset() -> None:
    ledger.cache_clear()


__all__ = ["Ledger", "LedgerUnavailable", "OverCap", "RequestRecord", "RunOutcome", "RunRecord", "ledger"]
