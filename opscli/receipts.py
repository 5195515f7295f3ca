"""``receipts``: a tenant's deletion receipts from the ledger, for an auditor: one line per item (a run of any type,
or a file) of each of its deletion requests (who asked, when, the request's status and due date, what became of
the item, when, and Extend's request id), streamed as JSON lines or CSV, oldest request first, or as one web page
(``receipts_html``). Progress goes to stderr, so stdout is the export alone."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from opscli.receipts_html import render_report
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import RequestRecord, RunRecord
from parser_run_deleter.shared.timestamps import now_iso

COLUMNS = (
    "tenantId",
    "deletionRequestId",
    "trigger",
    "requestedAt",
    "requestedBy",
    "requestStatus",
    "dueBy",
    "overdue",
    "resource",
    "itemId",
    "parserRunId",
    "outcome",
    "completedAt",
    "attempts",
    "extendStatus",
    "extendRequestId",
    "reason",
)


def receipt(request: RequestRecord, run: RunRecord) -> dict[str, Any]:
    audit = request.audit
    return {
        "tenantId": request.tenant_id,
        "deletionRequestId": request.request_id,
        "trigger": request.trigger.value,
        "requestedAt": request.created_at,
        # Who asked, as recorded: the caller's API key id, an operator's name, or the request's own id.
        "requestedBy": audit.get("callerApiKeyId") or audit.get("requestedBy") or audit.get("requestId"),
        "requestStatus": request.status().value,
        "dueBy": request.due_by,
        "overdue": request.overdue(),
        # Extend's resource type (None for items recorded before types were); the id, under both names.
        "resource": run.resource,
        "itemId": run.parser_run_id,
        "parserRunId": run.parser_run_id,
        "outcome": run.outcome.value,
        "completedAt": run.completed_at,
        "attempts": run.attempts,
        "extendStatus": run.extend_status,
        "extendRequestId": run.extend_request_id,
        "reason": run.reason,
    }


def receipts(
    ledger: Ledger, tenant_id: str | None, *, since: str = ""
) -> Iterator[tuple[RequestRecord, dict[str, Any]]]:
    """Every run of the tenant's requests made at ``since`` or later (None: operators'), request by request."""
    for request in ledger.requests_of(tenant_id, since=since):
        for run in ledger.all_runs(request.request_id):
            yield request, receipt(request, run)


def export(
    ledger: Ledger, tenant_id: str | None, out: TextIO, err: TextIO, *, since: str = "", output_format: str = "jsonl"
) -> tuple[int, int]:
    """Write the receipts to ``out``; (requests, receipts) written. A progress line per 100 requests on ``err``.
    ``html``: the auditor's report (opscli.receipts_html), one page written once every receipt is read."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore") if output_format == "csv" else None
    if writer is not None:
        writer.writeheader()
    collected: list[dict[str, Any]] | None = [] if output_format == "html" else None
    requests = lines = 0
    last: str | None = None
    for request, line in receipts(ledger, tenant_id, since=since):
        if request.request_id != last:
            requests += 1
            last = request.request_id
            if requests % 100 == 0:
                err.write(f"receipts: {requests} requests, {lines} runs so far (at {request.created_at})\n")
        if collected is not None:
            collected.append(line)
        elif writer is not None:
            writer.writerow({name: "" if value is None else value for name, value in line.items()})
        else:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
        lines += 1
    if collected is not None:
        whose = f"tenant {tenant_id}" if tenant_id is not None else "the operators' deletions"
        title = f"Deletion receipts: {whose}" + (f", requests since {since}" if since else "")
        out.write(render_report(collected, generated_at=now_iso(), title=title))
    err.write(f"receipts: {requests} requests, {lines} runs\n")
    return requests, lines
