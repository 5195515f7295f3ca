"""The demo's sixth step, beyond one parse run: acme deletes a document (a run and its source file), runs a dry run,
and cancels a request halfway; then the sweeper's hour comes. Each is checked against the emulator's request log,
not against what the service says of itself."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from devstack.demo.plan import ACME_WORKSPACE
from devstack.demo.tenant_client import HttpReply, TenantClient
from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.local_deployment import LocalDeployment

if TYPE_CHECKING:  # rendering imports the summary, which imports this module
    from devstack.demo.rendering import Console

DOCUMENT_RUN, DOCUMENT_FILE = "parser_run_document_1", "file_document_1"
DRY_RUN_IDS = ("parser_run_dry_1", "file_dry_1", "parser_run_dry_absent")
CANCEL_DONE = tuple(f"parser_run_cancel_done_{n}" for n in range(3))
CANCEL_HELD = tuple(f"parser_run_cancel_held_{n}" for n in range(3))
FINAL = {"completed", "completed_with_failures", "cancelled"}
QUIET_TENANT, LEAKED = "quiet", 3


def seed(emulator: ExtendEmulator) -> None:
    emulator.seed([DOCUMENT_RUN], ACME_WORKSPACE, file_id=DOCUMENT_FILE)
    emulator.seed_file(DOCUMENT_FILE, ACME_WORKSPACE)
    emulator.seed([DRY_RUN_IDS[0]], ACME_WORKSPACE)
    emulator.seed_file(DRY_RUN_IDS[1], ACME_WORKSPACE)
    emulator.seed([*CANCEL_DONE, *CANCEL_HELD], ACME_WORKSPACE)


def beyond(
    console: Console, stack: LocalDeployment, emulator: ExtendEmulator, acme: TenantClient, *, timeout_s: float
) -> dict[str, Any]:
    seed(emulator)
    console.line("6. Beyond one parse run")
    return {
        "document": _document(console, emulator, acme, timeout_s),
        "dry_run": _dry_run(console, emulator, acme, timeout_s),
        "cancel": _cancel(console, stack, emulator, acme, timeout_s),
        "sweep": _sweep(console, stack),
    }


def _document(console: Console, emulator: ExtendEmulator, acme: TenantClient, timeout_s: float) -> dict[str, Any]:
    reply = acme.send("DELETE", f"/parser_runs/{DOCUMENT_RUN}?include=file")
    final = _until_final(acme, reply, timeout_s)
    calls = [(r.method, r.path) for r in emulator.requests if r.parser_run_id in (DOCUMENT_RUN, DOCUMENT_FILE)]
    outcomes = {item["id"]: (item["resource"], item["outcome"]) for item in final.get("items", [])}
    console.line(
        f"   acme   DELETE /parser_runs/{DOCUMENT_RUN}?include=file -> {reply.status}; the request "
        f"{final.get('status')}: " + ", ".join(f"{rid} ({res}) {out}" for rid, (res, out) in outcomes.items())
    )
    console.line("          Extend saw: " + ", ".join(f"{method} {path}" for method, path in calls))
    deletes = [path for method, path in calls if method == "DELETE"]
    run_deleted = next((n for n, path in enumerate(deletes) if path.endswith(f"/{DOCUMENT_RUN}")), None)
    file_deleted = next((n for n, path in enumerate(deletes) if path == f"/files/{DOCUMENT_FILE}"), None)
    return {
        "status": final.get("status"),
        "both_gone": not emulator.exists(DOCUMENT_RUN, ACME_WORKSPACE)
        and not emulator.exists(DOCUMENT_FILE, ACME_WORKSPACE),
        "file_deleted_after_run": run_deleted is not None and file_deleted is not None and file_deleted > run_deleted,
        "items": {rid: out for rid, (_, out) in outcomes.items()},
    }


def _dry_run(console: Console, emulator: ExtendEmulator, acme: TenantClient, timeout_s: float) -> dict[str, Any]:
    body = json.dumps({"ids": list(DRY_RUN_IDS), "dryRun": True}).encode()
    reply = acme.send("POST", "/deletions", body)
    final = _until_final(acme, reply, timeout_s)
    deletes = [r for r in emulator.requests if r.parser_run_id in DRY_RUN_IDS and r.method == "DELETE"]
    outcomes = {item["id"]: item["outcome"] for item in final.get("items", [])}
    console.line(
        f"   acme   POST /deletions dry run of {len(DRY_RUN_IDS)} ids -> {reply.status}; "
        + ", ".join(f"{rid} {out}" for rid, out in outcomes.items())
        + f"; DELETEs sent: {len(deletes)}"
    )
    return {
        "status": final.get("status"),
        "outcomes": outcomes,
        "deletes_sent": len(deletes),
        "still_there": all(emulator.exists(rid, ACME_WORKSPACE) for rid in DRY_RUN_IDS[:2]),
    }


def _cancel(
    console: Console, stack: LocalDeployment, emulator: ExtendEmulator, acme: TenantClient, timeout_s: float
) -> dict[str, Any]:
    # The held runs' DELETEs fail (503) until the cancel: the request is half done when it arrives.
    for run in CANCEL_HELD:
        emulator.inject(run, *[Fault.status(503)] * 200)
    body = json.dumps({"parserRunIds": [*CANCEL_DONE, *CANCEL_HELD]}).encode()
    reply = acme.send("POST", "/deletions", body)
    request_id = str(reply.body["deletionRequestId"]) if isinstance(reply.body, dict) else ""
    deadline = time.monotonic() + timeout_s
    status = acme.status(request_id)
    while status.body.get("counts", {}).get("deleted", 0) < len(CANCEL_DONE) and time.monotonic() < deadline:
        time.sleep(0.25)
        status = acme.status(request_id)
    # Halfway: the done runs deleted, the held ones' messages back on the queue for a retry, none being worked on.
    while stack.queue_pool is not None and stack.queue_pool.busy and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled = acme.send("POST", f"/deletions/{request_id}/cancel")
    cancelled_at = time.time()
    final = _until_final(acme, cancelled, timeout_s)
    _until_drained(stack, deadline)  # the held runs' messages come back, and are consumed unsent
    emulator.clear_faults()
    sent_after = [r for r in emulator.requests if r.parser_run_id in CANCEL_HELD and r.timestamp > cancelled_at]
    counts = final.get("counts", {})
    console.line(
        f"   acme   POST /deletions/{request_id}/cancel -> {cancelled.status} "
        f"(cancelled {cancelled.body.get('cancelled') if isinstance(cancelled.body, dict) else '?'}); the request "
        f"{final.get('status')}: deleted {counts.get('deleted')}, cancelled {counts.get('cancelled')}; "
        f"DELETEs sent after the cancel: {len(sent_after)}"
    )
    return {
        "status": final.get("status"),
        "deleted": counts.get("deleted", 0),
        "cancelled": counts.get("cancelled", 0),
        "sent_after_cancel": len(sent_after),
        "held_still_there": all(emulator.exists(run, ACME_WORKSPACE) for run in CANCEL_HELD),
    }


def _sweep(console: Console, stack: LocalDeployment) -> dict[str, Any]:
    # A quiet tenant whose count a crashed intake left at 3 (reserved, then nothing recorded): the sweeper's to mend.
    from devstack.moto_stack import aws_client  # noqa: PLC0415
    from parser_run_deleter.adapters.ledger_table import LedgerTable  # noqa: PLC0415

    stack.register_tenant(QUIET_TENANT, ownership="workspace", workspace_id="ws_quiet")
    table = stack.table_names["LedgerTable"]
    ledger = LedgerTable(table, retention_days=400, client=aws_client("dynamodb", stack.moto_endpoint))
    ledger.add_outstanding(QUIET_TENANT, LEAKED)
    result = stack.run_schedule("SweeperFunction")
    payload = result.payload if result.ok and isinstance(result.payload, dict) else {}
    console.line(
        f"   the sweeper's hour: {'ran' if result.ok else 'FAILED'}; expired runs {payload.get('expiredRuns')}, "
        f"overdue requests {payload.get('overdueRequests')}, repaired caps {payload.get('repairedTenants')}"
    )
    return {"ok": result.ok, "quiet_outstanding_after": ledger.outstanding(QUIET_TENANT), **payload}


def _until_drained(stack: LocalDeployment, deadline: float) -> None:
    while time.monotonic() < deadline:
        depths = stack.queue_depths()
        if depths["visible"] == depths["in_flight"] == depths["delayed"] == 0:
            return
        time.sleep(0.25)


def _until_final(client: TenantClient, reply: HttpReply, timeout_s: float) -> dict[str, Any]:
    """The request ``reply`` names, once it has ended (or when time is up)."""
    request_id = reply.body.get("deletionRequestId") if isinstance(reply.body, dict) else None
    if not isinstance(request_id, str):
        return {}
    deadline = time.monotonic() + timeout_s
    status = client.status(request_id)
    while status.body.get("status") not in FINAL and time.monotonic() < deadline:
        time.sleep(0.25)
        status = client.status(request_id)
    return dict(status.body) if isinstance(status.body, dict) else {}


def beyond_adds_up(summary: dict[str, Any]) -> bool:
    """The document and its file are gone, the file after the run; the dry run deleted nothing and found what
    exists; the cancel kept what was done and sent nothing after it; the sweeper ran."""
    beyond_summary = summary.get("beyond")
    if not isinstance(beyond_summary, dict):
        return False
    document, dry, cancel, sweep = (beyond_summary.get(key, {}) for key in ("document", "dry_run", "cancel", "sweep"))
    return all(
        [
            document.get("status") == "completed" and document.get("both_gone") is True,
            document.get("file_deleted_after_run") is True,
            dry.get("deletes_sent") == 0 and dry.get("still_there") is True,
            dry.get("outcomes") == dict(zip(DRY_RUN_IDS, ("would_delete", "would_delete", "not_found"), strict=True)),
            cancel.get("status") == "cancelled" and cancel.get("sent_after_cancel") == 0,
            cancel.get("deleted") == len(CANCEL_DONE) and cancel.get("cancelled") == len(CANCEL_HELD),
            cancel.get("held_still_there") is True,
            sweep.get("ok") is True,
            QUIET_TENANT in sweep.get("repairedTenants", []) and sweep.get("quiet_outstanding_after") == 0,
        ]
    )
