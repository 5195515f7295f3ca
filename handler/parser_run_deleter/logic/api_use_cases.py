"""The API's use cases: a synchronous delete with a durable fallback, bulk intake onto the deletion queue, and
reading a deletion request back. Each accepted call is a deletion request in the ledger.

Nothing is acknowledged that is not recorded: a request is recorded before anything of it is queued, its runs once
SQS holds them, and a synchronous outcome before it is answered. When the ledger or the queue fails, the caller
is told to retry (``LedgerUnavailable`` / ``QueueUnavailable``: 503).

Nothing here knows about HTTP or API Gateway events: ``intake.api_routes`` turns requests into these calls, and
``intake.api_errors`` turns the exceptions below into responses. Every id ends in exactly one outcome line and
metric.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from parser_run_deleter.logic.authentication import Authenticator
from parser_run_deleter.logic.completion import queue_callback, settle, wants_callback
from parser_run_deleter.logic.deletion import Report, Trigger
from parser_run_deleter.logic.extend_results import DeleteResult
from parser_run_deleter.logic.ledger import CANCELLED_REASON, Ledger
from parser_run_deleter.logic.ledger_records import (
    LedgerUnavailable,
    RequestRecord,
    RequestTrigger,
    RunRecord,
    run_record,
    shown_run,
)
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ownership import delete_owned, refusal
from parser_run_deleter.logic.ports import ExtendItems, MessageQueue
from parser_run_deleter.logic.queue_messages import MAX_AUDIT_VALUE_LENGTH, DeletionRequest
from parser_run_deleter.logic.replay_guard import ReplayGuard
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.shared.extend_resources import (
    Resource,
    has_source_file,
    known_prefixes,
    parse_run_resource,
    resource_for_id,
)
from parser_run_deleter.shared.observability import MetricName, count
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, is_request_id, validate_parser_run_id
from parser_run_deleter.shared.settings import ApiSettings
from parser_run_deleter.shared.time_budget import Deadline

MAX_BULK_IDS: Final = 1000
# What an invalid value may cost in a response or a log line: enough to recognise it, never an echo of megabytes.
MAX_ECHO_LENGTH: Final = 64
NOT_QUEUED_REASON: Final = "could not be queued: the deletion queue did not accept it; retry later"


class ItemRefused(ValueError):
    """The tenant's ownership policy can never prove an item of this type its own; the message says why (422)."""


class QueueUnavailable(RuntimeError):
    """Nothing could be put on the deletion queue (not configured, or SQS refused). The caller should retry."""


@dataclass(frozen=True, slots=True)
class RequestAudit:
    """Who asked, as API Gateway saw it: carried into log lines and queue messages."""

    request_id: str | None = None
    caller_api_key_id: str | None = None
    webhook_id: str | None = None
    source_ip: str | None = None

    def fields(self) -> dict[str, str]:
        """The audit fields under the names queue messages use (``queue_messages.AUDIT_FIELDS``), bounded in length."""
        named = {
            "requestId": self.request_id,
            "callerApiKeyId": self.caller_api_key_id,
            "webhookId": self.webhook_id,
            "sourceIp": self.source_ip,
        }
        return {name: value[:MAX_AUDIT_VALUE_LENGTH] for name, value in named.items() if value}


@dataclass(frozen=True, slots=True)
class Rejection:
    parser_run_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class BulkResult:
    request: RequestRecord
    queued: tuple[str, ...]
    rejected: tuple[Rejection, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class SingleResult:
    """What became of a synchronous DELETE: its outcome, the request that records it, and why when it failed."""

    outcome: Outcome
    request: RequestRecord
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ApiServices:
    """What the API's use cases work with: the API function's composition root builds them once per container."""

    settings: ApiSettings
    extend: ExtendItems
    ledger: Ledger
    authenticator: Authenticator
    replay_guard: ReplayGuard
    deletions: MessageQueue
    callbacks: MessageQueue


def echo(value: object) -> str:
    """A bounded rendering of a value the caller sent, for responses and logs: never an echo of megabytes."""
    if isinstance(value, dict | list):
        text = f"<{json_type(value)}>"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    return text if len(text) <= MAX_ECHO_LENGTH else text[: MAX_ECHO_LENGTH - 1] + "…"


def reject_invalid_id(value: object, audit: RequestAudit) -> str:
    """Validate one id; on failure report it as ``invalid`` and raise ``InvalidParserRunId`` with the reason."""
    attempt = Report(Trigger.API, None, audit=audit.fields())
    try:
        return validate_parser_run_id(value)
    except InvalidParserRunId as error:
        attempt.report(Outcome.INVALID, reason=str(error), rejected_value=echo(value))
        raise


def refuse_unprovable(resource: Resource, tenant: Tenant, audit: RequestAudit, item_id: str) -> None:
    """Raise ``ItemRefused`` (reported as rejected) when ``tenant``'s policy cannot decide ownership of the type."""
    reason = refusal(tenant, resource)
    if reason is not None:
        Report(Trigger.API, item_id, audit=audit.fields()).report(Outcome.REJECTED, reason=reason)
        raise ItemRefused(reason)


def delete_now_or_enqueue(
    parser_run_id: str,
    *,
    resource: Resource,
    tenant: Tenant,
    services: ApiServices,
    deadline: Deadline,
    invocation_deadline: Deadline,
    audit: RequestAudit,
) -> SingleResult:
    """Delete within ``deadline``; on a failure worth retrying, put the request on the queue. A permanent failure
    (Extend refused the request for good) is answered at once, not queued.

    The enqueue may use what is left of ``invocation_deadline`` (Lambda's own, less the margin). Returns the outcome
    (``DELETED``, ``NOT_FOUND``, ``QUEUED`` or ``FAILED``) and its deletion request; raises ``LedgerUnavailable``
    when it cannot be recorded, ``QueueUnavailable`` when the fallback cannot be queued.
    """
    refuse_unprovable(resource, tenant, audit, parser_run_id)
    attempt = Report(Trigger.API, parser_run_id, audit=audit.fields())
    request = DeletionRequest(
        parser_run_id=parser_run_id, audit=audit.fields(), tenant_id=tenant.tenant_id, resource=resource
    )
    result = delete_owned(services.extend, services.settings.extend.extend_api_version, tenant, request, deadline)
    if result.outcome is not Outcome.FAILED or not _worth_queueing(result):
        single = _record_settled(
            result, resource=resource, tenant=tenant, services=services, audit=audit, deadline=invocation_deadline
        )
        attempt.report(
            single.outcome,
            result=result,
            reason=single.reason,
            ownership=tenant.ownership.value,
            deletion_request_id=single.request.request_id,
            resource=resource.value,
        )
        return single

    # Worth retrying: recorded first, then queued, then its run recorded as queued.
    records = services.ledger
    pending = records.begin(
        tenant.tenant_id,
        RequestTrigger.API_DELETE,
        audit.fields(),
        reserve=1,
        due_in_days=tenant.limits.deadline_days,
    )
    queued_request = replace(request, deletion_request_id=pending.request_id)
    queued = _enqueue(services, tenant, {parser_run_id: queued_request.to_message_body()}, invocation_deadline)
    if queued:
        queued_run = run_record(parser_run_id, Outcome.QUEUED, result, result.reason, resource=resource.value)
        recorded = records.take_in(pending, [queued_run])
    else:
        _record_not_queued(records, pending, [parser_run_id], result)
    attempt.report(
        Outcome.QUEUED if queued else Outcome.FAILED,
        result=result,
        reason=result.reason if queued else f"{result.reason}; and {NOT_QUEUED_REASON}",
        ownership=tenant.ownership.value,
        deletion_request_id=pending.request_id,
        resource=resource.value,
    )
    if not queued:
        raise QueueUnavailable("the deletion could not be done now nor queued")
    return SingleResult(Outcome.QUEUED, recorded)


def _record_settled(
    result: DeleteResult,
    *,
    resource: Resource,
    tenant: Tenant,
    services: ApiServices,
    audit: RequestAudit,
    deadline: Deadline,
) -> SingleResult:
    """A deletion done (or refused for good) now: one write records it and completes its request; the tenant's
    callback, if it takes them, is queued after."""
    outcome = result.outcome
    run = run_record(result.parser_run_id, outcome, result, resource=resource.value)
    callback = wants_callback(tenant)
    recorded = services.ledger.record_single(
        tenant.tenant_id,
        RequestTrigger.API_DELETE,
        audit.fields(),
        run,
        with_callback=callback,
        due_in_days=tenant.limits.deadline_days,
    )
    count(MetricName.REQUEST_COMPLETED)
    if callback:
        queue_callback(services.ledger, recorded, tenant, services.callbacks, deadline)
    return SingleResult(outcome, recorded, run.reason if outcome is Outcome.FAILED else None)


# Extend refusing this service's key (401) or its organisation's usage (402) is ours to fix, not the caller's:
# the deletion waits on the queue for the fix instead of failing.
_OPERATOR_FIXABLE_STATUSES: Final = frozenset({401, 402})


def _worth_queueing(result: DeleteResult) -> bool:
    return result.retryable or result.status_code in _OPERATOR_FIXABLE_STATUSES


def _record_not_queued(
    records: Ledger, request: RequestRecord, parser_run_ids: Sequence[str], result: DeleteResult | None = None
) -> None:
    """Best effort, on the way to a 503: what could not be queued is recorded as rejected, and its reservation
    released. The caller was not acknowledged, so a failure here loses nothing."""
    runs = [run_record(parser_run_id, Outcome.REJECTED, result, NOT_QUEUED_REASON) for parser_run_id in parser_run_ids]
    with contextlib.suppress(LedgerUnavailable):
        records.take_in(request, runs, released=len(runs))


def json_type(value: object) -> str:
    names: Mapping[type, str] = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def enqueue_bulk(
    values: Sequence[object],
    *,
    tenant: Tenant,
    services: ApiServices,
    audit: RequestAudit,
    deadline: Deadline,
    typed_by_prefix: bool = False,
    dry_run: bool = False,
    include_file: bool = False,
    resource: Resource | None = None,
) -> BulkResult:
    """Validate each value, record the request, queue the distinct valid ids, and account for every one of them.
    ``typed_by_prefix``: each id's resource type is the one its prefix names (an unknown prefix is rejected);
    otherwise every id is of ``resource`` (a parse run by default). A ``dry_run`` request's items are checked, never
    deleted; with ``include_file`` each run's source file is deleted after it, as an item of its own.

    Raises ``OverCap`` when the tenant's outstanding runs would pass its cap, ``LedgerUnavailable`` when the request
    cannot be recorded, and ``QueueUnavailable`` when there were valid ids and none of them could be queued.
    """
    records = services.ledger
    rejected: list[Rejection] = []
    resources: dict[str, Resource] = {}
    audit_fields = audit.fields()
    version = services.settings.extend.extend_api_version
    for value in values:
        if isinstance(value, str) and value in resources:
            continue  # a duplicate: first seen wins
        try:
            item_id = reject_invalid_id(value, audit)
            item_resource = (
                _typed(item_id, version, audit) if typed_by_prefix else resource or parse_run_resource(version)
            )
            refuse_unprovable(item_resource, tenant, audit, item_id)
        except (InvalidParserRunId, ItemRefused) as error:
            rejected.append(Rejection(echo(value), str(error)))
            continue
        resources[item_id] = item_resource
    valid = list(resources)
    attempts = {parser_run_id: Report(Trigger.API, parser_run_id, audit=audit_fields) for parser_run_id in valid}
    pending = records.begin(
        tenant.tenant_id,
        RequestTrigger.API_BULK,
        audit_fields,
        reserve=len(valid),
        cap=tenant.limits.max_outstanding if valid else None,
        due_in_days=tenant.limits.deadline_days,
        dry_run=dry_run,
    )
    bodies = {
        parser_run_id: DeletionRequest(
            parser_run_id=parser_run_id,
            audit=audit_fields,
            tenant_id=tenant.tenant_id,
            deletion_request_id=pending.request_id,
            resource=resources[parser_run_id],
            dry_run=dry_run,
            include_file=include_file and has_source_file(resources[parser_run_id]),
        ).to_message_body()
        for parser_run_id in valid
    }
    acknowledged = set(_enqueue(services, tenant, bodies, deadline)) if bodies else set()
    not_queued = [parser_run_id for parser_run_id in valid if parser_run_id not in acknowledged]
    nothing_queued = bool(valid) and not acknowledged
    if nothing_queued:
        _record_not_queued(records, pending, not_queued)
        recorded = pending
    else:
        rejected += [Rejection(parser_run_id, NOT_QUEUED_REASON) for parser_run_id in not_queued]
        runs = [
            run_record(run_id, Outcome.QUEUED, resource=resources[run_id].value)
            for run_id in valid
            if run_id in acknowledged
        ]
        recorded = records.take_in(pending, runs + _rejected_runs(rejected), released=len(not_queued))
        if not acknowledged:  # nothing to wait for: every entry was rejected
            settle(records, recorded.request_id, tenant, services.callbacks, deadline)
    for parser_run_id, attempt in attempts.items():  # in request order, so the log reads like the request
        queued = parser_run_id in acknowledged
        attempt.report(
            Outcome.QUEUED if queued else Outcome.FAILED,
            reason=None if queued else NOT_QUEUED_REASON,
            deletion_request_id=recorded.request_id,
            resource=resources[parser_run_id].value,
            dry_run=dry_run or None,
        )
    if nothing_queued:
        raise QueueUnavailable("none of the ids could be queued")
    queued_ids = tuple(parser_run_id for parser_run_id in valid if parser_run_id in acknowledged)
    return BulkResult(request=recorded, queued=queued_ids, rejected=tuple(rejected))


def _typed(item_id: str, api_version: str, audit: RequestAudit) -> Resource:
    """The resource an id's prefix names; ``ItemRefused`` (reported as rejected) for a prefix Extend does not use."""
    resource = resource_for_id(item_id, api_version)
    if resource is None:
        reason = f"the id's prefix names no Extend resource type of API {api_version} ({known_prefixes(api_version)})"
        Report(Trigger.API, item_id, audit=audit.fields()).report(Outcome.REJECTED, reason=reason)
        raise ItemRefused(reason)
    return resource


def _rejected_runs(rejected: Sequence[Rejection]) -> list[RunRecord]:
    """The ledger's record of each rejection; one per distinct value as shown (two values may show alike)."""
    seen: dict[str, RunRecord] = {}
    for item in rejected:
        seen.setdefault(item.parser_run_id, run_record(item.parser_run_id, Outcome.REJECTED, reason=item.reason))
    return list(seen.values())


def _enqueue(services: ApiServices, tenant: Tenant, bodies: Mapping[str, str], deadline: Deadline) -> tuple[str, ...]:
    """The keys of ``bodies`` SQS acknowledged. The tenant is the message group, so that SQS fair queues keep one
    tenant's backlog from delaying the others'."""
    return services.deletions.enqueue(
        bodies, deadline=deadline, message_group_id=tenant.tenant_id, delay_s=services.settings.intake_delay_s
    )


class DeletionRequestNotFound(LookupError):
    """No such deletion request for this tenant: it does not exist, or it is another tenant's (the same answer)."""


@dataclass(frozen=True, slots=True)
class RequestPage:
    request: RequestRecord
    runs: tuple[RunRecord, ...]
    next_after: str | None  # the run id to continue after, None at the end


def read_deletion_request(
    request_id: str, *, tenant: Tenant, services: ApiServices, limit: int, after: str | None
) -> RequestPage:
    """The tenant's request and a page of its runs, as the status resource shows them."""
    request = _tenants_request(request_id, tenant, services)
    records = services.ledger
    runs, next_after = records.runs(request_id, limit=limit, after=after)
    return RequestPage(request, tuple(shown_run(run, request) for run in runs), next_after)


@dataclass(frozen=True, slots=True)
class Cancellation:
    request: RequestRecord
    cancelled: int  # items this call cancelled


def cancel_deletion_request(
    request_id: str, *, tenant: Tenant, services: ApiServices, audit: RequestAudit, deadline: Deadline
) -> Cancellation:
    """Cancel the tenant's request: every item not yet attempted becomes ``cancelled`` and is never sent to Extend
    (the queue function checks each item before its DELETE); items already done keep their outcome. Once nothing
    is queued the request completes (``cancelled``), and the tenant's callback tells it the final counts. A second
    cancel changes nothing. Raises ``DeletionRequestNotFound`` or ``LedgerUnavailable``."""
    request = _tenants_request(request_id, tenant, services)
    records = services.ledger
    newly, counted = records.cancel(request)
    if counted.failed:
        raise LedgerUnavailable("cannot count the cancelled items; the cancellation can be repeated")
    for item_id in newly:
        Report(Trigger.API, item_id, audit=audit.fields()).report(
            Outcome.CANCELLED, reason=CANCELLED_REASON, deletion_request_id=request_id
        )
    settle(records, request_id, tenant, services.callbacks, deadline)
    latest = records.request(request_id)
    if latest is None:
        raise LedgerUnavailable("the request could not be read back")
    return Cancellation(latest, len(newly))


def _tenants_request(request_id: str, tenant: Tenant, services: ApiServices) -> RequestRecord:
    if not is_request_id(request_id):
        raise DeletionRequestNotFound(request_id)
    request = services.ledger.request(request_id)
    if request is None or request.tenant_id != tenant.tenant_id:
        raise DeletionRequestNotFound(request_id)
    return request
