"""The auditor's report (``extend-deleter receipts --format html``) opened in a real headless browser.

Debian's Chromium, driven by Playwright from ``.tools/browser`` (``make browser``), through tools/browser_check.py,
which says what the page attempted (network requests, console errors, dialogs, policy violations) and what it
shows. Two pages: one the CLI exported from receipts recorded in the ledger (moto's DynamoDB), and one rendered
from receipts with every key the export may carry (resource, itemId, requestStatus, dueBy, overdue) across
tenants and days, cancelled and overdue requests among them. Both carry callers' values that look like markup.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Final

import pytest

from devstack.moto_stack import aws_client
from opscli.cli import main
from opscli.receipts_html import render_report
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import RequestTrigger, RunRecord
from parser_run_deleter.logic.outcomes import Outcome
from tests.support.stacks import create_tables

REPOSITORY: Final = Path(__file__).resolve().parents[2]
BROWSER_PYTHON: Final = REPOSITORY / ".tools" / "browser" / "bin" / "python"
BROWSER_CHECK: Final = REPOSITORY / "tools" / "browser_check.py"
CHROMIUM: Final = Path("/usr/bin/chromium")  # Debian's package, as tools/browser_check.py launches it

XSS_TAG: Final = "<img src=x onerror=alert(1)>"
XSS_SCRIPT: Final = "</script><script>alert(2)</script>"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------------- helpers


def browser_check(report: Path, screenshot: Path, *queries: str, fragment: str | None = None) -> dict[str, Any]:
    """What the browser made of the page (tools/browser_check.py's JSON)."""
    missing = [str(path) for path in (BROWSER_PYTHON, CHROMIUM) if not path.exists()]
    if missing:
        pytest.fail(f"the browser test needs {' and '.join(missing)}: run `make browser`", pytrace=False)
    command = [str(BROWSER_PYTHON), str(BROWSER_CHECK), str(report), str(screenshot)]
    for query in queries:
        command += ["--query", query]
    if fragment is not None:
        command += ["--fragment", fragment]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPOSITORY, check=False)
    assert completed.returncode == 0, f"browser_check failed ({completed.returncode}): {completed.stderr}"
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def day(line: dict[str, Any]) -> str:
    return str(line.get("completedAt") or line["requestedAt"])[:10]


def item(line: dict[str, Any]) -> str:
    return str(line.get("itemId") or line["parserRunId"])


def matching(lines: list[dict[str, Any]], query: str) -> list[tuple[str, str]]:
    """(request, item) of the receipts with the text in any of their values, in any case: what a search shows."""
    needle = query.strip().lower()
    return sorted(
        (line["deletionRequestId"], item(line))
        for line in lines
        if any(needle in str(value).lower() for value in line.values() if value is not None)
    )


def shown(page: dict[str, Any], rows: list[list[str]]) -> list[tuple[str, str]]:
    """(request, item) of the rows the receipts table shows."""
    columns = page["receiptColumns"]
    request, item_column = columns.index("Request"), columns.index("Item")
    return sorted((row[request], row[item_column]) for row in rows)


def flagged(lines: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The requests the report must list, with why: any receipt overdue, or its request cancelled."""
    flags: dict[str, set[str]] = {}
    for line in lines:
        if line.get("overdue") is True:
            flags.setdefault(line["deletionRequestId"], set()).add("overdue")
        if line.get("requestStatus") == "cancelled":
            flags.setdefault(line["deletionRequestId"], set()).add("cancelled")
    return {request: sorted(why) for request, why in flags.items()}


def assert_fetched_nothing_and_ran_clean(result: dict[str, Any]) -> None:
    assert result["requests"] == [], "the page tried to fetch something"
    assert result["consoleErrors"] == [] and result["pageErrors"] == []
    assert result["cspViolations"] == [] and result["dialogs"] == []
    assert result["page"]["images"] == 0


def assert_shows_the_lines(result: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """The page's numbers, chart and lists agree with the receipts it was made from."""
    page = result["page"]
    # header: the totals
    assert page["totals"]["receipts"] == len(lines)
    assert page["totals"]["requests"] == len({line["deletionRequestId"] for line in lines})
    assert page["totals"]["tenants"] == len({line["tenantId"] for line in lines})
    # (1) the summary: per tenant and outcome ("—" is a receipt without a tenant: the operators')
    expected: dict[str, Counter[str]] = {}
    for line in lines:
        expected.setdefault(line["tenantId"] or "—", Counter())[line["outcome"]] += 1
    outcomes = {line["outcome"] for line in lines}
    assert page["summary"] == {
        tenant: {outcome: counts[outcome] for outcome in outcomes} for tenant, counts in expected.items()
    }
    # (2) the chart: a bar per day with receipts, as tall as its count, a title for hover; a legend entry per outcome
    per_day = Counter(day(line) for line in lines)
    assert {bar["day"]: bar["total"] for bar in page["bars"]} == dict(per_day)
    for bar in page["bars"]:
        assert sum(bar["segments"].values()) == bar["total"] and bar["height"] > 0
        assert bar["title"].startswith(f"{bar['day']}: {bar['total']} receipt")
    tallest = max(page["bars"], key=lambda bar: bar["total"])
    assert all(bar["height"] <= tallest["height"] + 0.01 for bar in page["bars"])
    assert sorted(entry.split(" (")[0] for entry in page["legend"]) == sorted(outcomes)
    # (3) the overdue and cancelled requests, and no others
    listed = {row["requestId"]: sorted(row["flags"]) for row in page["attention"]}
    assert listed == flagged(lines)
    for flag in ("overdue", "cancelled"):
        assert page["totals"][flag] == sum(flag in why for why in listed.values())
    assert page["attentionNone"] == (not listed)
    # (4) every receipt, all shown at first
    assert page["receiptRows"] == page["visibleRows"] == len(lines)
    assert page["shownCount"] == f"Showing {len(lines)} of {len(lines)} receipts" and page["more"] is None
    assert shown(page, page["visible"]) == matching(lines, "")


def assert_searches_filter_to_exactly_the_matching_rows(result: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    page = result["page"]
    for search in result["queries"]:
        expected = matching(lines, search["query"])
        assert shown(page, search["visible"]) == expected, search["query"]
        assert search["shownCount"] == f"Showing {len(expected)} of {len(lines)} receipts"
        assert search["noMatchShown"] == (not expected)
        assert search["hash"].startswith("#q=")  # the address now carries the search, to share
    assert result["cleared"]["visibleRows"] == len(lines)


def assert_png(screenshot: Path) -> None:
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height > 1000, (width, height)  # the full page, not the viewport alone


# ---------------------------------------------------------------------------------------------------- the CLI's report


def test_the_report_the_cli_exports_from_the_ledger_shows_its_receipts_and_fetches_nothing(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tables = create_tables(moto_endpoint)
    monkeypatch.setenv("LEDGER_TABLE_NAME", tables.ledger_table)
    ledger = Ledger(LedgerTable(tables.ledger_table, retention_days=400, client=aws_client("dynamodb", moto_endpoint)))

    def request(tenant: str, audit: dict[str, str], runs: dict[str, tuple[Outcome, str | None, str | None]]) -> str:
        """A bulk request taken in, whose runs then reached their (outcome, completedAt, reason)."""
        recorded = ledger.begin(tenant, RequestTrigger.API_BULK, audit, reserve=len(runs))
        ledger.take_in(recorded, [RunRecord(run_id, Outcome.QUEUED) for run_id in runs])
        for run_id, (outcome, completed_at, reason) in runs.items():
            if outcome is not Outcome.QUEUED:
                run = RunRecord(
                    run_id,
                    outcome,
                    attempts=3 if outcome is Outcome.FAILED else 1,
                    extend_status=500 if outcome is Outcome.FAILED else 200,
                    extend_request_id=f"req_{run_id}",
                    reason=reason,
                    completed_at=completed_at,
                )
                ledger.record_outcome(recorded.request_id, run, tenant_id=tenant)
        return recorded.request_id

    first = request(
        "acme",
        {"callerApiKeyId": "k1a2b3c4d5"},
        {
            "parser_run_a1": (Outcome.DELETED, "2026-03-02T10:00:00.000Z", None),
            "parser_run_a2": (Outcome.NOT_FOUND, "2026-03-03T11:00:00.000Z", None),
            "parser_run_a3": (Outcome.DELETED, "2026-03-03T11:00:01.000Z", None),
        },
    )
    second = request(
        "acme",
        {"requestedBy": XSS_TAG},  # who asked, as the caller put it
        {
            "parser_run_b1": (Outcome.FAILED, "2026-03-03T12:00:00.000Z", f"Extend answered 500 {XSS_SCRIPT}"),
            "parser_run_b2": (Outcome.QUEUED, None, None),  # not settled: on the day it was requested
        },
    )
    request("globex", {"callerApiKeyId": "g1h2i3j4k5"}, {"parser_run_z": (Outcome.DELETED, None, None)})

    out, err = io.StringIO(), io.StringIO()
    assert main(["receipts", "--tenant", "acme", "--format", "html"], out=out, err=err) == 0
    assert "receipts: 2 requests, 5 runs" in err.getvalue()  # progress on stderr, as for the other formats
    report = tmp_path / "acme-receipts.html"
    report.write_text(out.getvalue(), encoding="utf-8")
    jsonl = io.StringIO()
    assert main(["receipts", "--tenant", "acme"], out=jsonl, err=io.StringIO()) == 0
    lines = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    assert len(lines) == 5 and {line["deletionRequestId"] for line in lines} == {first, second}

    screenshot = tmp_path / "acme-receipts.png"
    result = browser_check(report, screenshot, second, "extend answered 500", fragment=first)

    assert_fetched_nothing_and_ran_clean(result)
    assert_shows_the_lines(result, lines)
    assert_searches_filter_to_exactly_the_matching_rows(result, lines)
    assert result["page"]["heading"] == "Deletion receipts: tenant acme"
    # the caller's markup is text: shown as typed, in every row of its request
    columns = result["page"]["receiptColumns"]
    by_request = {row[columns.index("Request")]: row for row in result["page"]["visible"]}
    assert by_request[second][columns.index("Requested by")] == XSS_TAG
    failed = next(row for row in result["page"]["visible"] if row[columns.index("Item")] == "parser_run_b1")
    assert failed[columns.index("Reason")] == f"Extend answered 500 {XSS_SCRIPT}"
    # a view shared as #q=<request id> opens filtered to that request
    assert result["fragment"]["searchValue"] == first
    assert shown(result["page"], result["fragment"]["visible"]) == matching(lines, first)
    assert_png(screenshot)


# ---------------------------------------------------------------------------------------------------- every key


def receipts_with_every_key() -> list[dict[str, Any]]:
    """Receipts as the export gives them with its new keys: three tenants over six days, parse runs and files,
    a cancelled request, an overdue one, one both, and some receipts without the new keys at all."""
    lines: list[dict[str, Any]] = []

    def add(tenant: str, request: str, day_of_month: int, status: str | None, *runs: dict[str, Any]) -> None:
        requested_at = f"2026-03-{day_of_month:02d}T09:15:00.000Z"
        for index, run in enumerate(runs):
            line: dict[str, Any] = {
                "tenantId": tenant,
                "deletionRequestId": request,
                "trigger": "api_bulk",
                "requestedAt": requested_at,
                "requestedBy": run.pop("requestedBy", f"key_{tenant}"),
                "parserRunId": f"parser_run_{request[-4:]}{index:02d}",
                "outcome": "deleted",
                "completedAt": f"2026-03-{day_of_month:02d}T09:16:{index:02d}.000Z",
                "attempts": 1,
                "extendStatus": 200,
                "extendRequestId": f"req_{request[-4:]}{index:02d}",
                "reason": None,
            }
            if status is not None:
                line |= {"requestStatus": status, "dueBy": f"2026-04-{day_of_month:02d}T09:15:00.000Z"}
                line |= {"overdue": False, "resource": "parse_runs"}
            line |= run
            if line["outcome"] in ("queued", "cancelled", "would_delete"):
                line |= {"completedAt": None if line["outcome"] == "queued" else line["completedAt"]}
                line |= {"extendStatus": None, "extendRequestId": None}
            lines.append(line)

    unavailable = "Extend answered 503 Service Unavailable three times"
    add("acme", "dr_01m9a0acme0001", 2, "completed", {}, {"outcome": "not_found", "extendStatus": 404}, {})
    add("acme", "dr_01m9a0acme0002", 3, "completed_with_failures", {},
        {"outcome": "failed", "extendStatus": 503, "attempts": 3, "reason": unavailable})  # fmt: skip
    add("acme", "dr_01m9a0acme0003", 4, "in_progress",
        {"outcome": "queued", "overdue": True, "dueBy": "2026-03-05T09:15:00.000Z"},
        {"outcome": "deleted"})  # fmt: skip
    add("globex", "dr_01m9a0glbx0004", 4, "cancelled",
        {"outcome": "cancelled", "resource": "files", "itemId": "file_9QxT2", "requestedBy": XSS_TAG},
        {"outcome": "deleted", "resource": "files", "itemId": "file_7KpL0", "requestedBy": XSS_TAG,
         "reason": XSS_SCRIPT})  # fmt: skip
    add("globex", "dr_01m9a0glbx0005", 6, "completed_with_failures",
        {"outcome": "dead_lettered", "reason": unavailable, "extendStatus": 503, "attempts": 5},
        {"outcome": "rejected", "reason": "not a run of this tenant's workspace", "extendStatus": None})  # fmt: skip
    add("initech", "dr_01m9a0init0006", 7, "cancelled",
        {"outcome": "would_delete", "overdue": True}, {"outcome": "cancelled"})  # fmt: skip
    add("initech", "dr_01m9a0init0007", 7, None, {}, {"outcome": "not_found", "extendStatus": 404})
    return lines


def test_the_report_of_every_kind_of_receipt_lists_the_overdue_and_cancelled_and_searches_rows(
    tmp_path: Path,
) -> None:
    lines = receipts_with_every_key()
    report = tmp_path / "receipts.html"
    report.write_text(
        render_report(lines, generated_at="2026-03-20T10:00:00.000Z", title="Deletion receipts: every tenant"),
        encoding="utf-8",
    )
    screenshot = tmp_path / "receipts.png"
    queries = ("dr_01m9a0acme0002", "SERVICE UNAVAILABLE", XSS_TAG, "file_7KpL0", "no receipt says this")
    result = browser_check(report, screenshot, *queries, fragment="initech")

    assert_fetched_nothing_and_ran_clean(result)
    assert_shows_the_lines(result, lines)
    assert_searches_filter_to_exactly_the_matching_rows(result, lines)
    page = result["page"]
    assert set(page["summary"]) == {"acme", "globex", "initech"}
    assert flagged(lines) == {
        "dr_01m9a0acme0003": ["overdue"],
        "dr_01m9a0glbx0004": ["cancelled"],
        "dr_01m9a0init0006": ["cancelled", "overdue"],
    }  # the fixture has what the report must list
    assert len(page["bars"]) == 5 and len(page["legend"]) == 8  # days 2, 3, 4, 6, 7; every outcome there is
    # the caller's markup is text, in the list of cancelled requests and in the table
    cancelled = next(row for row in page["attention"] if row["requestId"] == "dr_01m9a0glbx0004")
    assert XSS_TAG in cancelled["cells"]
    columns = page["receiptColumns"]
    typed = next(search for search in result["queries"] if search["query"] == XSS_TAG)
    assert {row[columns.index("Requested by")] for row in typed["visible"]} == {XSS_TAG}
    file_row = next(search for search in result["queries"] if search["query"] == "file_7KpL0")["visible"]
    assert [row[columns.index("Reason")] for row in file_row] == [XSS_SCRIPT]
    # keys a receipt lacks read "—"
    plain = next(row for row in page["visible"] if row[columns.index("Request")] == "dr_01m9a0init0007")
    assert [plain[columns.index(name)] for name in ("Resource", "Request status", "Due by", "Overdue")] == ["—"] * 4
    # #q=initech opens the view of that tenant's receipts alone
    assert result["fragment"]["searchValue"] == "initech"
    assert shown(page, result["fragment"]["visible"]) == matching(lines, "initech")
    assert_png(screenshot)


# ---------------------------------------------------------------------------------------------------- many receipts


def test_a_large_report_shows_its_first_rows_and_searches_every_receipt(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = [
        {
            "tenantId": "acme",
            "deletionRequestId": f"dr_01m9b0bulk{index // 500:04d}",
            "trigger": "api_bulk",
            "requestedAt": f"2026-03-{1 + index // 500:02d}T09:00:00.000Z",
            "requestedBy": "key_acme",
            "parserRunId": f"parser_run_bulk{index:05d}",
            "outcome": "not_found" if index % 10 == 0 else "deleted",
            "completedAt": f"2026-03-{1 + index // 500:02d}T09:30:00.000Z",
            "attempts": 1,
            "extendStatus": 404 if index % 10 == 0 else 200,
            "extendRequestId": f"req_bulk{index:05d}",
            "reason": None,
        }
        for index in range(2500)
    ]
    report = tmp_path / "bulk.html"
    report.write_text(render_report(lines, generated_at="2026-03-20T10:00:00.000Z", title="bulk"), encoding="utf-8")
    last, request = str(lines[-1]["parserRunId"]), str(lines[-1]["deletionRequestId"])
    result = browser_check(report, tmp_path / "bulk.png", last, request)

    assert_fetched_nothing_and_ran_clean(result)
    page = result["page"]
    assert page["totals"] == {"requests": 5, "receipts": 2500, "tenants": 1, "overdue": 0, "cancelled": 0}
    assert page["summary"] == {"acme": {"deleted": 2250, "not_found": 250}}
    assert {bar["day"]: bar["total"] for bar in page["bars"]} == {f"2026-03-0{day}": 500 for day in range(1, 6)}
    # the first 1000 rows are in the table, the rest a click away; a search looks through all 2500
    assert page["visibleRows"] == 1000 and page["shownCount"] == "Showing 1000 of 2500 receipts"
    assert shown(page, page["visible"]) == sorted((line["deletionRequestId"], item(line)) for line in lines[:1000])
    assert " ".join(page["more"].split()) == "1500 more receipts match. Show 1000 more"
    by_item, by_request = result["queries"]
    assert shown(page, by_item["visible"]) == [(request, last)] and by_item["more"] is None
    assert by_request["visibleRows"] == 500 and by_request["more"] is None
    assert shown(page, by_request["visible"]) == matching(lines, request)
