"""When a deletion request settles: it is marked completed, once, and a tenant with a callback URL is queued a
completion callback (``logic.callbacks`` delivers it).

Called after every outcome that can settle a request. The conditional write in ``Ledger.complete_if_settled``
lets exactly one caller complete a request, so a callback is queued once per completion.
"""

from __future__ import annotations

import contextlib
import json

from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import LedgerUnavailable, RequestRecord
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ports import MessageQueue
from parser_run_deleter.logic.tenants import Tenant
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.time_budget import Deadline


def wants_callback(tenant: Tenant | None) -> bool:
    return tenant is not None and tenant.callback_url is not None


def settle(
    ledger: Ledger,
    request_id: str,
    tenant: Tenant | None,
    callbacks: MessageQueue,
    deadline: Deadline | None = None,
    *,
    counted: RequestRecord | None = None,
) -> RequestRecord | None:
    """Complete the request if nothing of it is queued any more, and queue the tenant's completion callback. The
    completed request, or None (not settled yet, or completed by another caller). ``counted`` is the request as
    the outcome's own write returned it: with runs still queued, there is nothing to try. Never raises for the
    callback: the outcome it follows is recorded already."""
    if counted is not None and (counted.counts.get(Outcome.QUEUED, 0) > 0 or counted.completed_at is not None):
        return None
    try:
        completed = ledger.complete_if_settled(request_id, with_callback=wants_callback(tenant))
    except LedgerUnavailable as error:
        # The outcome is recorded; the request reads as completed from its counts. Only its completion time (and a
        # callback) waits for the next outcome of this request, or is missed if there is none.
        logger.warning("cannot mark the request completed", extra={"reason": str(error)})
        return None
    if completed is None:
        return None
    count(MetricName.REQUEST_COMPLETED)
    if tenant is not None and wants_callback(tenant):
        queue_callback(ledger, completed, tenant, callbacks, deadline)
    return completed


def queue_callback(
    ledger: Ledger, request: RequestRecord, tenant: Tenant, callbacks: MessageQueue, deadline: Deadline | None
) -> None:
    body = json.dumps(
        {"deletionRequestId": request.request_id, "tenantId": tenant.tenant_id, "sequence": request.completions},
        separators=(",", ":"),
    )
    queued = callbacks.enqueue(
        {request.request_id: body},
        deadline=deadline or Deadline.after(callbacks.worst_case_call_s + 1),
        message_group_id=tenant.tenant_id,
    )
    if not queued:
        logger.error("cannot queue the completion callback", extra={"deletion_request_id": request.request_id})
        with contextlib.suppress(LedgerUnavailable):
            ledger.set_callback(request.request_id, {"state": "not_sent", "reason": "the callback queue refused it"})
