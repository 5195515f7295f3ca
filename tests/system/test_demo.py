"""``make run``'s demo, run as the Makefile runs it (its own process), at a small size: its summary adds up."""

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
    path, bulk = summary["queue_path"], summary["bulk"]
    # every valid id the bulk request queued ended deleted, not found or in the DLQ, and nothing is left
    assert bulk["queued"] == summary["bulk_ids"]
    assert path.get("unaccounted", 0) == 0 and summary["still_queued"] == 0
    assert path["deleted"] + path["not_found"] + path["in_dlq"] == bulk["queued"]
    assert bulk["rejected"] == 3
    # the permanent 403s were dead-lettered with their reason, and so were the malformed messages
    reasons = summary["dlq"]["reasons"]
    assert path["in_dlq"] == summary["faults"]["403 permanent"] == 2
    assert sum(count for reason, count in reasons.items() if reason.startswith("permanent: ")) >= 2
    assert sum(count for reason, count in reasons.items() if reason.startswith("invalid: ")) >= 2
    # and the EMF totals agree with the systems' state
    metrics = summary["metrics"]
    assert metrics["ParserRunDeleted"] == path["deleted"] + summary["single"]["deleted"]
    assert metrics["ParserRunDeletionQueued"] == bulk["queued"]
    assert metrics["ParserRunDeadLettered"] >= 4  # more only if a slow invocation outlived the visibility timeout
    assert metrics["ExtendThrottled"] >= summary["faults"]["429 Retry-After 1"]
    # and the Extend key it generated never appeared in its output or in the functions' logs
    log_file = Path(re.search(r"function logs (\S+)", result.stdout).group(1))
    try:
        assert "sk_local_" not in result.stdout + result.stderr
        assert "sk_local_" not in log_file.read_text(encoding="utf-8")
        assert '"outcome"' in log_file.read_text(encoding="utf-8")
    finally:
        log_file.unlink()
