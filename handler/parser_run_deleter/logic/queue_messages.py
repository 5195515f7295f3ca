"""The deletion queue's message format: what producers send, and how the consumer reads it.

The API, the operator CLI and the local stack all write messages with ``DeletionRequest.to_message_body``;
the queue function reads them with ``parse_deletion_message``. A message is JSON
``{"parserRunId": ..., "deletionRequestId"?: ..., "tenantId"?: ..., "workspaceId"?: ..., <audit fields>?}``, or a
bare id as the whole body: a parse run. An item of another type is ``{"id": ..., "resource": "files", ...}``, and a
dry run's item carries ``"dryRun": true``. ``deletionRequestId`` names the ledger's request the run belongs to; a
message without one is recorded under a request of its own when it is consumed.

A message the API enqueues carries its tenant's id, and the queue function applies that tenant's ownership policy
again. A message without one is an operator's: organization-wide, and only there is ``workspaceId`` honoured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from parser_run_deleter.shared.extend_resources import Resource
from parser_run_deleter.shared.parser_run_ids import (
    InvalidParserRunId,
    is_request_id,
    is_valid_tenant_id,
    is_valid_workspace_id,
    validate_parser_run_id,
)

# Free-form fields a producer may attach for the audit trail; anything else in a message is ignored.
AUDIT_FIELDS: Final = ("requestedBy", "reason", "requestId", "callerApiKeyId", "webhookId", "sourceIp")
MAX_AUDIT_VALUE_LENGTH: Final = 256
_RESOURCE_NAMES: Final = frozenset(resource.value for resource in Resource)


class InvalidDeletionRequest(ValueError):
    """The request cannot be acted on; the message is a reason fit for the caller and the DLQ."""


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    parser_run_id: str
    workspace_id: str | None = None
    audit: Mapping[str, str] = field(default_factory=dict)
    tenant_id: str | None = None
    deletion_request_id: str | None = None
    resource: Resource | None = None  # None: a parse run
    dry_run: bool = False  # check the item, never delete it
    include_file: bool = False  # a run's: delete its source file too, after it, as an item of the same request
    source_of: str | None = None  # a file's, included with a run: the run it is the source file of

    def to_message_body(self) -> str:
        # A parse run is written as it was before there were other types: consumers of either age read it.
        document: dict[str, str | bool] = (
            {"parserRunId": self.parser_run_id}
            if self.resource in (None, Resource.PARSE_RUNS, Resource.PARSER_RUNS)
            else {"id": self.parser_run_id, "resource": self.resource.value}
        )
        if self.dry_run:
            document["dryRun"] = True
        if self.include_file:
            document["include"] = "file"
        if self.source_of:
            document["sourceOf"] = self.source_of
        if self.deletion_request_id:
            document["deletionRequestId"] = self.deletion_request_id
        if self.tenant_id:
            document["tenantId"] = self.tenant_id
        if self.workspace_id:
            document["workspaceId"] = self.workspace_id
        document.update(audit_fields(self.audit))
        return json.dumps(document, separators=(",", ":"))


def audit_fields(document: Mapping[str, Any]) -> dict[str, str]:
    """The known audit fields of ``document`` that hold text, each cut to ``MAX_AUDIT_VALUE_LENGTH``."""
    return {
        name: value[:MAX_AUDIT_VALUE_LENGTH]
        for name in AUDIT_FIELDS
        if isinstance(value := document.get(name), str) and value
    }


def parse_deletion_message(body: str) -> DeletionRequest:
    """A queue message: JSON ``{"parserRunId": ..., "workspaceId"?: ..., audit...}`` or a bare id."""
    text = body.strip()
    if not text.startswith(("{", "[", '"')):
        return DeletionRequest(parser_run_id=_valid_id(text))
    try:
        document = json.loads(text)
    except ValueError:
        raise InvalidDeletionRequest("message body is not valid JSON") from None
    if isinstance(document, str):
        return DeletionRequest(parser_run_id=_valid_id(document))
    if not isinstance(document, dict):
        raise InvalidDeletionRequest("message body must be a JSON object with 'parserRunId', or a bare id")
    if "parserRunId" not in document and "id" not in document:
        raise InvalidDeletionRequest("message body has no 'parserRunId' (nor 'id' with its 'resource')")
    if "parserRunId" in document and "id" in document:
        raise InvalidDeletionRequest("message body may have 'parserRunId' or 'id', not both")
    resource = document.get("resource")
    if resource is not None and resource not in _RESOURCE_NAMES:
        raise InvalidDeletionRequest(f"'resource' must be one of {', '.join(sorted(_RESOURCE_NAMES))}")
    if "id" in document and resource is None:
        raise InvalidDeletionRequest("a message with 'id' must name its 'resource'")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidDeletionRequest("'dryRun' must be true or false")
    include = document.get("include")
    if include not in (None, "file"):
        raise InvalidDeletionRequest("'include' may only be \"file\"")
    if include is not None and document.get("deletionRequestId") is None:
        # The file becomes an item of the run's request: a message without one has nowhere to record it.
        raise InvalidDeletionRequest("'include' needs the 'deletionRequestId' the file is recorded under")
    source_of = document.get("sourceOf")
    if source_of is not None and (resource != Resource.FILES or document.get("deletionRequestId") is None):
        raise InvalidDeletionRequest("only a file of a deletion request has a 'sourceOf'")
    workspace_id = document.get("workspaceId")
    if workspace_id is not None and not is_valid_workspace_id(workspace_id):
        raise InvalidDeletionRequest("'workspaceId' must be a string of letters, digits, '_' and '-'")
    tenant_id = document.get("tenantId")
    if tenant_id is not None and not is_valid_tenant_id(tenant_id):
        raise InvalidDeletionRequest("'tenantId' must be a tenant id: letters, digits, '_' and '-'")
    deletion_request_id = document.get("deletionRequestId")
    if deletion_request_id is not None and not is_request_id(deletion_request_id):
        raise InvalidDeletionRequest("'deletionRequestId' must be a deletion request id: dr_ and 26 characters")
    if tenant_id is not None and workspace_id is not None:
        # A tenant's workspace comes from the registry, never from a message.
        raise InvalidDeletionRequest("a tenant's message may not name a 'workspaceId'")
    return DeletionRequest(
        parser_run_id=_valid_id(document["parserRunId"] if "parserRunId" in document else document["id"]),
        workspace_id=workspace_id,
        audit=audit_fields(document),
        tenant_id=tenant_id,
        deletion_request_id=deletion_request_id,
        resource=Resource(resource) if resource is not None else None,
        dry_run=dry_run,
        include_file=include == "file",
        source_of=_valid_id(source_of) if source_of is not None else None,
    )


def _valid_id(value: object) -> str:
    try:
        return validate_parser_run_id(value)
    except InvalidParserRunId as error:
        raise InvalidDeletionRequest(str(error)) from None
