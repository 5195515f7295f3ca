"""``make run``'s demo, run as the Makefile runs it (its own process), at a small size: its summary adds up, per
tenant, and neither tenant reached the other's runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_accounts_for_every_id(tmp_path: Path) -> None:
    # Given the demo at a small size, with two receives before a message is dead-lettered
    summary_file = tmp_path / "summary.json"
    command = [
        sys.executable,
        "-m",
        "devstack.demo",
        "--size",
        "40",
        "--visibility-timeout",
        "4",
        "--parameter",
        "MaxReceiveCount=2",
        "--summary-json",
        str(summary_file),
    ]

    # When it runs to the end
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    result = subprocess.run(command, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=150)

    # Then it exits 0 and says its summary adds up
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adds up" in result.stdout and "DOES NOT" not in result.stdout
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    acme, globex = summary["tenants"]["acme"]["queue_path"], summary["tenants"]["globex"]["queue_path"]
    bulk = summary["bulk"]
    # every valid id each tenant queued ended deleted, not found or in the DLQ, and nothing is left
    for tenant_id, path in (("acme", acme), ("globex", globex)):
        assert bulk[tenant_id]["queued"] == summary["tenants"][tenant_id]["bulk_ids"]
        assert path.get("unaccounted", 0) == 0
        assert path.get("deleted", 0) + path.get("not_found", 0) + path.get("in_dlq", 0) == bulk[tenant_id]["queued"]
    assert summary["still_queued"] == 0
    assert bulk["acme"]["rejected"] == 3 and bulk["globex"]["rejected"] == 0
    # neither tenant deleted a run it does not own: each one it asked for is still in Extend, and globex (the
    # metadata policy) never sent a DELETE for the other customer's runs
    for tenant_id, report in summary["others_runs"].items():
        assert report["asked"] >= 3 and report["still_there"] == report["asked"], tenant_id
        assert report["deleted_by_extend"] == 0, tenant_id
    assert summary["others_runs"]["globex"]["deletes_sent"] == 0
    assert globex["not_found"] >= 6 and acme["not_found"] >= 3
    # a cross-tenant DELETE looked exactly like a missing id; a replay got the first answer, with one DELETE sent;
    # the other tenant's secret got 401 and no API key 403
    single = summary["single"]
    assert single["cross_tenant_single"] == {"status": 404, "body_as_missing": True}
    assert single["replay"] == {"same_answer": True, "marked": True, "extend_deletes": 1}
    assert single["refusals"] == {"no_api_key": 403, "other_tenants_secret": 401}
    # every request was followed to its end through GET /deletions/{id}, the ledger's receipts agree with the
    # emulator and the queues, and each tenant was told of each completed request with a signature that verifies
    ledger = summary["ledger"]
    assert set(ledger["statuses"].values()) <= {"completed", "completed_with_failures"}
    assert ledger["totals"]["acme"]["deleted"] == acme["deleted"] + single["acme"]["deleted"]
    assert ledger["totals"]["acme"]["dead_lettered"] == acme["in_dlq"]
    assert ledger["totals"]["globex"]["not_found"] == globex["not_found"] + single["globex"]["not_found"]
    assert all(totals.get("queued", 0) == 0 for totals in ledger["totals"].values())
    callbacks = summary["callbacks"]
    assert callbacks["completed"] == len(ledger["statuses"]) >= 4
    assert callbacks["verified"] == callbacks["completed"]
    # the permanent 403s were dead-lettered with their reason, and so were the malformed messages
    reasons = summary["dlq"]["reasons"]
    assert acme["in_dlq"] == summary["faults"]["403 permanent"] == 2
    assert sum(count for reason, count in reasons.items() if reason.startswith("permanent: ")) >= 2
    assert sum(count for reason, count in reasons.items() if reason.startswith("invalid: ")) >= 2
    # and the EMF totals agree with the systems' state
    metrics = summary["metrics"]
    deleted = acme["deleted"] + globex["deleted"] + single["acme"]["deleted"] + single["globex"]["deleted"]
    beyond = summary["beyond"]
    # and, beyond one parse run: the document's run then its file, each recorded as its own item; a dry run that
    # sent no DELETE and found what exists; a cancel halfway that kept what was done and sent nothing after it
    document, dry, cancel = beyond["document"], beyond["dry_run"], beyond["cancel"]
    assert document["status"] == "completed" and document["both_gone"] and document["file_deleted_after_run"]
    assert set(document["items"].values()) == {"deleted"} and len(document["items"]) == 2
    assert dry["deletes_sent"] == 0 and dry["still_there"]
    assert sorted(dry["outcomes"].values()) == ["not_found", "would_delete", "would_delete"]
    assert (cancel["status"], cancel["sent_after_cancel"], cancel["held_still_there"]) == ("cancelled", 0, True)
    assert (cancel["deleted"], cancel["cancelled"]) == (3, 3)
    assert beyond["sweep"]["ok"] is True
    assert metrics["ParserRunDeleted"] == deleted + len(document["items"]) + cancel["deleted"]
    assert metrics["DeletionCancelled"] >= cancel["cancelled"]  # at the cancel, and each message consumed unsent
    assert metrics["DryRunWouldDelete"] == 2
    beyond_queued = 1 + len(dry["outcomes"]) + cancel["deleted"] + cancel["cancelled"]  # the document's run
    assert metrics["ParserRunDeletionQueued"] == bulk["acme"]["queued"] + bulk["globex"]["queued"] + beyond_queued
    assert metrics["ParserRunDeadLettered"] >= 4  # more only if a slow invocation outlived the visibility timeout
    assert metrics["ExtendThrottled"] >= summary["faults"]["429 Retry-After 1"]
    assert metrics["OwnershipRefused"] == 4  # globex: the other customer's run singly, and three in bulk
    assert metrics["SignedRequestReplayed"] == 1
    # and its output names the template's four functions, and lists the injected faults as a table: a row per
    # kind, with its count
    functions = re.findall(r"^    (\w+Function)  +(?:API Gateway|SQS|Schedule) ", result.stdout, re.MULTILINE)
    assert sorted(functions) == ["ApiFunction", "CallbackFunction", "QueueFunction", "SweeperFunction"]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("fault injected "))
    rows = [re.fullmatch(r"   (\S.*?) {2,}(\d+)  (\S.*)", line) for line in lines[header + 1 :]]
    table = [row for row in rows[: next(i for i, row in enumerate(rows) if row is None)] if row is not None]
    assert {row.group(1): int(row.group(2)) for row in table} == summary["faults"]
    # and the Extend key it generated never appeared in its output or in the functions' logs
    named = re.search(r"function logs (\S+)", result.stdout)
    assert named, "the demo did not name its function log file"
    log_file = Path(named.group(1))
    try:
        assert "sk_local_" not in result.stdout + result.stderr
        assert "sk_local_" not in log_file.read_text(encoding="utf-8")
        assert '"outcome"' in log_file.read_text(encoding="utf-8")
    finally:
        log_file.unlink()
