"""``render_report``, the auditor's page of receipts, read as text: every ledger value escaped, nothing fetched, and
the numbers it shows (tests/system/test_receipts_report.py opens it in a real browser)."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

from opscli.receipts_html import CSP, MISSING, render_report

XSS_TAG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "</script><script>alert(2)</script><!--"
GENERATED_AT = "2026-03-20T10:00:00.000Z"


def line(**values: Any) -> dict[str, Any]:
    """A receipt as opscli.receipts.receipt yields it today (without the keys being added), with ``values``."""
    base: dict[str, Any] = {
        "tenantId": "acme",
        "deletionRequestId": "dr_01m8txz33tdce4fj8ver71a9m8",
        "trigger": "api_bulk",
        "requestedAt": "2026-03-01T08:29:32.667Z",
        "requestedBy": "k1a2b3c4d5",
        "parserRunId": "parser_run_06DPdRO9YrxPbCkhdVipy2",
        "outcome": "deleted",
        "completedAt": "2026-03-01T08:29:33.100Z",
        "attempts": 1,
        "extendStatus": 200,
        "extendRequestId": "req_0UAqFzWsDK4FrUMp48Y3",
        "reason": None,
    }
    return {**base, **values}


LINES = [
    line(),
    line(parserRunId="parser_run_2", outcome="not_found", extendStatus=404, completedAt="2026-03-02T00:00:01Z"),
    line(
        deletionRequestId="dr_overdue",
        parserRunId="parser_run_3",
        outcome="queued",
        completedAt=None,
        requestedAt="2026-03-03T23:59:59.000Z",
        overdue=True,
        requestStatus="in_progress",
        dueBy="2026-03-05T00:00:00.000Z",
    ),
    line(
        tenantId="globex",
        deletionRequestId="dr_cancelled",
        parserRunId="parser_run_4",
        outcome="cancelled",
        requestStatus="cancelled",
        requestedBy=XSS_TAG,
        reason=XSS_SCRIPT,
    ),
    line(
        tenantId="globex",
        deletionRequestId="dr_failed",
        itemId="file_01",
        resource="files",
        outcome="failed",
        extendStatus=500,
        reason="Extend answered 500 three times",
        overdue=False,
        requestStatus="completed_with_failures",
    ),
]


def render(lines: list[dict[str, Any]] = LINES, title: str = "Deletion receipts: acme") -> str:
    return render_report(lines, generated_at=GENERATED_AT, title=title)


class Elements(HTMLParser):
    """Each start tag with its attributes, and the text inside elements with an id or a data-* of interest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.summary: dict[str, dict[str, int]] = {}
        self._tenant: str | None = None
        self._cell: str | None = None
        self._scripts: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "tr" and attributes.get("data-tenant") is not None:
            self._tenant = attributes["data-tenant"]
            self.summary[self._tenant or ""] = {}
        if tag == "td" and self._tenant is not None and attributes.get("data-outcome"):
            self._cell = attributes["data-outcome"]
        if tag == "script":
            self._in_script = attributes
            self._scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._tenant = None
        if tag == "td":
            self._cell = None
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self._tenant is not None:
            self.summary[self._tenant][self._cell] = int(data)
        if self._in_script is not None:
            self._scripts[-1] += data

    def json_block(self) -> Any:
        scripts = [attrs for tag, attrs in self.tags if tag == "script"]
        index = next(i for i, attrs in enumerate(scripts) if attrs.get("type") == "application/json")
        return json.loads(self._scripts[index])

    def with_attribute(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in attrs]


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    elements.close()
    return elements


def test_every_value_from_the_ledger_is_text_never_markup() -> None:
    page = render([*LINES, line(tenantId=XSS_TAG, reason=XSS_TAG)], title=f"receipts {XSS_TAG}")
    # nowhere in the page, not in the HTML, the SVG's titles nor the JSON for the script, does a value open a tag
    for value in (XSS_TAG, XSS_SCRIPT, "<img", "</script><script>", "<!--"):
        assert value not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the HTML shows it, escaped
    assert [tag for tag, _ in parsed(page).tags if tag == "img"] == []
    # exactly two scripts: the data, and the page's own
    scripts = [attrs for tag, attrs in parsed(page).tags if tag == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}, {}]


def test_the_data_for_the_script_is_json_with_every_value_as_it_was_recorded() -> None:
    page = render()
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL)
    assert block is not None
    assert "<" not in block.group(1) and ">" not in block.group(1) and "&" not in block.group(1)
    data = parsed(page).json_block()
    keys = [column["key"] for column in data["columns"]]
    rows = [dict(zip(keys, row, strict=True)) for row in data["rows"]]
    assert len(rows) == len(LINES)
    cancelled = next(row for row in rows if row["deletionRequestId"] == "dr_cancelled")
    assert cancelled["requestedBy"] == XSS_TAG and cancelled["reason"] == XSS_SCRIPT
    # keys a receipt lacks show as "—"; the item is the Extend id, else the parser run id; a flag is yes/no
    first = rows[0]
    assert {first[key] for key in ("resource", "requestStatus", "dueBy", "overdue", "reason")} == {MISSING}
    assert first["itemId"] == "parser_run_06DPdRO9YrxPbCkhdVipy2"
    failed = next(row for row in rows if row["deletionRequestId"] == "dr_failed")
    assert [failed[key] for key in ("itemId", "resource", "overdue", "attempts")] == ["file_01", "files", "no", "1"]
    assert next(row for row in rows if row["deletionRequestId"] == "dr_overdue")["overdue"] == "yes"


def test_the_page_fetches_nothing_its_policy_forbids_it() -> None:
    page = render()
    head = page[page.index("<head>") : page.index("</head>")]
    # the policy is the first thing in the head, before any style or script it governs
    assert head.split("\n")[1] == f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    # no element refers to anything (the callers' values, escaped, may say src= as text: LINES' cancelled one does)
    for tag, attrs in parsed(page).tags:
        for name in ("src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data"):
            assert (attrs.get(name) or "data:").startswith("data:"), (tag, attrs)
    # and the page's own text, with values of its own, has no reference at all
    clean = render([receipt for receipt in LINES if receipt["deletionRequestId"] != "dr_cancelled"])
    assert not re.search(r"https?://", page + clean, re.IGNORECASE)
    assert not re.search(r"\bsrc\s*=(?!\s*[\"']?data:)", clean, re.IGNORECASE)
    assert not re.search(r"\bhref\s*=", clean, re.IGNORECASE)
    assert "url(" not in page and "@import" not in page and "<link" not in page and "<iframe" not in page
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|import)\s*\(", page)


def test_the_summary_counts_each_tenants_receipts_by_outcome() -> None:
    elements = parsed(render())
    expected: dict[str, Counter[str]] = {}
    for receipt in LINES:
        expected.setdefault(receipt["tenantId"], Counter())[receipt["outcome"]] += 1
    shown = {tenant: {o: n for o, n in counts.items() if n} for tenant, counts in elements.summary.items()}
    assert shown == {tenant: dict(counts) for tenant, counts in expected.items()}
    # every outcome present is a column for every tenant (0 where it has none)
    assert {len(counts) for counts in elements.summary.values()} == {len({r["outcome"] for r in LINES})}
    page = render()
    assert '<dd id="total-receipts">5</dd>' in page and '<dd id="total-requests">4</dd>' in page


def test_the_chart_has_a_bar_per_day_of_completion_else_of_request_with_a_title_and_a_legend() -> None:
    undated = line(deletionRequestId="dr_undated", completedAt=None, requestedAt="not a time")
    page = render([*LINES, undated])
    bars = parsed(page).with_attribute("data-day")
    days = {bar["data-day"]: int(bar["data-total"] or 0) for bar in bars}
    # completedAt's day; the queued run (no completedAt) on the day it was requested; "not a time" nowhere
    assert days == {"2026-03-01": 3, "2026-03-02": 1, "2026-03-03": 1}
    assert page.count('<g class="bar"') == 3 and page.count("<title>2026-03-") == 3
    assert "1 receipt(s) with no parseable time are not in the chart" in page
    legend = [attrs["data-outcome"] for tag, attrs in parsed(page).tags if attrs.get("class") == "legend-item"]
    assert legend == ["deleted", "not_found", "queued", "cancelled", "failed"]
    segments = [attrs for _, attrs in parsed(page).tags if attrs.get("class") == "segment"]
    assert sum(int(segment["data-count"] or 0) for segment in segments) == 5


def test_requests_overdue_or_cancelled_are_listed_and_no_others() -> None:
    elements = parsed(render())
    listed = {attrs["data-request-id"]: attrs["data-flags"] for attrs in elements.with_attribute("data-request-id")}
    assert listed == {"dr_overdue": "overdue", "dr_cancelled": "cancelled"}
    assert 'id="attention-none"' in render([line()])


def test_an_empty_export_is_still_a_page() -> None:
    page = render([])
    assert "No receipts." in page and "No dated receipts." in page and 'id="attention-none"' in page
    assert parsed(page).json_block()["rows"] == []
