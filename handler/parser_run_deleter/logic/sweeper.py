"""The sweeper's use case, run on a schedule: what no request or message would otherwise do.

- Runs still queued past the queue's retention are dropped by SQS, with no message left to settle them: they are
  recorded ``failed`` (expired) in storage, their request completes, and its tenant is told, as for any other end.
- Requests past their due date with items still pending are counted (the ``DeletionRequestsOverdue`` metric, which
  an alarm watches) and each is logged with its tenant and counts.
- A tenant's count of outstanding runs that a crashed intake left too high is repaired, as ``tenants recount`` does
  by hand, but only when no intake can be in flight and the count held still while it was summed.

Each tenant is swept on its own: a failure with one is logged and the others are still swept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from parser_run_deleter.logic.completion import settle
from parser_run_deleter.logic.deletion import Report, Trigger
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import EXPIRED_REASON, QUEUE_RETENTION_S, LedgerUnavailable
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ports import MessageQueue, TenantRoster
from parser_run_deleter.logic.tenants import InvalidTenant, Tenant, tenant_from_item
from parser_run_deleter.shared.observability import MetricName, count, logger
from parser_run_deleter.shared.timestamps import iso

# How far back each sweep looks: the queue's retention and a week more, so that a sweep missed for days still finds
# every request whose runs expired. Older requests were swept before (the sweeper runs every hour).
LOOKBACK_S: Final = QUEUE_RETENTION_S + 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class SweeperServices:
    ledger: Ledger
    tenants: TenantRoster
    callbacks: MessageQueue


@dataclass(slots=True)
class Sweep:
    """What one sweep did, for its log line and for tests."""

    expired: int = 0  # runs recorded failed (expired) in storage
    overdue: list[str] = field(default_factory=list)  # requests past due with items pending
    repaired: dict[str, tuple[int, int]] = field(default_factory=dict)  # tenant: (count before, after)
    failed_tenants: list[str] = field(default_factory=list)


def sweep(services: SweeperServices) -> Sweep:
    result = Sweep()
    for tenant_id, tenant in _owners(services.tenants):
        try:
            _sweep_one(services, tenant_id, tenant, result)
        except LedgerUnavailable as error:
            count(MetricName.LEDGER_WRITE_FAILED)
            logger.error("cannot sweep the tenant's requests", extra={"tenant_id": tenant_id, "reason": str(error)})
            result.failed_tenants.append(tenant_id or "operator")
    count(MetricName.OVERDUE, len(result.overdue))
    logger.info(
        "sweep done",
        extra={
            "expired_runs": result.expired,
            "overdue_requests": len(result.overdue),
            "repaired_tenants": sorted(result.repaired),
            "failed_tenants": result.failed_tenants,
        },
    )
    return result


def _owners(roster: TenantRoster) -> Iterator[tuple[str | None, Tenant | None]]:
    """Every registered tenant, then the operators' requests (no tenant)."""
    for item in roster.tenants():
        try:
            tenant = tenant_from_item(item)
        except InvalidTenant as error:
            logger.error("a malformed tenant item is not swept", extra={"reason": str(error)})
            continue
        yield tenant.tenant_id, tenant
    yield None, None


def _sweep_one(services: SweeperServices, tenant_id: str | None, tenant: Tenant | None, result: Sweep) -> None:
    ledger = services.ledger
    for request in ledger.requests_of(tenant_id, since=iso(time.time() - LOOKBACK_S)):
        if request.counts.get(Outcome.QUEUED) and request.expired():
            expired, counted = ledger.expire(request)
            if counted.failed:
                raise LedgerUnavailable("cannot count the expired runs; the next sweep will")
            for run_id in expired:
                Report(Trigger.SCHEDULE, run_id).report(
                    Outcome.FAILED, reason=EXPIRED_REASON, tenant_id=tenant_id, deletion_request_id=request.request_id
                )
            result.expired += len(expired)
            settle(ledger, request.request_id, tenant, services.callbacks)
        elif request.overdue():
            result.overdue.append(request.request_id)
            logger.warning(
                "deletion request overdue",
                extra={
                    "tenant_id": tenant_id,
                    "deletion_request_id": request.request_id,
                    "due_by": request.due_by,
                    "counts": request.shown_counts(),
                },
            )
    if tenant_id is not None:
        repaired = ledger.repair_outstanding(tenant_id)
        if repaired is not None:
            result.repaired[tenant_id] = repaired
            logger.warning(
                "repaired the tenant's count of outstanding runs",
                extra={"tenant_id": tenant_id, "before": repaired[0], "after": repaired[1]},
            )
