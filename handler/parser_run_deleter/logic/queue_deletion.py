"""The queue path's use case: one message in, one fate carried out, one outcome recorded and reported.

Every message ends in exactly one place: consumed after ``deleted`` / ``not_found``; consumed after being copied
to the dead-letter queue with its reason (malformed, or failed on its last allowed receive); or returned for SQS
to deliver again. A message whose dead-lettering fails is returned too: it is never dropped.

A message is consumed only once its outcome is in the ledger: when the ledger cannot be written, it is returned,
and its next delivery records it. A message that came without a deletion request (an operator's) is recorded
under a request of its own, named after its SQS message id.

A message is resolved once, first: its request, the ledger request it is recorded under, and its tenant.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

from parser_run_deleter.logic.completion import settle
from parser_run_deleter.logic.deletion import Report, Trigger
from parser_run_deleter.logic.extend_results import MIN_ATTEMPT_S, DeleteResult, failed_before_extend
from parser_run_deleter.logic.ledger import Ledger, Uncounted
from parser_run_deleter.logic.ledger_records import (
    LedgerUnavailable,
    NotYetRecorded,
    RequestRecord,
    RequestTrigger,
    RunRecord,
    Transition,
    request_id_for_message,
    run_record,
)
from parser_run_deleter.logic.message_fate import Decision, FailureKind, Fate, decide_fate
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ownership import (
    check_owned,
    check_settled,
    delete_checked,
    delete_owned,
    resource_name,
)
from parser_run_deleter.logic.ports import DeadLetterQueue, ExtendItems, MessageQueue, QueueSendError, SourceQueue
from parser_run_deleter.logic.queue_messages import DeletionRequest, InvalidDeletionRequest, parse_deletion_message
from parser_run_deleter.logic.tenants import RegistryUnavailable, Tenant, TenantDirectory
from parser_run_deleter.shared.extend_resources import Resource
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, is_request_id, validate_parser_run_id
from parser_run_deleter.shared.settings import QueueSettings
from parser_run_deleter.shared.time_budget import Deadline
from parser_run_deleter.shared.timestamps import now_iso

OUT_OF_TIME_REASON = "out of time before the first attempt"
# The ``ownership`` an operator's message is logged with: organization-wide, on the operator's authority.
OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class QueueServices:
    """What the queue path works with: the queue function's composition root builds them once per container."""

    settings: QueueSettings
    extend: ExtendItems
    ledger: Ledger
    tenants: TenantDirectory
    dead_letters: DeadLetterQueue
    callbacks: MessageQueue
    source: SourceQueue
    deletions: MessageQueue  # the same queue, as a producer: a run's source file, when its deletion includes it


@dataclass(frozen=True, slots=True)
class QueueMessage:
    message_id: str
    body: str
    receive_count: int = 1
    deletion_request_id: str | None = None  # from the message's attribute, when its body names none
    source_message_id: str | None = None  # a dead-lettered copy's: the message it was made from


class TenantRefused(Exception):
    """The message names a tenant the registry does not know, or has disabled. The message says which."""


@dataclass(frozen=True, slots=True)
class ResolvedMessage:
    """A message as it is worked on: what it asks, the ledger request it is recorded under (``create``: recorded on
    first sight, for an operator's message), and whose policy applies (None: an operator's)."""

    request: DeletionRequest
    request_id: str
    create: RequestRecord | None
    tenant: Tenant | None

    def of_tenant(self, tenant: Tenant | None) -> ResolvedMessage:
        return ResolvedMessage(self.request, self.request_id, self.create, tenant)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What happened to a message: the deletion's result, or why none was attempted."""

    result: DeleteResult | None
    reason: str | None = None
    refused: FailureKind | None = None
    started: bool = True
    # The message names an item its request does not hold (a forged source file): nothing of it is recorded there.
    unrecorded: bool = False


class BatchCounts:
    """The counts a batch's settled runs leave for the end of the batch (``flush``): one write per request and one
    per tenant, not three per run. A message whose counts are deferred here is done only once they are written."""

    def __init__(self, services: QueueServices) -> None:
        self._services = services
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Uncounted, Tenant | None]] = []
        self._flushing = False

    def defer(self, message_id: str, uncounted: Uncounted, tenant: Tenant | None, deadline: Deadline) -> bool:
        """Leave the run's counts to the batch. A record that finishes after the batch was flushed (it was answered
        as returned already) counts its run itself, as a batch of one."""
        with self._lock:
            if not self._flushing:
                self._pending.append((message_id, uncounted, tenant))
                return True
        return not self._count([(message_id, uncounted, tenant)], deadline)

    def abandon(self) -> set[str]:
        """The batch is answered without waiting for ``flush``: the messages whose counts are still pending (they
        return, and a flush that runs after all the same only saves their redelivery the count). A record that
        finishes from now on counts its run itself."""
        with self._lock:
            self._flushing = True
            return {message_id for message_id, _, _ in self._pending}

    def flush(self, deadline: Deadline) -> set[str]:
        """Write the counts; the message ids whose counts could not be written (they return to SQS)."""
        with self._lock:
            self._flushing = True
            pending = list(self._pending)
        return self._count(pending, deadline)

    def _count(self, pending: list[tuple[str, Uncounted, Tenant | None]], deadline: Deadline) -> set[str]:
        if not pending:
            return set()
        ledger = self._services.ledger
        counted = ledger.count_batch([uncounted for _, uncounted, _ in pending])
        if counted.failed:
            count(MetricName.LEDGER_WRITE_FAILED)
            logger.error("cannot count the batch's outcomes", extra={"requests": sorted(counted.failed)})
        tenants = {uncounted.request_id: tenant for _, uncounted, tenant in pending}
        for request_id, request in counted.counted.items():
            if request_id not in counted.failed:
                settle(ledger, request_id, tenants[request_id], self._services.callbacks, deadline, counted=request)
        return {message_id for message_id, uncounted, _ in pending if uncounted.request_id in counted.failed}


def process_message(
    message: QueueMessage, services: QueueServices, deadline: Deadline, batch: BatchCounts | None = None
) -> bool:
    """Carry out one message's deletion and fate. True when it is done with (with ``batch``: once the batch's counts
    are written); False to have SQS deliver it again."""
    started = time.perf_counter()
    identified: ResolvedMessage | None = None  # its request, before its tenant is read
    resolved: ResolvedMessage | None = None  # and its tenant
    request: DeletionRequest | None = None
    try:
        request = parse_deletion_message(message.body)
        check_redriven_request(request, message)
        identified = identify(request, message)
        if deadline.remaining() < MIN_ATTEMPT_S:
            # No time left to finish it: leave it for the next delivery, without so much as reading its tenant.
            raise _OutOfTime(request.parser_run_id)
        resolved = identified.of_tenant(_tenant_of(request, services.tenants))
    except _OutOfTime as out_of_time:
        attempt = _Attempt(failed_before_extend(out_of_time.parser_run_id), OUT_OF_TIME_REASON, started=False)
    except InvalidDeletionRequest as error:
        request, attempt = None, _Attempt(None, str(error))
    except TenantRefused as error:
        count(MetricName.TENANT_REFUSED)
        attempt = _Attempt(None, str(error), refused=FailureKind.TENANT_REFUSED)
    except RegistryUnavailable as error:
        attempt = _Attempt(failed_before_extend(request.parser_run_id if request else ""), str(error))
    else:
        cancelled = _cancelled(resolved, services, started)
        if cancelled is not None:
            return cancelled
        attempt = _attempt(resolved, services, deadline)
    result = attempt.result
    decision = decide_fate(
        result,
        receive_count=message.receive_count,
        max_receive_count=services.settings.max_receive_count,
        started=attempt.started,
        refused=attempt.refused,
    )
    request_id = identified.request_id if identified is not None else None
    dead_letter_message_id = None
    if decision.failure_kind is not None:  # set exactly when the fate is DEAD_LETTER
        dead_letter_message_id = _dead_letter(message, services.dead_letters, decision, attempt, request_id)

    outcome = Outcome.INVALID if result is None else result.outcome
    recorded = True
    if (
        identified is not None
        and not attempt.unrecorded
        and (decision.fate is not Fate.DEAD_LETTER or dead_letter_message_id is not None)
    ):
        ledger_outcome = _ledger_outcome(decision.fate, outcome)
        version = services.settings.extend.extend_api_version
        run = run_record(
            identified.request.parser_run_id,
            ledger_outcome,
            result,
            attempt.reason,
            resource=resource_name(identified.request, version),
        )
        recorded = _record(
            resolved or identified,
            services,
            run,
            deadline,
            (batch, message.message_id) if batch is not None else None,
        )
    extra: dict[str, object] = {
        "resource": resource_name(request, services.settings.extend.extend_api_version) if request else None,
        "tenant_id": request.tenant_id if request else None,
        "deletion_request_id": request_id,
        "ownership": _ownership(resolved),
    }
    if decision.fate is not Fate.CONSUME:
        extra |= {"receive_count": message.receive_count, "dead_letter_message_id": dead_letter_message_id}
    if not recorded:
        extra["ledger"] = "not recorded: the message returns to the queue"
    Report(Trigger.SQS, request.parser_run_id if request else None, started, request.audit if request else None).report(
        outcome, result=result, reason=attempt.reason, **extra
    )
    done = decision.fate is Fate.CONSUME or dead_letter_message_id is not None
    return done and recorded


def identify(request: DeletionRequest, message: QueueMessage) -> ResolvedMessage:
    """The message's ledger request, worked out once; its tenant is read after (``_tenant_of``)."""
    return ResolvedMessage(request, _request_id(request, message), _operator_request(request, message), None)


def check_redriven_request(request: DeletionRequest, message: QueueMessage) -> None:
    """A redriven copy's ``DeletionRequestId`` attribute must be the request its message belongs to: the one its
    body names, or, for an operator's message, the one named after the message it was copied from. Anything else
    would record the run under another request (another tenant's, say): ``InvalidDeletionRequest``."""
    attribute = message.deletion_request_id
    if attribute is None:
        return
    if request.deletion_request_id is not None:
        expected = request.deletion_request_id
    elif message.source_message_id:
        expected = request_id_for_message(message.source_message_id)
    else:
        expected = None
    if attribute != expected:
        raise InvalidDeletionRequest("the DeletionRequestId attribute does not name the request of this message")


def _request_id(request: DeletionRequest, message: QueueMessage) -> str:
    """The ledger request the message is recorded under: the one its body names, else its attribute's (a
    dead-lettered copy, redriven), else one named after its message id (an operator's message)."""
    if request.deletion_request_id is not None:
        return request.deletion_request_id
    if message.deletion_request_id is not None and is_request_id(message.deletion_request_id):
        return message.deletion_request_id
    return request_id_for_message(message.message_id)


def _operator_request(request: DeletionRequest, message: QueueMessage) -> RequestRecord | None:
    """The request an operator's message is recorded under, on its first sight; None when one exists already."""
    if request.deletion_request_id is not None or is_request_id(message.deletion_request_id):
        return None
    return RequestRecord(
        request_id_for_message(message.message_id),
        request.tenant_id,
        RequestTrigger.QUEUE,
        now_iso(),
        audit=dict(request.audit),
    )


def _tenant_of(request: DeletionRequest, tenants: TenantDirectory) -> Tenant | None:
    """The tenant whose policy applies to the message, None for an operator's; raises ``TenantRefused`` or
    ``RegistryUnavailable``."""
    if request.tenant_id is None:
        return None
    tenant = tenants.by_tenant_id(request.tenant_id)
    if tenant is None:
        raise TenantRefused(f"tenant {request.tenant_id!r} is not registered")
    if not tenant.active:
        raise TenantRefused(f"tenant {request.tenant_id!r} is disabled")
    return tenant


def _ownership(resolved: ResolvedMessage | None) -> str | None:
    if resolved is None:
        return None
    return resolved.tenant.ownership.value if resolved.tenant is not None else OPERATOR


class _OutOfTime(Exception):
    def __init__(self, parser_run_id: str) -> None:
        super().__init__(parser_run_id)
        self.parser_run_id = parser_run_id


def _attempt(resolved: ResolvedMessage, services: QueueServices, deadline: Deadline) -> _Attempt:
    request = resolved.request
    if request.source_of is not None:
        return _attempt_source_file(resolved, services, deadline)
    version = services.settings.extend.extend_api_version
    if request.include_file:  # parse_deletion_message allows it only with a deletion request
        return _attempt_with_source_file(resolved, services, deadline)
    act = check_owned if request.dry_run else delete_owned
    return _of(act(services.extend, version, resolved.tenant, request, deadline))


def _of(result: DeleteResult) -> _Attempt:
    failed = result.outcome is Outcome.FAILED
    return _Attempt(result, (result.reason or "deletion failed") if failed else None)


def _attempt_with_source_file(resolved: ResolvedMessage, services: QueueServices, deadline: Deadline) -> _Attempt:
    """A run whose deletion includes its source file: the run is read first (its ``GET``, with the tenant's
    ownership policy), since only the run names its file and a deleted run names nothing; the file is added to the
    request and queued as an item of its own; then the run is deleted. Its file's message waits for that."""
    request, version = resolved.request, services.settings.extend.extend_api_version
    checked = check_owned(services.extend, version, resolved.tenant, request, deadline)
    if checked.outcome is not Outcome.WOULD_DELETE:
        return _of(checked)  # not found (or not the tenant's), or the read failed
    if checked.source_file_id is not None and not _include_source_file(resolved, checked.source_file_id, services):
        reason = "its source file could not be added to the request; the run is left for the next delivery"
        return _Attempt(failed_before_extend(request.parser_run_id, reason), reason)
    if request.dry_run:
        return _of(checked)
    return _of(delete_checked(services.extend, version, resolved.tenant, request, deadline))


def _include_source_file(resolved: ResolvedMessage, file_id: str, services: QueueServices) -> bool:
    """Record the file as a queued item of the run's request, then queue its message; False when either failed (the
    run's message returns, and its next delivery adds the file again: both steps are idempotent)."""
    request = resolved.request
    try:
        validate_parser_run_id(file_id)
    except InvalidParserRunId:
        logger.warning("the run names a source file whose id is not valid; it is not included")
        return True
    item = RunRecord(file_id, Outcome.QUEUED, resource=Resource.FILES.value, source_of=request.parser_run_id)
    try:
        services.ledger.add_item(resolved.request_id, request.tenant_id, item)
    except LedgerUnavailable as error:
        logger.error("cannot add the run's source file to its request", extra={"reason": str(error)})
        return False
    body = DeletionRequest(
        parser_run_id=file_id,
        audit=request.audit,
        tenant_id=request.tenant_id,
        deletion_request_id=resolved.request_id,
        resource=Resource.FILES,
        dry_run=request.dry_run,
        source_of=request.parser_run_id,
    ).to_message_body()
    group = request.tenant_id or OPERATOR
    queued = services.deletions.enqueue(
        {file_id: body}, deadline=Deadline.after(services.deletions.worst_case_call_s + 1), message_group_id=group
    )
    return bool(queued)


# What a source file's item becomes when its run was not deleted: the file is kept, as the run is.
_KEPT_WITH_RUN: Final = {Outcome.CANCELLED: Outcome.CANCELLED}


def _attempt_source_file(resolved: ResolvedMessage, services: QueueServices, deadline: Deadline) -> _Attempt:
    """A run's source file, included with the run's deletion: its ownership is the run's. It is deleted only once
    the run is (or, for a dry run, would be), and only as the file this service recorded for that run in that
    request: a message naming any other file is refused."""
    request, ledger = resolved.request, services.ledger
    file_id, run_id = request.parser_run_id, request.source_of or ""
    try:
        item, run = ledger.item(resolved.request_id, file_id), ledger.item(resolved.request_id, run_id)
    except LedgerUnavailable as error:
        return _Attempt(failed_before_extend(file_id, str(error)), str(error), started=False)
    if item is None or item.source_of != run_id or run is None:
        reason = "the file is not recorded as the source file of that run in its deletion request"
        return _Attempt(None, reason, refused=FailureKind.PERMANENT, unrecorded=True)
    if run.outcome is Outcome.QUEUED:
        reason = f"waits for its run {run_id} to be deleted first"
        return _Attempt(failed_before_extend(file_id, reason), reason, started=False)
    if run.outcome not in (Outcome.DELETED, Outcome.NOT_FOUND, Outcome.WOULD_DELETE):
        reason = f"kept: its run {run_id} was not deleted ({run.outcome.value})"
        kept = _KEPT_WITH_RUN.get(run.outcome, Outcome.REJECTED)
        return _Attempt(DeleteResult(file_id, kept, attempts=0, reason=reason), reason)
    version = services.settings.extend.extend_api_version
    act = check_settled if request.dry_run else delete_checked
    return _of(act(services.extend, version, resolved.tenant, request, deadline))


def _cancelled(resolved: ResolvedMessage, services: QueueServices, started: float) -> bool | None:
    """Checked before every DELETE, so that nothing cancelled is sent to Extend: None when the item is still to be
    attempted; True when its request was cancelled first (the message is done with, reported, nothing sent); False
    when its state cannot be read (the message returns). An operator's message (no request yet) cannot have been
    cancelled."""
    if resolved.create is not None:
        return None
    request = resolved.request
    try:
        outcome = services.ledger.outcome_of(resolved.request_id, request.parser_run_id)
    except LedgerUnavailable as error:
        count(MetricName.LEDGER_WRITE_FAILED)
        logger.error("cannot read the item's state before its deletion", extra={"reason": str(error)})
        return False
    if outcome is not Outcome.CANCELLED:
        return None
    Report(Trigger.SQS, request.parser_run_id, started, request.audit).report(
        Outcome.CANCELLED,
        reason="its request was cancelled before it was attempted: nothing sent to Extend",
        tenant_id=request.tenant_id,
        deletion_request_id=resolved.request_id,
        resource=resource_name(request, services.settings.extend.extend_api_version),
    )
    return True


def _ledger_outcome(fate: Fate, outcome: Outcome) -> Outcome:
    if fate is Fate.DEAD_LETTER:
        return Outcome.DEAD_LETTERED
    if fate is Fate.RETRY:
        return Outcome.QUEUED  # an attempt failed; the run stays queued, and SQS delivers it again
    return outcome


def _record(
    resolved: ResolvedMessage,
    services: QueueServices,
    run: RunRecord,
    deadline: Deadline,
    batch: tuple[BatchCounts, str] | None = None,
) -> bool:
    """Record the run's outcome; False when the ledger could not take it (a failed attempt's record is a nicety:
    the message returns anyway, so only a settled outcome must be written). With ``batch``, a run that settles from
    queued leaves its counts to the batch."""
    if run.outcome is Outcome.QUEUED and deadline.remaining() <= 0:
        # The safety margin is for answering and for settled outcomes: a batch cut short must not overrun
        # Lambda's deadline writing notes about attempts that will be made again.
        return True
    records = services.ledger
    try:
        transition = _record_once_the_intake_has(records, resolved, run, deadline, defer_count=batch is not None)
    except NotYetRecorded as error:
        # Rare: the intake took longer than its messages' delay and all the time this invocation had to wait for
        # it. The message returns, and is recorded next time (its deletion, done now, then reads as not found).
        logger.info("outcome waits for its intake", extra={"reason": str(error)})
        return run.outcome is Outcome.QUEUED
    except LedgerUnavailable as error:
        count(MetricName.LEDGER_WRITE_FAILED)
        logger.error("cannot record the outcome in the ledger", extra={"reason": str(error)})
        return run.outcome is Outcome.QUEUED
    if isinstance(transition, Uncounted) and batch is not None:  # only a batch defers its counts
        counts, message_id = batch
        return counts.defer(message_id, transition, resolved.tenant, deadline)
    if isinstance(transition, Transition) and transition.after is not Outcome.QUEUED:
        settle(records, resolved.request_id, resolved.tenant, services.callbacks, deadline, counted=transition.request)
    return True


def _record_once_the_intake_has(
    records: Ledger, resolved: ResolvedMessage, run: RunRecord, deadline: Deadline, *, defer_count: bool
) -> Transition | Uncounted | None:
    """``record_outcome``, waiting while the intake is still recording the run (``NotYetRecorded``) for as long as
    the invocation's deadline allows: a deletion done now and recorded now is ``deleted``, where its redelivery
    would only find it gone. A failed attempt does not wait: its message returns anyway."""
    waits = iter(_INTAKE_WAITS_S)
    while True:
        try:
            return records.record_outcome(
                resolved.request_id,
                run,
                tenant_id=resolved.request.tenant_id,
                create=resolved.create,
                defer_count=defer_count,
            )
        except NotYetRecorded:
            wait_s = next(waits, None)
            if run.outcome is Outcome.QUEUED or wait_s is None or deadline.remaining() < wait_s:
                raise
            time.sleep(wait_s)


# How long to wait, again and again, for an intake still recording a run its message already reached (the intake
# takes a second or two for a thousand ids; the API function gives up after 20 s).
_INTAKE_WAITS_S: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0)


def _dead_letter(
    message: QueueMessage,
    dead_letters: DeadLetterQueue,
    decision: Decision,
    attempt: _Attempt,
    deletion_request_id: str | None,
) -> str | None:
    """Copy the message to the DLQ with its reason; the DLQ message id, or None to leave it to SQS redrive."""
    result = attempt.result
    attributes: dict[str, str | int | None] = {
        "FailureKind": decision.failure_kind.value if decision.failure_kind else None,
        "FailureReason": attempt.reason or "",
        # The message the request is named after: a redriven copy keeps the original's, so it can be checked again.
        "SourceMessageId": (message.deletion_request_id and message.source_message_id) or message.message_id,
        "ApproximateReceiveCount": message.receive_count,
        # The body is kept as the producer sent it; a redriven copy finds its ledger request here.
        "DeletionRequestId": deletion_request_id,
    }
    if result is not None:
        attributes["ParserRunId"] = result.parser_run_id
        attributes["ExtendStatusCode"] = result.status_code
        attributes["ExtendRequestId"] = result.extend_request_id
    try:
        dead_letter_message_id = dead_letters.dead_letter(message.body, attributes)
    except QueueSendError as error:
        logger.error("dead-lettering failed; leaving the message for SQS redrive", extra={"reason": str(error)})
        return None
    count(MetricName.DEAD_LETTERED)
    return dead_letter_message_id
