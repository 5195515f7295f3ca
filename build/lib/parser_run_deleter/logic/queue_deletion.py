"""The queue path's use case: one message in, one fate carried out, one outcome recorded and reported.

Every message ends in exactly one place: consumed after ``deleted`` / ``not_found``; consumed after being copied
to the dead-letter queue with its reason (malformed, or failed on its last allowed receive); or returned for SQS
to deliver again. A message whose dead-lettering fails is returned too: it is never dropped.

A message is consumed only once its outcome is in the ledger: when the ledger cannot be written, it is returned,
and its next delivery records it. A message that came without a deletion request (an operator's) is recorded
under a request of its own, named after its SQS message id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Final

from parser_run_deleter.adapters.deletion_queue import QueueSendError, send_to_dead_letter_queue
from parser_run_deleter.adapters.extend_client import MIN_ATTEMPT_S, DeleteOutcome, DeleteResult
from parser_run_deleter.adapters.wiring import Dependencies
from parser_run_deleter.logic.completion import settle
from parser_run_deleter.logic.deletion import Outcome, Trigger, report_outcome
from parser_run_deleter.logic.ledger import (
    Ledger,
    LedgerUnavailable,
    NotYetRecorded,
    RequestRecord,
    RequestTrigger,
    RunOutcome,
    RunRecord,
    Transition,
    ledger,
    request_id_for_message,
    run_record,
)
from parser_run_deleter.logic.message_fate import FailureKind, Fate, decide_fate
from parser_run_deleter.logic.ownership import delete_owned
from parser_run_deleter.logic.queue_messages import DeletionRequest, InvalidDeletionRequest, parse_deletion_message
from parser_run_deleter.logic.tenants import RegistryUnavailable, Tenant, tenant_directory
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.parser_run_ids import is_request_id
from parser_run_deleter.shared.settings import Settings
from parser_run_deleter.shared.time_budget import Deadline
from parser_run_deleter.shared.timestamps import now_iso

OUT_OF_TIME_REASON = "out of time before the first attempt"
# The ``ownership`` an operator's message is logged with: organization-wide, on the operator's authority.
OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    message_id: str
    body: str
    receive_count: int = 1
    deletion_request_id: str | None = None  # from the message's attribute, when its body names none
    source_message_id: str | None = None  # a dead-lettered copy's: the message it was made from


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What happened to a parsed message: the deletion's result, or why none was attempted."""

    result: DeleteResult | None
    reason: str | None = None
    refused: FailureKind | None = None
    started: bool = True
    ownership: str | None = None  # the tenant's policy, "operator" for an operator's message


def process_message(message: QueueMessage, deps: Dependencies, deadline: Deadline) -> bool:
    """Carry out one message's deletion and fate. True when it is done with; False to have SQS deliver it again."""
    started = time.perf_counter()
    request: DeletionRequest | None = None
    try:
        request = parse_deletion_message(message.body)
        check_redriven_request(request, message)
    except InvalidDeletionRequest as error:
        request = None
        attempt = _Attempt(None, str(error))
    else:
        attempt = _attempt(request, deps, deadline)
    result, reason = attempt.result, attempt.reason

    decision = decide_fate(
        result,
        receive_count=message.receive_count,
        max_receive_count=deps.settings.max_receive_count,
        started=attempt.started,
        refused=attempt.refused,
    )
    dead_letter_message_id = None
    if decision.failure_kind is not None:  # set exactly when the fate is DEAD_LETTER
        request_id = _with_request_id(request, message).deletion_request_id if request is not None else None
        dead_letter_message_id = _dead_letter(
            message,
            deps,
            decision.failure_kind,
            reason=reason or "",
            result=result,
            deletion_request_id=request_id,
        )

    outcome = Outcome.INVALID if result is None else Outcome(result.outcome.value)
    recorded = True
    if request is not None and (decision.fate is not Fate.DEAD_LETTER or dead_letter_message_id is not None):
        fate = _ledger_outcome(decision.fate, outcome)
        recorded = _record(request, message, deps, fate, result=result, reason=reason, deadline=deadline)
    extra: dict[str, object] = {"tenant_id": request.tenant_id} if request and request.tenant_id else {}
    if request is not None:
        extra["deletion_request_id"] = _with_request_id(request, message).deletion_request_id
    if attempt.ownership is not None:
        extra["ownership"] = attempt.ownership
    if decision.fate is not Fate.CONSUME:
        extra |= {"receive_count": message.receive_count, "dead_letter_message_id": dead_letter_message_id}
    if not recorded:
        extra["ledger"] = "not recorded: the message returns to the queue"
    report_outcome(
        outcome,
        trigger=Trigger.SQS,
        parser_run_id=request.parser_run_id if request else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        result=result,
        reason=reason,
        audit=request.audit if request else None,
        **extra,
    )
    done = decision.fate is Fate.CONSUME or dead_letter_message_id is not None
    return done and recorded


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


def _ledger_outcome(fate: Fate, outcome: Outcome) -> RunOutcome:
    if fate is Fate.DEAD_LETTER:
        return RunOutcome.DEAD_LETTERED
    if fate is Fate.RETRY:
        return RunOutcome.QUEUED  # an attempt failed; the run stays queued, and SQS delivers it again
    return RunOutcome(outcome.value)


def _with_request_id(request: DeletionRequest, message: QueueMessage) -> DeletionRequest:
    """The request, with the ledger request it is recorded under: the one its body names, else its attribute's
    (a dead-lettered copy, redriven), else one named after its message id (an operator's message)."""
    if request.deletion_request_id is not None:
        return request
    if is_request_id(message.deletion_request_id):
        return replace(request, deletion_request_id=message.deletion_request_id)
    return replace(request, deletion_request_id=request_id_for_message(message.message_id))


def _record(
    request: DeletionRequest,
    message: QueueMessage,
    deps: Dependencies,
    outcome: RunOutcome,
    *,
    result: DeleteResult | None,
    reason: str | None,
    deadline: Deadline | None = None,
) -> bool:
    """Record the run's outcome; False when the ledger could not take it (a failed attempt's record is a nicety:
    the message returns anyway, so only a settled outcome must be written)."""
    settings = deps.settings
    if settings.ledger_table_name is None:
        return True  # no ledger configured (a stack without one): the log line is the record
    if outcome is RunOutcome.QUEUED and deadline is not None and deadline.remaining() <= 0:
        # The safety margin is for answering and for settled outcomes: a batch cut short must not overrun
        # Lambda's deadline writing notes about attempts that will be made again.
        return True
    create = None
    if request.deletion_request_id is None and not is_request_id(message.deletion_request_id):
        create = RequestRecord(
            request_id_for_message(message.message_id),
            request.tenant_id,
            RequestTrigger.QUEUE,
            now_iso(),
            audit=dict(request.audit),
        )
    run = run_record(request.parser_run_id, outcome, result, reason)
    records = ledger(settings.ledger_table_name, settings.ledger_retention_days)
    request_id = _with_request_id(request, message).deletion_request_id or ""
    try:
        transition = _record_once_the_intake_has(
            records, request_id, run, tenant_id=request.tenant_id, create=create, deadline=deadline
        )
    except NotYetRecorded as error:
        # Rare: the intake took longer than its messages' delay and all the time this invocation had to wait for
        # it. The message returns, and is recorded next time (its deletion, done now, then reads as not found).
        logger.info("outcome waits for its intake", extra={"reason": str(error)})
        return outcome is RunOutcome.QUEUED
    except LedgerUnavailable as error:
        count(MetricName.LEDGER_WRITE_FAILED)
        logger.error("cannot record the outcome in the ledger", extra={"reason": str(error)})
        return outcome is RunOutcome.QUEUED
    if transition is not None and transition.after is not RunOutcome.QUEUED:
        tenant = _tenant_for_callback(request, settings)
        settle(records, request_id, tenant, settings, deadline, counted=transition.request)
    return True


def _record_once_the_intake_has(
    records: Ledger,
    request_id: str,
    run: RunRecord,
    *,
    tenant_id: str | None,
    create: RequestRecord | None,
    deadline: Deadline | None,
) -> Transition | None:
    """``record_outcome``, waiting while the intake is still recording the run (``NotYetRecorded``) for as long as
    the invocation's deadline allows: a deletion done now and recorded now is ``deleted``, where its redelivery
    would only find it gone. A failed attempt does not wait: its message returns anyway."""
    waits = iter(_INTAKE_WAITS_S)
    while True:
        try:
            return records.record_outcome(request_id, run, tenant_id=tenant_id, create=create)
        except NotYetRecorded:
            wait_s = next(waits, None)
            if run.outcome is RunOutcome.QUEUED or wait_s is None or deadline is None or deadline.remaining() < wait_s:
                raise
            time.sleep(wait_s)


# How long to wait, again and again, for an intake still recording a run its message already reached (the intake
# takes a second or two for a thousand ids; the API function gives up after 20 s).
_INTAKE_WAITS_S: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0)


def _tenant_for_callback(request: DeletionRequest, settings: Settings) -> Tenant | None:
    """The tenant to tell of its request's completion: only worth a (cached) registry read with a callback queue."""
    if request.tenant_id is None or settings.callback_queue_url is None or settings.tenants_table_name is None:
        return None
    try:
        return tenant_directory(settings.tenants_table_name, settings.tenant_cache_s).by_tenant_id(request.tenant_id)
    except RegistryUnavailable:
        return None


def _attempt(request: DeletionRequest, deps: Dependencies, deadline: Deadline) -> _Attempt:
    parser_run_id = request.parser_run_id
    try:
        tenant = _tenant_of(request, deps)
    except TenantRefused as error:
        count(MetricName.TENANT_REFUSED)
        return _Attempt(None, str(error), refused=FailureKind.TENANT_REFUSED)
    except RegistryUnavailable as error:
        return _Attempt(DeleteResult(parser_run_id, DeleteOutcome.FAILED, 0, retryable=True), str(error))
    ownership = tenant.ownership.value if tenant is not None else OPERATOR
    if deadline.remaining() < MIN_ATTEMPT_S:
        # No time left to finish it: leave it for the next delivery.
        not_started = DeleteResult(parser_run_id, DeleteOutcome.FAILED, 0, retryable=True)
        return _Attempt(not_started, OUT_OF_TIME_REASON, started=False, ownership=ownership)
    result = delete_owned(deps.extend_client, deps.settings, tenant, request, deadline)
    failed = result.outcome is DeleteOutcome.FAILED
    return _Attempt(result, (result.reason or "deletion failed") if failed else None, ownership=ownership)


class TenantRefused(Exception):
    """The message names a tenant the registry does not know, or has disabled. The message says which."""


def _tenant_of(request: DeletionRequest, deps: Dependencies) -> Tenant | None:
    """The tenant whose policy applies to the message, None for an operator's; raises ``TenantRefused`` or
    ``RegistryUnavailable``."""
    if request.tenant_id is None:
        return None
    settings = deps.settings
    if settings.tenants_table_name is None:
        raise TenantRefused(f"the message names tenant {request.tenant_id!r}, but no registry is configured")
    tenant = tenant_directory(settings.tenants_table_name, settings.tenant_cache_s).by_tenant_id(request.tenant_id)
    if tenant is None:
        raise TenantRefused(f"tenant {request.tenant_id!r} is not registered")
    if not tenant.active:
        raise TenantRefused(f"tenant {request.tenant_id!r} is disabled")
    return tenant


def _dead_letter(
    message: QueueMessage,
    deps: Dependencies,
    kind: FailureKind,
    *,
    reason: str,
    result: DeleteResult | None,
    deletion_request_id: str | None,
) -> str | None:
    """Copy the message to the DLQ with its reason; the DLQ message id, or None to leave it to SQS redrive."""
    queue_url = deps.settings.dead_letter_queue_url
    if queue_url is None:
        return None
    attributes: dict[str, str | int | None] = {
        "FailureKind": kind.value,
        "FailureReason": reason,
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
        dead_letter_message_id = send_to_dead_letter_queue(queue_url, message.body, attributes)
    except QueueSendError as error:
        logger.error("dead-lettering failed; leaving the message for SQS redrive", extra={"reason": str(error)})
        return None
    count(MetricName.DEAD_LETTERED)
    return dead_letter_message_id
