"""The API's use cases: a synchronous delete with a durable fallback, and bulk intake onto the deletion queue.

Nothing here knows about HTTP or API Gateway events: ``intake.api_routes`` turns requests into these calls, and
``intake.api_errors`` turns the exceptions below into responses. Every id ends in exactly one outcome line and
metric.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from parser_run_deleter.adapters.deletion_queue import enqueue_messages
from parser_run_deleter.adapters.extend_client import DeleteOutcome, ExtendClient
from parser_run_deleter.logic.deletion import Outcome, Trigger, report_outcome
from parser_run_deleter.logic.ownership import delete_owned
from parser_run_deleter.logic.queue_messages import MAX_AUDIT_VALUE_LENGTH, DeletionRequest
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id
from parser_run_deleter.shared.settings import Settings
from parser_run_deleter.shared.time_budget import Deadline

MAX_BULK_IDS: Final = 1000
# What an invalid value may cost in a response or a log line: enough to recognise it, never an echo of megabytes.
MAX_ECHO_LENGTH: Final = 64
NOT_QUEUED_REASON: Final = "could not be queued: the deletion queue did not accept it; retry later"


class InvalidRequestBody(ValueError):
    """The body is not what the route accepts. The message is precise and safe to return to the caller."""


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
    queued: tuple[str, ...]
    rejected: tuple[Rejection, ...] = field(default_factory=tuple)


def echo(value: object) -> str:
    """A bounded rendering of a value the caller sent, for responses and logs: never an echo of megabytes."""
    if isinstance(value, dict | list):
        text = f"<{_json_type(value)}>"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    return text if len(text) <= MAX_ECHO_LENGTH else text[: MAX_ECHO_LENGTH - 1] + "…"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def reject_invalid_id(value: object, audit: RequestAudit) -> str:
    """Validate one id; on failure report it as ``invalid`` and raise ``InvalidParserRunId`` with the reason."""
    started = time.perf_counter()
    try:
        return validate_parser_run_id(value)
    except InvalidParserRunId as error:
        report_outcome(
            Outcome.INVALID,
            trigger=Trigger.API,
            parser_run_id=None,
            duration_ms=_elapsed_ms(started),
            reason=str(error),
            audit=audit.fields(),
            rejected_value=echo(value),
        )
        raise


def delete_now_or_enqueue(
    parser_run_id: str,
    *,
    tenant: Tenant,
    client: ExtendClient,
    settings: Settings,
    deadline: Deadline,
    invocation_deadline: Deadline,
    audit: RequestAudit,
) -> Outcome:
    """Delete within ``deadline``; on any outcome but deleted / not found, put the request on the queue.

    The enqueue may use what is left of ``invocation_deadline`` (Lambda's own, less the margin).

    Returns ``DELETED``, ``NOT_FOUND`` or ``QUEUED``; raises ``QueueUnavailable`` when the fallback fails too.
    """
    started = time.perf_counter()
    request = DeletionRequest(parser_run_id=parser_run_id, audit=audit.fields(), tenant_id=tenant.tenant_id)
    result = delete_owned(client, settings, tenant, request, deadline)
    if result.outcome is not DeleteOutcome.FAILED:
        outcome = Outcome(result.outcome.value)
        report_outcome(
            outcome,
            trigger=Trigger.API,
            parser_run_id=parser_run_id,
            duration_ms=_elapsed_ms(started),
            result=result,
            audit=audit.fields(),
            ownership=tenant.ownership.value,
        )
        return outcome

    queued = _enqueue(settings, tenant, {parser_run_id: request.to_message_body()}, invocation_deadline)
    outcome = Outcome.QUEUED if queued else Outcome.FAILED
    report_outcome(
        outcome,
        trigger=Trigger.API,
        parser_run_id=parser_run_id,
        duration_ms=_elapsed_ms(started),
        result=result,
        reason=result.reason if queued else f"{result.reason}; and {NOT_QUEUED_REASON}",
        audit=audit.fields(),
        ownership=tenant.ownership.value,
    )
    if outcome is Outcome.FAILED:
        raise QueueUnavailable("the deletion could not be done now nor queued")
    return outcome


def parse_bulk_body(body: str | None) -> list[Any]:
    """``{"parserRunIds": [...]}`` with 1 to ``MAX_BULK_IDS`` entries; the entries themselves are not checked."""
    if body is None or not body.strip():
        raise InvalidRequestBody('the body must be JSON {"parserRunIds": [...]}; it is empty')
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidRequestBody(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequestBody("the body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidRequestBody(
            f'the body must be a JSON object {{"parserRunIds": [...]}}, got {_json_type(document)}'
        )
    if "parserRunIds" not in document:
        raise InvalidRequestBody("the body has no 'parserRunIds'")
    unknown = sorted(name for name in document if name != "parserRunIds")
    if unknown:
        raise InvalidRequestBody(f"unknown field(s): {', '.join(echo(name) for name in unknown[:5])}")
    ids = document["parserRunIds"]
    if not isinstance(ids, list):
        raise InvalidRequestBody(f"'parserRunIds' must be an array, got {_json_type(ids)}")
    if not ids:
        raise InvalidRequestBody("'parserRunIds' must hold at least 1 id")
    if len(ids) > MAX_BULK_IDS:
        raise InvalidRequestBody(f"'parserRunIds' must hold at most {MAX_BULK_IDS} ids, got {len(ids)}")
    return ids


def _json_type(value: object) -> str:
    names: Mapping[type, str] = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def enqueue_bulk(
    values: Sequence[object], *, tenant: Tenant, settings: Settings, audit: RequestAudit, deadline: Deadline
) -> BulkResult:
    """Validate each value, queue the distinct valid ids, and account for every one of them.

    Raises ``QueueUnavailable`` when there were valid ids and none of them could be queued.
    """
    started = time.perf_counter()
    rejected: list[Rejection] = []
    bodies: dict[str, str] = {}
    audit_fields = audit.fields()
    for value in values:
        if isinstance(value, str) and value in bodies:
            continue  # a duplicate: first seen wins
        try:
            parser_run_id = reject_invalid_id(value, audit)
        except InvalidParserRunId as error:
            rejected.append(Rejection(echo(value), str(error)))
            continue
        request = DeletionRequest(parser_run_id=parser_run_id, audit=audit_fields, tenant_id=tenant.tenant_id)
        bodies[parser_run_id] = request.to_message_body()
    if not bodies:
        return BulkResult(queued=(), rejected=tuple(rejected))

    acknowledged = set(_enqueue(settings, tenant, bodies, deadline))
    duration_ms = _elapsed_ms(started)
    for parser_run_id in bodies:  # in request order, so the log reads like the request
        if parser_run_id in acknowledged:
            report_outcome(
                Outcome.QUEUED,
                trigger=Trigger.API,
                parser_run_id=parser_run_id,
                duration_ms=duration_ms,
                audit=audit_fields,
            )
        else:
            report_outcome(
                Outcome.FAILED,
                trigger=Trigger.API,
                parser_run_id=parser_run_id,
                duration_ms=duration_ms,
                reason=NOT_QUEUED_REASON,
                audit=audit_fields,
            )
            rejected.append(Rejection(parser_run_id, NOT_QUEUED_REASON))
    if not acknowledged:
        raise QueueUnavailable("none of the ids could be queued")
    queued = tuple(parser_run_id for parser_run_id in bodies if parser_run_id in acknowledged)
    return BulkResult(queued=queued, rejected=tuple(rejected))


def _enqueue(settings: Settings, tenant: Tenant, bodies: Mapping[str, str], deadline: Deadline) -> tuple[str, ...]:
    """The keys of ``bodies`` SQS acknowledged; none when no queue is configured. The tenant is the message group,
    so that SQS fair queues keep one tenant's backlog from delaying the others'."""
    if settings.deletion_queue_url is None:
        return ()
    return enqueue_messages(
        settings.deletion_queue_url, bodies, deadline=deadline, message_group_id=tenant.tenant_id
    ).queued
