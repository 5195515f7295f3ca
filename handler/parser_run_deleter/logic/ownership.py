"""A tenant deletes only its own items (runs of every type, and files), on both paths: the ownership policy,
applied to one deletion, or to one dry run's check.

An item another tenant owns is answered exactly as one that does not exist (``not_found``): the API gives no way to
learn that an id exists elsewhere. No DELETE is ever sent for an item the caller does not own, and none at all for a
dry run.
"""

from __future__ import annotations

from dataclasses import replace

from parser_run_deleter.logic.deletion import attempt_deletion
from parser_run_deleter.logic.extend_results import DeleteResult, ReadOutcome, ReadResult, failed_before_extend
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.ports import ExtendItems
from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.logic.tenants import Ownership, Tenant
from parser_run_deleter.shared.extend_resources import Resource, UnknownResource, carries_metadata, resolve_resource
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


def item_resource(request: DeletionRequest, extend_api_version: str) -> Resource:
    """The item's resource under the deployment's API version (a parse run unless the request names another).
    Raises ``UnknownResource`` for a type this version does not have."""
    return resolve_resource((request.resource or Resource.PARSE_RUNS).value, extend_api_version)


def resource_name(request: DeletionRequest, extend_api_version: str) -> str:
    """The name the ledger records the item's type under: its resource as this version has it, else as named."""
    try:
        return item_resource(request, extend_api_version).value
    except UnknownResource:
        return (request.resource or Resource.PARSE_RUNS).value


def refusal(tenant: Tenant | None, resource: Resource) -> str | None:
    """Why ``tenant``'s policy can never decide that an item of ``resource`` is its own, or None when it can.
    The metadata policy reads an item's custom metadata, and only runs carry any: it deletes nothing blind."""
    if tenant is not None and tenant.ownership is Ownership.METADATA and not carries_metadata(resource):
        return (
            f"the metadata ownership policy cannot tell whose {resource.value} are: Extend keeps no custom metadata on "
            "them"
        )
    return None


def delete_owned(
    extend: ExtendItems, extend_api_version: str, tenant: Tenant | None, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    """Delete the item if ``tenant`` owns it. ``tenant`` None is an operator's request: organization-wide, in the
    message's ``workspaceId`` when it names one."""
    return _if_owned(extend, extend_api_version, tenant, request, deadline, dry_run=False)


def check_owned(
    extend: ExtendItems, extend_api_version: str, tenant: Tenant | None, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    """A dry run of ``delete_owned``: the item is read (``GET``, at the read rate), never deleted. ``would_delete``
    when it exists and ``tenant``'s policy finds it its own; ``not_found`` otherwise, exactly as a deletion would
    answer."""
    return _if_owned(extend, extend_api_version, tenant, request, deadline, dry_run=True)


def _if_owned(
    extend: ExtendItems,
    extend_api_version: str,
    tenant: Tenant | None,
    request: DeletionRequest,
    deadline: Deadline,
    *,
    dry_run: bool,
) -> DeleteResult:
    try:
        resource = item_resource(request, extend_api_version)
    except UnknownResource as error:
        return failed_before_extend(request.parser_run_id, str(error), retryable=False)
    refused = refusal(tenant, resource)
    if refused is not None:
        return failed_before_extend(request.parser_run_id, refused, retryable=False)
    request = replace(request, resource=resource)
    if tenant is not None and tenant.ownership is Ownership.METADATA:
        return _if_metadata_names(extend, extend_api_version, tenant, request, deadline, dry_run=dry_run)
    if tenant is not None and tenant.ownership is Ownership.WORKSPACE:
        # Extend itself refuses the items of other workspaces: they are 404, like missing ones.
        request = replace(request, workspace_id=tenant.workspace_id)
    if not dry_run:
        return attempt_deletion(extend, request, deadline)
    read = _read(extend, request, deadline)
    if isinstance(read, DeleteResult):
        return read
    return _decided_by_read(read, owned=True)


def delete_checked(
    extend: ExtendItems, extend_api_version: str, tenant: Tenant | None, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    """Delete an item whose ownership is already settled, without reading it again: a run ``check_owned`` found
    the tenant's, or the source file of one (whose ownership is its run's). Sent in the tenant's workspace, if it has
    one, so Extend refuses anything of another workspace all the same."""
    settled = _settled(extend_api_version, tenant, request)
    if isinstance(settled, DeleteResult):
        return settled
    return attempt_deletion(extend, settled, deadline)


def check_settled(
    extend: ExtendItems, extend_api_version: str, tenant: Tenant | None, request: DeletionRequest, deadline: Deadline
) -> DeleteResult:
    """``delete_checked``'s dry run: whether the item (its ownership settled) exists, read in the tenant's workspace."""
    settled = _settled(extend_api_version, tenant, request)
    if isinstance(settled, DeleteResult):
        return settled
    read = _read(extend, settled, deadline)
    if isinstance(read, DeleteResult):
        return read
    return _decided_by_read(read, owned=True)


def _settled(
    extend_api_version: str, tenant: Tenant | None, request: DeletionRequest
) -> DeletionRequest | DeleteResult:
    """The request as an item whose ownership is settled is sent: its resource as this version has it, in the
    tenant's workspace (an operator's: the message's); a permanent failure for a type the version does not have."""
    try:
        resource = item_resource(request, extend_api_version)
    except UnknownResource as error:
        return failed_before_extend(request.parser_run_id, str(error), retryable=False)
    workspace = tenant.workspace_id if tenant is not None else request.workspace_id
    return replace(request, resource=resource, workspace_id=workspace)


def _read(extend: ExtendItems, request: DeletionRequest, deadline: Deadline) -> ReadResult | DeleteResult:
    try:
        return extend.read(
            request.parser_run_id, deadline, resource=request.resource, workspace_id=request.workspace_id
        )
    except Exception as error:  # as attempt_deletion: anything that stops the read is a retryable failure
        return failed_before_extend(request.parser_run_id, type(error).__name__)


def _decided_by_read(read: ReadResult, *, owned: bool) -> DeleteResult:
    if read.outcome is ReadOutcome.NOT_FOUND:
        return _from_read(read, Outcome.NOT_FOUND)
    if read.outcome is ReadOutcome.FAILED:
        return _from_read(read, Outcome.FAILED, reason=f"reading the item failed: {read.reason}")
    if not owned:
        count(MetricName.OWNERSHIP_REFUSED)
        return _from_read(read, Outcome.NOT_FOUND, not_owned=True)
    return _from_read(read, Outcome.WOULD_DELETE)


def _if_metadata_names(
    client: ExtendItems,
    extend_api_version: str,
    tenant: Tenant,
    request: DeletionRequest,
    deadline: Deadline,
    *,
    dry_run: bool,
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
    read = _read(client, in_workspace, deadline)
    if isinstance(read, DeleteResult):
        return read
    owned = (
        read.outcome is ReadOutcome.FOUND and (read.metadata or {}).get(tenant.metadata_key or "") == tenant.tenant_id
    )
    if dry_run or read.outcome is not ReadOutcome.FOUND or not owned:
        return _decided_by_read(read, owned=owned)
    deleted = attempt_deletion(client, in_workspace, deadline)
    # Attempts count the deletion's own (retries are the DELETE's); the read's 429s are Extend pressure all the same.
    return replace(deleted, throttled_responses=deleted.throttled_responses + read.throttled_responses)


def _from_read(
    read: ReadResult, outcome: Outcome, *, reason: str | None = None, not_owned: bool = False
) -> DeleteResult:
    """The result when the read decided it: no DELETE was sent. An item the read found missing or not the tenant's
    keeps no trace of Extend's answer (status, request id, error code): the ledger, the receipts and the status
    resource would otherwise tell one from the other (a 404 and a 200), an oracle for whether an id exists."""
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
        source_file_id=read.source_file_id if outcome is Outcome.WOULD_DELETE else None,
    )
