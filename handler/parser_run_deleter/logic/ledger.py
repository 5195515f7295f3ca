"""The ledger's operations in the domain's terms: requests and runs in, records and transitions out, through the
``LedgerStore`` port (``adapters.ledger_table`` on DynamoDB). The records and their rules are
``logic.ledger_records``'s."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from parser_run_deleter.logic.ledger_records import (
    EXPIRED_REASON,
    INTAKE_GRACE_S,
    QUEUE_RETENTION_S,
    LedgerUnavailable,
    NotYetRecorded,
    RequestRecord,
    RequestTrigger,
    RunChanged,
    RunRecord,
    Transition,
    may_follow,
    may_still_change,
    new_request_id,
    outstanding_change,
)
from parser_run_deleter.logic.outcomes import FINAL_OUTCOMES, Outcome
from parser_run_deleter.logic.ports import LedgerStore
from parser_run_deleter.shared.timestamps import iso, now_iso, parse_iso

PENDING_CALLBACK: Mapping[str, Any] = {"state": "pending", "attempts": 0}
CANCELLED_REASON: Final = "cancelled by its tenant before it was attempted"
# The most runs one request's counters move by in one write: each adds two conditions to the write's condition
# expression, which DynamoDB bounds at 4 KB.
COUNT_GROUP: Final = 25


@dataclass(frozen=True, slots=True)
class Uncounted:
    """A run moved from queued to its final outcome whose counts wait for its batch's (``Ledger.count_batch``)."""

    request_id: str
    tenant_id: str | None
    parser_run_id: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class BatchCount:
    """What ``count_batch`` did: each request's record as counted (None: counted run by run, or already), and the
    requests whose counts could not be written (their runs' messages return, and are counted on redelivery)."""

    counted: dict[str, RequestRecord | None]
    failed: set[str]


def due_date(moment: float, days: int | None) -> str | None:
    return iso(moment + days * 86_400) if days else None


class Ledger:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    # ---- intake

    def begin(
        self,
        tenant_id: str | None,
        trigger: RequestTrigger,
        audit: Mapping[str, str],
        *,
        reserve: int = 0,
        cap: int | None = None,
        due_in_days: int | None = None,
        dry_run: bool = False,
    ) -> RequestRecord:
        """A new request, recorded before anything of it is queued, with ``reserve`` runs counted against the
        tenant's ``cap``, due ``due_in_days`` from now. Raises ``OverCap`` or ``LedgerUnavailable``."""
        moment = time.time()
        request = RequestRecord(
            new_request_id(moment),
            tenant_id,
            trigger,
            iso(moment),
            audit=audit,
            due_by=due_date(moment, due_in_days),
            dry_run=dry_run,
        )
        self.store.begin(request, reserve=reserve, cap=cap)
        return request

    def take_in(self, request: RequestRecord, runs: Sequence[RunRecord], *, released: int = 0) -> RequestRecord:
        """Record the runs a request took in: the queued ones once SQS holds them, the rejected ones with their
        reasons; give back ``released`` reserved runs that were not queued."""
        counts: dict[Outcome, int] = {}
        for run in runs:
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
        self.store.record_intake(request, runs, released=released)
        return replace(request, counts=counts)

    def record_single(
        self,
        tenant_id: str | None,
        trigger: RequestTrigger,
        audit: Mapping[str, str],
        run: RunRecord,
        *,
        with_callback: bool = False,
        due_in_days: int | None = None,
    ) -> RequestRecord:
        """A request of one run whose outcome is already known (the synchronous path), recorded in one write, and
        completed in it: a settled run is the whole request. ``with_callback`` records its callback as pending."""
        moment = time.time()
        now = iso(moment)
        settled = run.outcome is not Outcome.QUEUED
        callback = PENDING_CALLBACK if settled and with_callback else None
        request = RequestRecord(
            new_request_id(moment),
            tenant_id,
            trigger,
            now,
            audit=audit,
            due_by=due_date(moment, due_in_days),
            counts={run.outcome: 1},
            completed_at=now if settled else None,
            callback=callback,
            completions=int(settled),
        )
        self.store.record_single(request, run, callback=callback)
        return request

    # ---- outcomes

    def record_outcome(
        self,
        request_id: str,
        run: RunRecord,
        *,
        tenant_id: str | None,
        create: RequestRecord | None = None,
        defer_count: bool = False,
    ) -> Transition | Uncounted | None:
        """Move the run to ``run.outcome``, and count it in its request and its tenant's outstanding runs. None when
        the run had settled already and was counted (a redelivered message): nothing changes. ``create`` is the
        request to record as well where it is not yet (an operator's message). Raises ``LedgerUnavailable``.

        From queued (or unrecorded) the writes are separate but each idempotent: a crash between them is repaired
        when the message comes back, by counting what was not counted. A redrive (from dead-lettered) is rare and
        takes one transaction.

        ``defer_count``: a run that settles from queued is written alone, and its counts are left to its batch
        (``Uncounted``), which writes a request's and a tenant's once for all of its runs."""
        before: Outcome | None = None if create is not None else Outcome.QUEUED
        for _ in range(3):
            if not may_follow(before, run.outcome):
                return None
            recorded = replace(run, redrives=1 if before is Outcome.DEAD_LETTERED else 0)
            # A run the API queued but could not record (its intake write failed) was still reserved.
            reserved_as = before if before is not None or create is not None else Outcome.QUEUED
            delta = outstanding_change(reserved_as, run.outcome)
            try:
                if before in (Outcome.DEAD_LETTERED, Outcome.NOT_FOUND, Outcome.CANCELLED):
                    self.store.transition(
                        request_id, recorded, before, tenant_id=tenant_id, outstanding_delta=delta, create=create
                    )
                    return Transition(before, run.outcome)
                if defer_count and create is None and before is Outcome.QUEUED and run.outcome is not Outcome.QUEUED:
                    self.store.update_run(request_id, recorded, before)
                    return Uncounted(request_id, tenant_id, run.parser_run_id, run.outcome)
                counted = self.store.settle(
                    request_id, recorded, before, tenant_id=tenant_id, outstanding_delta=delta, create=create
                )
            except RunChanged:
                current = self.store.current_outcome(request_id, run.parser_run_id)
                if current is not None and current in FINAL_OUTCOMES:
                    # Settled by an earlier delivery, which may have stopped before counting it: count it now. The
                    # count is idempotent, so a delivery that had counted it changes nothing here.
                    counted = self.store.count(
                        request_id,
                        run.parser_run_id,
                        current,
                        before,
                        tenant_id=tenant_id,
                        outstanding_delta=outstanding_change(reserved_as, current),
                        create=create,
                    )
                    if not may_still_change(current, run.outcome):
                        return Transition(before, current, counted) if counted else None
                # The intake records a run after SQS took its message: a fast consumer can get here first, and
                # writing the run now would be overwritten by the intake's own write. Wait for it, unless the intake
                # has had all the time it could take (then it failed, and this is the run's only record).
                if current is None and create is None and self._intake_may_be_running(request_id):
                    raise NotYetRecorded(f"run {run.parser_run_id} of {request_id} is not recorded yet") from None
                before = current
                continue
            return Transition(before, run.outcome, counted)
        raise LedgerUnavailable("cannot record the outcome: the run kept changing under the update")

    def count_batch(self, uncounted: Sequence[Uncounted]) -> BatchCount:
        """Count a batch's settled runs: one write per request (``COUNT_GROUP`` runs at most), then one per tenant
        for its outstanding runs. A group that finds one of its runs counted already (an earlier delivery counted it
        before its message came back) is counted run by run instead: each count is idempotent."""
        by_request: dict[str, list[Uncounted]] = {}
        for run in uncounted:
            by_request.setdefault(run.request_id, []).append(run)
        counted: dict[str, RequestRecord | None] = {}
        failed: set[str] = set()
        released: dict[str, int] = {}
        for request_id, runs in by_request.items():
            tenant_id = runs[0].tenant_id  # a request's runs are its tenant's
            try:
                for start in range(0, len(runs), COUNT_GROUP):
                    counted[request_id], applied = self._count_group(request_id, runs[start : start + COUNT_GROUP])
                    if tenant_id is not None:
                        released[tenant_id] = released.get(tenant_id, 0) + applied
            except LedgerUnavailable:
                failed.add(request_id)
        for tenant_id, n in released.items():
            try:
                self.store.add_outstanding(tenant_id, -n)
            except LedgerUnavailable:
                # Counted, not released: the runs are recorded; `extend-deleter tenants recount` repairs the count.
                failed.update(run.request_id for run in uncounted if run.tenant_id == tenant_id)
        return BatchCount(counted, failed)

    def _count_group(self, request_id: str, runs: Sequence[Uncounted]) -> tuple[RequestRecord | None, int]:
        """The request as counted, and how many of the runs this call counted (those to release)."""
        found = self.store.count_runs(request_id, [(run.parser_run_id, run.outcome) for run in runs])
        if found is not None:
            return found, len(runs)
        last: RequestRecord | None = None
        applied = 0
        for run in runs:  # one of them was counted already: each alone, the counted one changing nothing
            counted = self.store.count(
                request_id, run.parser_run_id, run.outcome, Outcome.QUEUED, tenant_id=None, outstanding_delta=0
            )
            if counted is not None:
                last, applied = counted, applied + 1
        return last, applied

    def _intake_may_be_running(self, request_id: str) -> bool:
        found = self.store.request(request_id)
        return found is None or time.time() - parse_iso(found.created_at) < INTAKE_GRACE_S

    # ---- cancellation

    def cancel(self, request: RequestRecord) -> tuple[list[str], BatchCount]:
        """Cancel every item of ``request`` still queued, and return the ones this call cancelled with how their counts
        were written. Each becomes ``cancelled`` (a conditional write, so an item settled meanwhile keeps its
        outcome), and the request's and its tenant's counts follow in grouped writes. Idempotent: a second call
        finds nothing queued, and counts again only what an interrupted first call changed without counting (each
        count is idempotent). A request that had completed stays as it was."""
        if request.completed_at is not None and request.cancelled_at is None:
            return [], BatchCount({}, set())  # nothing was left to cancel: it completed as it was
        cancelled_at = now_iso()
        self.store.mark_cancelled(request.request_id, cancelled_at)
        return self._settle_queued(request, Outcome.CANCELLED, CANCELLED_REASON, cancelled_at)

    def expire(self, request: RequestRecord) -> tuple[list[str], BatchCount]:
        """Record the request's runs still queued past the queue's retention as failed (expired), in storage: the
        status resource shows them so when read, and this makes the ledger, the counts and the callbacks agree."""
        return self._settle_queued(request, Outcome.FAILED, EXPIRED_REASON, now_iso())

    def _settle_queued(
        self, request: RequestRecord, outcome: Outcome, reason: str, settled_at: str
    ) -> tuple[list[str], BatchCount]:
        uncounted: list[Uncounted] = []
        newly: list[str] = []
        for run in self.store.all_runs(request.request_id):
            if run.outcome is Outcome.QUEUED:
                settled = replace(run, outcome=outcome, completed_at=settled_at, reason=reason)
                try:
                    self.store.update_run(request.request_id, settled, Outcome.QUEUED)
                except RunChanged:
                    continue  # its message settled it first: that outcome stands
                newly.append(run.parser_run_id)
            elif run.outcome is not outcome or run.reason != reason or request.counts.get(Outcome.QUEUED, 0) == 0:
                continue  # settled otherwise, or by an earlier call that counted it (nothing is queued)
            uncounted.append(Uncounted(request.request_id, request.tenant_id, run.parser_run_id, outcome))
        return newly, self.count_batch(uncounted)

    def repair_outstanding(self, tenant_id: str, now: float | None = None) -> tuple[int, int] | None:
        """``recount``, safe to run beside live traffic: skipped while an intake may be between its reservation
        and its record (a request younger than the intake's grace), and written only if the count did not move
        while the requests were summed. (before, after) when it changed the count, else None."""
        moment = time.time() if now is None else now
        before = self.store.outstanding(tenant_id)
        requests = list(self.requests_of(tenant_id, since=iso(moment - QUEUE_RETENTION_S)))
        if any(moment - parse_iso(request.created_at) < INTAKE_GRACE_S for request in requests):
            return None
        queued = sum(request.counts.get(Outcome.QUEUED, 0) for request in requests)
        if queued == before or self.store.outstanding(tenant_id) != before:
            return None
        if not self.store.set_outstanding_if(tenant_id, queued, expected=before):
            return None
        return before, queued

    def add_item(self, request_id: str, tenant_id: str | None, item: RunRecord) -> bool:
        """Add a queued item to a request already taken in (a run's source file); False when it was added before."""
        return self.store.add_run(request_id, tenant_id, item)

    def item(self, request_id: str, item_id: str) -> RunRecord | None:
        return self.store.run(request_id, item_id)

    def outcome_of(self, request_id: str, item_id: str) -> Outcome | None:
        """The item's outcome as recorded now (a consistent read), None when it is not recorded."""
        return self.store.current_outcome(request_id, item_id)

    # ---- completion

    def complete_if_settled(self, request_id: str, *, with_callback: bool) -> RequestRecord | None:
        """Mark the request completed once none of its runs is queued; the request, if this call completed it
        (so exactly one caller tells the tenant). ``with_callback`` records a callback delivery as pending."""
        return self.store.complete(request_id, now_iso(), PENDING_CALLBACK if with_callback else None)

    def set_callback(self, request_id: str, state: Mapping[str, Any]) -> None:
        self.store.set_callback(request_id, {k: v for k, v in state.items() if v is not None})

    # ---- reading

    def request(self, request_id: str) -> RequestRecord | None:
        return self.store.request(request_id)

    def runs(self, request_id: str, *, limit: int, after: str | None = None) -> tuple[list[RunRecord], str | None]:
        """A page of the request's runs in id order, and the run id to continue after (None at the end)."""
        runs, more = self.store.runs(request_id, limit=limit, after=after)
        return runs, runs[-1].parser_run_id if more and runs else None

    def all_runs(self, request_id: str) -> Iterator[RunRecord]:
        return self.store.all_runs(request_id)

    def outstanding(self, tenant_id: str) -> int:
        return self.store.outstanding(tenant_id)

    def requests_of(self, tenant_id: str | None, *, since: str = "") -> Iterator[RequestRecord]:
        return self.store.requests_of(tenant_id, since=since)

    def recount(self, tenant_id: str, now: float | None = None) -> int:
        """Set the tenant's outstanding count from its requests' own counters: the repair for a reservation a
        crashed intake left behind. Run it while the tenant is quiet: a request taken in meanwhile is missed."""
        moment = time.time() if now is None else now
        since = iso(moment - QUEUE_RETENTION_S)
        queued = sum(request.counts.get(Outcome.QUEUED, 0) for request in self.requests_of(tenant_id, since=since))
        self.store.set_outstanding(tenant_id, queued)
        return queued

    def oldest_outstanding(self, tenant_id: str, now: float | None = None) -> RequestRecord | None:
        """The tenant's oldest request with runs still queued: only the queue's retention can hold any."""
        moment = time.time() if now is None else now
        for request in self.requests_of(tenant_id, since=iso(moment - QUEUE_RETENTION_S)):
            if request.counts.get(Outcome.QUEUED):
                return request
        return None
