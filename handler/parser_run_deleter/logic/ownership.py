"""A tenant deletes only its own parser runs, on both paths: the ownership policy, applied to one deletion.

A run another tenant owns is answered exactly as a run that does not exist (``not_found``): the API gives no way
to learn that an id exists elsewhere. No DELETE is ever sent for a run the caller does not own.
"""

from __future__ import annotations

from dataclasses import replace

from parser_run_deleter.logic.deletion import attempt_deletion
from parser_run_deleter.logic.extend_results import DeleteResult, ReadOutcome, ReadResult, failed_before_extend
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ports import ExtendRuns
from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.logic.tenants import Ownership, Tenant
from parser_run_deleter.shared.observability import MetricName, count
from parser_run_deleter.shared.settings import ConfigurationError
from parser_run_deleter.shared.time_budget import Deadline

METADATA_API_VERSION = "2026-02-09"


def require_supported_policy(tenant: Tenant, extend_api_version: str) -> None:
    """Refuse, as a misconfiguration (503), to serve a tenant whose policy this deployment cannot apply: rather than
    accept deletions that could only ever be dead-lettered."""
    if tenant.ownership is Ownership.METADATA and extend_api_version != METADATA_API_VERSION:
        raise ConfigurationError(
            f"tenant {tenant.tenant_id!r} has the metadata ownership policy, which needs EXTEND_API_VERSION "
            f"{METADATA_API_VERSION}"
        )


def delete_owned(
    extend: ExtendRuns, extend_api_version: str, tenant: Tenant | None, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    """Delete the run if ``tenant`` owns it. ``tenant`` None is an operator's request: organization-wide, in the
    message's ``workspaceId`` when it names one."""
    if tenant is None or tenant.ownership is Ownership.UNRESTRICTED:
        return attempt_deletion(extend, request, deadline)
    if tenant.ownership is Ownership.WORKSPACE:
        # Extend itself refuses the runs of other workspaces: they are 404, like missing ones.
        return attempt_deletion(extend, replace(request, workspace_id=tenant.workspace_id), deadline)
    return _delete_if_metadata_names(extend, extend_api_version, tenant, request, deadline)


def _delete_if_metadata_names(
    client: ExtendRuns, extend_api_version: str, tenant: Tenant, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    parser_run_id = request.parser_run_id
    if extend_api_version != METADATA_API_VERSION:
        # Runs carry custom metadata only under 2026-02-09: under another version no run would ever match.
        return failed_before_extend(
            parser_run_id,
            f"the metadata ownership policy needs EXTEND_API_VERSION {METADATA_API_VERSION}",
            retryable=False,
        )
    # A metadata tenant may also have a workspace (an organization-scoped key needs one named on every call).
    in_workspace = replace(request, workspace_id=tenant.workspace_id) if tenant.workspace_id else request
    try:
        read = client.read_parser_run(parser_run_id, deadline, workspace_id=in_workspace.workspace_id)
    except Exception as error:  # as attempt_deletion: anything that stops the read is a retryable failure
        return failed_before_extend(parser_run_id, type(error).__name__)
    if read.outcome is ReadOutcome.NOT_FOUND:
        return _from_read(read, Outcome.NOT_FOUND)
    if read.outcome is ReadOutcome.FAILED:
        return _from_read(read, Outcome.FAILED, reason=f"reading the run's metadata failed: {read.reason}")
    owner = (read.metadata or {}).get(tenant.metadata_key or "")
    if owner != tenant.tenant_id:
        count(MetricName.OWNERSHIP_REFUSED)
        return _from_read(read, Outcome.NOT_FOUND, not_owned=True)
    deleted = attempt_deletion(client, in_workspace, deadline)
    # Attempts count the deletion's own (retries are the DELETE's); the read's 429s are Extend pressure all the same.
    return replace(deleted, throttled_responses=deleted.throttled_responses + read.throttled_responses)


def _from_read(
    read: ReadResult, outcome: Outcome, *, reason: str | None = None, not_owned: bool = False
) -> DeleteResult:
    """The deletion's result when the read decided it: no DELETE was sent. A run the read found missing or not the
    tenant's keeps no trace of Extend's answer (status, request id, error code): the ledger, the receipts and the
    status resource would otherwise tell one from the other (a 404 and a 200), an oracle for whether an id exists."""
    settled = outcome is Outcome.NOT_FOUND
    return DeleteResult(
        read.parser_run_id,
        outcome,
        read.attempts,
        status_code=None if settled else read.status_code,
        retryable=outcome is Outcome.FAILED and read.retryable,
        extend_request_id=None if settled else read.extend_request_id,
        error_code=None if settled else read.error_code,
        reason=reason,
        throttled_responses=read.throttled_responses,
        not_owned=not_owned,
    )
