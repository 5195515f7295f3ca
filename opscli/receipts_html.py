"""``receipts --format html``: the receipts as one self-contained web page, for an auditor.

``render_report`` is pure: receipt lines (the dicts ``opscli.receipts.receipt`` yields) in, one HTML document out.
The page fetches nothing: its CSS and JavaScript are inline, the chart is SVG drawn here, and its Content Security
Policy has the browser refuse any request. Every value from the ledger is text to it: HTML-escaped where this module
writes it into the page, and handed to the script as JSON (``<``, ``>`` and ``&`` escaped) that the script puts into
the page with ``textContent`` only.

It shows: the totals; a summary of outcomes per tenant; a chart of outcomes per day (of ``completedAt``, else
``requestedAt``; UTC); the requests that are overdue or cancelled (any of their receipts ``overdue`` or with
``requestStatus`` ``cancelled``); and every receipt in a table that a search box filters, from ``#q=...`` in the
address too, so that a filtered view can be shared. Keys a receipt may lack are shown as "—".
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any, Final

MISSING: Final = "—"
NUMERIC: Final = ' class="num"'
WARN: Final = ' class="warn"'
NOTE: Final = ' class="note"'
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

# One colour per outcome, in the order outcomes are shown (settled well, waiting, stopped, gone wrong); others
# follow in name order with the fallback colours.
OUTCOME_COLOURS: Final = {
    "deleted": "#2f855a",
    "would_delete": "#38a3a5",
    "not_found": "#7b8794",
    "queued": "#3b82c4",
    "cancelled": "#805ad5",
    "rejected": "#dd7a1f",
    "failed": "#c53030",
    "dead_lettered": "#97266d",
}
FALLBACK_COLOURS: Final = ("#b7791f", "#2c5282", "#4a5568", "#9c4221", "#276749", "#553c9a")

# The table of every receipt, what identifies it and what became of it first: (key, heading, how its cells look).
# itemId falls back to parserRunId.
RECEIPT_COLUMNS: Final = (
    ("tenantId", "Tenant", ""),
    ("deletionRequestId", "Request", "mono"),
    ("itemId", "Item", "mono"),
    ("resource", "Resource", ""),
    ("outcome", "Outcome", "outcome"),
    ("reason", "Reason", "wrap"),
    ("completedAt", "Completed at", "time"),
    ("requestedAt", "Requested at", "time"),
    ("requestedBy", "Requested by", "mono"),
    ("trigger", "Trigger", ""),
    ("requestStatus", "Request status", ""),
    ("dueBy", "Due by", "time"),
    ("overdue", "Overdue", ""),
    ("attempts", "Attempts", "num"),
    ("extendStatus", "Extend status", "num"),
    ("extendRequestId", "Extend request", "mono"),
)

# Rows the table of receipts holds at once (and adds at each "show more"): a browser lays out a table of tens of
# thousands of rows slowly, and the search runs over every receipt whatever is shown.
ROWS_AT_ONCE: Final = 1000

# The chart's canvas (SVG user units; the page scales it to its width).
CHART_WIDTH: Final = 1200
CHART_PLOT_HEIGHT: Final = 240
CHART_MARGIN: Final = {"left": 64, "right": 20, "top": 28, "bottom": 62}  # top: above the legend's rows
LEGEND_ROW: Final = 22
# Days from the first to the last shown one by one (empty days too) up to this span; past it only days with receipts.
CALENDAR_SPAN_DAYS: Final = 92


def text(value: Any) -> str:
    """A ledger value as the page shows it: "—" when absent, yes/no for a flag."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def item_id(line: Mapping[str, Any]) -> Any:
    return line.get("itemId") or line.get("parserRunId")


def day_of(line: Mapping[str, Any]) -> str | None:
    """The UTC day a receipt counts on in the chart: its completedAt, else its requestedAt; None if neither parses."""
    for key in ("completedAt", "requestedAt"):
        value = line.get(key)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC).date().isoformat()
    return None


def needs_attention(line: Mapping[str, Any]) -> list[str]:
    """Why a receipt puts its request on the overdue and cancelled list: "overdue", "cancelled", both or neither."""
    flags = []
    if line.get("overdue") is True:
        flags.append("overdue")
    if line.get("requestStatus") == "cancelled":
        flags.append("cancelled")
    return flags


def outcome_order(outcomes: Iterable[str]) -> list[str]:
    known = list(OUTCOME_COLOURS)
    present = set(outcomes)
    return [name for name in known if name in present] + sorted(present - set(known))


def outcome_colours(outcomes: Sequence[str]) -> dict[str, str]:
    unknown = [name for name in outcomes if name not in OUTCOME_COLOURS]
    return {
        name: OUTCOME_COLOURS.get(name) or FALLBACK_COLOURS[unknown.index(name) % len(FALLBACK_COLOURS)]
        for name in outcomes
    }


@dataclass
class FlaggedRequest:
    """A request on the overdue and cancelled list, from its receipts."""

    request_id: str
    tenant: Any
    requested_at: Any
    requested_by: Any
    flags: list[str] = field(default_factory=list)
    due_by: Any = None
    statuses: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class Report:
    """What the page shows, worked out from the lines once."""

    lines: list[Mapping[str, Any]]
    outcomes: list[str]
    colours: dict[str, str]
    by_tenant: dict[str, Counter[str]]
    requests_by_tenant: dict[str, set[str]]
    by_day: dict[str, Counter[str]]
    undated: int
    flagged: list[FlaggedRequest]

    @classmethod
    def of(cls, lines: Iterable[Mapping[str, Any]]) -> Report:
        kept = list(lines)
        by_tenant: dict[str, Counter[str]] = defaultdict(Counter)
        requests_by_tenant: dict[str, set[str]] = defaultdict(set)
        by_day: dict[str, Counter[str]] = defaultdict(Counter)
        undated = 0
        everything: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for line in kept:
            outcome = text(line.get("outcome"))
            tenant = text(line.get("tenantId"))
            by_tenant[tenant][outcome] += 1
            requests_by_tenant[tenant].add(text(line.get("deletionRequestId")))
            day = day_of(line)
            if day is None:
                undated += 1
            else:
                by_day[day][outcome] += 1
            everything[text(line.get("deletionRequestId"))].append(line)
        outcomes = outcome_order(outcome for counts in by_tenant.values() for outcome in counts)
        flagged = []
        for request_id, receipts in everything.items():
            flags = sorted(
                {flag for line in receipts for flag in needs_attention(line)}, key=["overdue", "cancelled"].index
            )
            if not flags:
                continue
            first = receipts[0]
            flagged.append(
                FlaggedRequest(
                    request_id=request_id,
                    tenant=first.get("tenantId"),
                    requested_at=first.get("requestedAt"),
                    requested_by=first.get("requestedBy"),
                    flags=flags,
                    due_by=next((line["dueBy"] for line in receipts if line.get("dueBy")), None),
                    statuses=sorted({text(line.get("requestStatus")) for line in receipts}),
                    outcomes=Counter(text(line.get("outcome")) for line in receipts),
                )
            )
        return cls(
            kept,
            outcomes,
            outcome_colours(outcomes),
            dict(sorted(by_tenant.items())),
            dict(requests_by_tenant),
            dict(sorted(by_day.items())),
            undated,
            flagged,
        )

    @property
    def request_count(self) -> int:
        return sum(len(ids) for ids in self.requests_by_tenant.values())

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.by_tenant.values())


# ---------------------------------------------------------------------------------------------------- the page


def render_report(lines: Iterable[dict[str, Any]], *, generated_at: str, title: str) -> str:
    """The whole page for these receipt lines."""
    report = Report.of(lines)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="color-scheme" content="light">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}{_outcome_style(report)}</style>",
        "</head>",
        "<body>",
        _header(report, generated_at=generated_at, title=title),
        "<main>",
        _summary(report),
        _chart_section(report),
        _flagged(report),
        _receipts(report),
        "</main>",
        '<footer><p>"—" marks a value the ledger did not record. Times are as recorded (UTC). This page is one file: '
        "it loads nothing, and its security policy keeps the browser from fetching anything.</p></footer>",
        f'<script type="application/json" id="report-data">{_json_for_script(_script_data(report))}</script>',
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its <script> element nor open a comment in it: <, > and & as \\u escapes."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return encoded.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _script_data(report: Report) -> dict[str, Any]:
    rows = []
    for line in report.lines:
        values = {**line, "itemId": item_id(line)}
        rows.append([text(values.get(key)) for key, _, _ in RECEIPT_COLUMNS])
    return {
        "columns": [{"key": key, "label": label, "kind": kind} for key, label, kind in RECEIPT_COLUMNS],
        "rows": rows,
        "outcomeColours": report.colours,
        "rowsAtOnce": ROWS_AT_ONCE,
    }


def _outcome_style(report: Report) -> str:
    """A swatch class per outcome present, by its place: the outcomes' names (the ledger's) never enter the CSS."""
    rules = []
    for index, outcome in enumerate(report.outcomes):
        rules.append(f".sw-{index}{{background:{report.colours[outcome]}}}")
    return "".join(rules)


def _swatch(report: Report, outcome: str) -> str:
    return f'<span class="swatch sw-{report.outcomes.index(outcome)}" aria-hidden="true"></span>'


def _header(report: Report, *, generated_at: str, title: str) -> str:
    requested = sorted(str(line["requestedAt"]) for line in report.lines if line.get("requestedAt"))
    period = (
        f"Requests made {escape(requested[0][:10])} to {escape(requested[-1][:10])}"
        if requested
        else "No requests in this export"
    )
    flagged_overdue = sum("overdue" in request.flags for request in report.flagged)
    flagged_cancelled = sum("cancelled" in request.flags for request in report.flagged)
    chips = "".join(
        f'<li data-outcome="{escape(outcome)}">{_swatch(report, outcome)}{escape(outcome)} '
        f"<strong>{report.total(outcome)}</strong></li>"
        for outcome in report.outcomes
    )
    return f"""<header class="masthead">
<div class="masthead-inner">
<p class="eyebrow">Extend deleter · deletion receipts · audit report</p>
<h1>{escape(title)}</h1>
<p class="meta">Generated <time id="generated-at">{escape(generated_at)}</time> · {period}</p>
<dl class="totals">
<div><dt>Requests</dt><dd id="total-requests">{report.request_count}</dd></div>
<div><dt>Receipts</dt><dd id="total-receipts">{len(report.lines)}</dd></div>
<div><dt>Tenants</dt><dd id="total-tenants">{len(report.by_tenant)}</dd></div>
<div{WARN if flagged_overdue else ""}><dt>Overdue requests</dt><dd id="total-overdue">{flagged_overdue}</dd></div>
<div{NOTE if flagged_cancelled else ""}><dt>Cancelled requests</dt>
<dd id="total-cancelled">{flagged_cancelled}</dd></div>
</dl>
<ul class="outcome-totals" aria-label="Receipts by outcome">{chips}</ul>
</div>
</header>"""


def _summary(report: Report) -> str:
    head = "".join(f'<th scope="col" class="num">{_swatch(report, o)}{escape(o)}</th>' for o in report.outcomes)
    rows = []
    for tenant, counts in report.by_tenant.items():
        cells = "".join(
            f'<td class="num{"" if counts[o] else " zero"}" data-outcome="{escape(o)}">{counts[o]}</td>'
            for o in report.outcomes
        )
        rows.append(
            f'<tr data-tenant="{escape(tenant)}"><th scope="row">{escape(tenant)}</th>'
            f'<td class="num requests">{len(report.requests_by_tenant[tenant])}</td>{cells}'
            f'<td class="num total">{sum(counts.values())}</td></tr>'
        )
    totals = "".join(f'<td class="num">{report.total(o)}</td>' for o in report.outcomes)
    body = "\n".join(rows) or f'<tr><td colspan="{len(report.outcomes) + 3}" class="empty">No receipts.</td></tr>'
    return f"""<section id="summary-section" aria-labelledby="summary-heading">
<h2 id="summary-heading"><span class="step">1</span>Outcomes by tenant</h2>
<p class="lede">Receipts (one per item of a request) by tenant and outcome.</p>
<div class="table-wrap fit"><table id="summary" class="data">
<thead><tr><th scope="col">Tenant</th><th scope="col" class="num">Requests</th>{head}\
<th scope="col" class="num">Receipts</th></tr></thead>
<tbody>
{body}
</tbody>
<tfoot><tr><th scope="row">All tenants</th><td class="num">{report.request_count}</td>{totals}\
<td class="num total">{len(report.lines)}</td></tr></tfoot>
</table></div>
</section>"""


# ---------------------------------------------------------------------------------------------------- the chart


def _nice_step(maximum: int, ticks: int = 5) -> int:
    """A round step (1, 2 or 5 times a power of ten) that divides 0..maximum into about ``ticks`` intervals."""
    raw = max(maximum, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def _day_slots(days: Sequence[str]) -> list[str]:
    """The x axis: every day from the first to the last, or only those with receipts over a long span."""
    if not days:
        return []
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    span = (last - first).days
    if span > CALENDAR_SPAN_DAYS:
        return list(days)
    return [(first + timedelta(days=offset)).isoformat() for offset in range(span + 1)]


def _day_label(day: str) -> str:
    moment = date.fromisoformat(day)
    return f"{moment:%b} {moment.day}"


def render_chart(report: Report) -> str:
    """Stacked bars of receipts per day, one colour per outcome, with axes, gridlines and a legend."""
    left, right, bottom = (CHART_MARGIN[k] for k in ("left", "right", "bottom"))
    legend, legend_rows = _legend(report)
    top = CHART_MARGIN["top"] + legend_rows * LEGEND_ROW
    width, plot_h = CHART_WIDTH, CHART_PLOT_HEIGHT
    plot_w, height = width - left - right, top + plot_h + bottom
    slots = _day_slots(list(report.by_day))
    svg = [
        f'<svg id="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-title" preserveAspectRatio="xMinYMin meet">',
        '<title id="chart-title">Receipts per day, by outcome</title>',
        legend,
    ]
    if not slots:
        svg.append(
            f'<text class="chart-empty" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            'text-anchor="middle">No dated receipts.</text>'
        )
        svg.append("</svg>")
        return "\n".join(svg)
    peak = max(sum(counts.values()) for counts in report.by_day.values())
    step = _nice_step(peak)
    y_max = step * math.ceil(peak / step)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    # gridlines and the y axis
    svg.append('<g class="axis y-axis">')
    for tick in range(0, y_max + 1, step):
        svg.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text x="{left - 8}" y="{y(tick):.1f}" text-anchor="end" dominant-baseline="middle">{tick}</text>'
        )
    svg.append(
        f'<text class="axis-title" transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">Receipts</text>'
    )
    svg.append("</g>")
    # bars
    slot_w = plot_w / len(slots)
    bar_w = min(56.0, slot_w * 0.7)
    label_every = max(1, math.ceil(52 / slot_w))
    svg.append('<g class="bars">')
    for index, day in enumerate(slots):
        counts = report.by_day.get(day)
        x = left + index * slot_w + (slot_w - bar_w) / 2
        if counts:
            total = sum(counts.values())
            detail = ", ".join(f"{outcome} {counts[outcome]}" for outcome in report.outcomes if counts[outcome])
            svg.append(
                f'<g class="bar" data-day="{day}" data-total="{total}">'
                f"<title>{escape(day)}: {total} receipt{'' if total == 1 else 's'} ({escape(detail)})</title>"
            )
            stacked = 0
            for outcome in report.outcomes:
                count = counts[outcome]
                if not count:
                    continue
                y_top, y_bottom = y(stacked + count), y(stacked)
                svg.append(
                    f'<rect class="segment" data-outcome="{escape(outcome)}" data-count="{count}" x="{x:.1f}" '
                    f'y="{y_top:.1f}" width="{bar_w:.1f}" height="{y_bottom - y_top:.1f}" '
                    f'fill="{report.colours[outcome]}"/>'
                )
                stacked += count
            if slot_w >= 22:
                svg.append(
                    f'<text class="bar-total" x="{x + bar_w / 2:.1f}" y="{y(total) - 5:.1f}" '
                    f'text-anchor="middle">{total}</text>'
                )
            svg.append("</g>")
        if index % label_every == 0:
            svg.append(
                f'<text class="tick-label" x="{left + index * slot_w + slot_w / 2:.1f}" y="{top + plot_h + 18}" '
                f'text-anchor="middle">{_day_label(day)}</text>'
            )
    svg.append("</g>")
    years = sorted({day[:4] for day in slots})
    year_text = years[0] if len(years) == 1 else f"{years[0]} to {years[-1]}"
    svg.append(
        f'<line class="baseline" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle">'
        f"Day ({year_text}, UTC) the receipt settled (completedAt), else when it was requested</text>"
    )
    svg.append("</svg>")
    return "\n".join(svg)


def _legend(report: Report) -> tuple[str, int]:
    """The legend above the plot, wrapped to the chart's width; and how many rows it takes."""
    items, x, y, rows = [], float(CHART_MARGIN["left"]), 8.0, 1 if report.outcomes else 0
    for outcome in report.outcomes:
        label = f"{outcome} ({report.total(outcome)})"
        item_w = 14 + 6 + 7.4 * len(label) + 18
        if x + item_w > CHART_WIDTH - CHART_MARGIN["right"] and x > CHART_MARGIN["left"]:
            x, y, rows = float(CHART_MARGIN["left"]), y + LEGEND_ROW, rows + 1
        items.append(
            f'<g class="legend-item" data-outcome="{escape(outcome)}" transform="translate({x:.1f} {y:.1f})">'
            f'<rect width="14" height="14" rx="3" fill="{report.colours[outcome]}"/>'
            f'<text x="20" y="7" dominant-baseline="middle">{escape(label)}</text></g>'
        )
        x += item_w
    return '<g class="legend">' + "".join(items) + "</g>", rows


def _chart_section(report: Report) -> str:
    dated = len(report.lines) - report.undated
    note = f" {report.undated} receipt(s) with no parseable time are not in the chart." if report.undated else ""
    spread = (
        " Days without receipts are left empty."
        if report.by_day and len(_day_slots(list(report.by_day))) > len(report.by_day)
        else ""
    )
    return f"""<section id="chart-section" aria-labelledby="chart-heading">
<h2 id="chart-heading"><span class="step">2</span>Outcomes over time</h2>
<p class="lede">Receipts per day ({dated} in all), stacked by outcome; hover a bar for its counts.{spread}{note}</p>
<figure class="chart">
{render_chart(report)}
</figure>
</section>"""


# ---------------------------------------------------------------------------------------------------- the lists


def _flagged(report: Report) -> str:
    rows = []
    for request in report.flagged:
        flags = "".join(f'<span class="flag flag-{flag}">{flag}</span>' for flag in request.flags)
        outcomes = ", ".join(
            f"{outcome} {request.outcomes[outcome]}" for outcome in report.outcomes if request.outcomes[outcome]
        )
        rows.append(
            f'<tr data-request-id="{escape(request.request_id)}" data-flags="{" ".join(request.flags)}">'
            f'<td class="mono request-id">{escape(request.request_id)}</td>'
            f"<td>{escape(text(request.tenant))}</td>"
            f'<td class="flags">{flags}</td>'
            f"<td>{escape(', '.join(request.statuses))}</td>"
            f'<td class="time">{escape(text(request.due_by))}</td>'
            f'<td class="time">{escape(text(request.requested_at))}</td>'
            f'<td class="mono">{escape(text(request.requested_by))}</td>'
            f'<td class="wrap">{escape(outcomes)}</td></tr>'
        )
    if not rows:
        table = '<p class="all-clear" id="attention-none">No request is overdue or cancelled.</p>'
    else:
        table = (
            '<div class="table-wrap"><table id="attention" class="data">'
            '<thead><tr><th scope="col">Request</th><th scope="col">Tenant</th><th scope="col">Why listed</th>'
            '<th scope="col">Request status</th><th scope="col">Due by</th><th scope="col">Requested at</th>'
            '<th scope="col">Requested by</th><th scope="col">Receipts by outcome</th></tr></thead>\n<tbody>\n'
            + "\n".join(rows)
            + "\n</tbody></table></div>"
        )
    return f"""<section id="attention-section" aria-labelledby="attention-heading">
<h2 id="attention-heading"><span class="step">3</span>Overdue and cancelled requests \
<span class="count-pill">{len(report.flagged)}</span></h2>
<p class="lede">A request is listed when any of its receipts is overdue (past its due time) or its request was
cancelled.</p>
{table}
</section>"""


def _receipts(report: Report) -> str:
    head = "".join(
        f'<th scope="col"{NUMERIC if kind == "num" else ""}>{escape(label)}</th>' for _, label, kind in RECEIPT_COLUMNS
    )
    total = len(report.lines)
    return f"""<section id="receipts-section" aria-labelledby="receipts-heading">
<h2 id="receipts-heading"><span class="step">4</span>All receipts</h2>
<div class="toolbar">
<label class="search"><span>Search</span>
<input id="search" type="search" placeholder="request id, item, tenant, outcome, reason…" autocomplete="off"
spellcheck="false" aria-controls="receipts"></label>
<p id="shown-count" class="shown-count" aria-live="polite">Showing {total} of {total} receipts</p>
</div>
<p class="hint">Filters rows containing the text anywhere (any column, any case), among all the receipts; the
first {ROWS_AT_ONCE} that match are shown, then more on request. The address keeps the search (<code>#q=…</code>):
share it to share this view. The table scrolls sideways for more columns.</p>
<div class="table-wrap"><table id="receipts" class="data receipts">
<thead><tr>{head}</tr></thead>
<tbody></tbody>
</table></div>
<p id="no-match" class="empty" hidden>No receipt contains this text.</p>
<div id="more" class="more" hidden><span id="more-text"></span>
<button type="button" id="show-more">Show more</button></div>
<noscript><p class="empty">The table of receipts needs JavaScript; the same receipts are in the JSON block at the
end of this file.</p></noscript>
</section>"""


STYLE: Final = """
:root{--ink:#1a2330;--muted:#5b6776;--line:#dde3ea;--soft:#f4f6f9;--accent:#234e7d;--bg:#fbfcfd;
--sans:"Inter","Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;
--mono:"JetBrains Mono","SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{background:var(--bg);color:var(--ink);font:15px/1.5 var(--sans);-webkit-text-size-adjust:100%}
body{margin:0}
.masthead{background:linear-gradient(180deg,#1f3a5c,#22466f);color:#fff;padding:28px 0 22px}
.masthead-inner,main,footer{max-width:1680px;margin:0 auto;padding:0 32px}
.eyebrow{margin:0 0 4px;font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#b9cde4}
h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
.meta{margin:6px 0 18px;color:#d4e1ef;font-size:14px}
.totals{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 14px}
.totals div{background:rgba(255,255,255,.1);border:1px solid rgba(255,255,255,.18);border-radius:8px;
padding:8px 16px;min-width:120px}
.totals .warn{background:rgba(229,62,62,.22);border-color:rgba(254,178,178,.55)}
.totals .note{background:rgba(159,122,234,.22);border-color:rgba(214,188,250,.5)}
.totals dt{font-size:12px;color:#c6d6e8;text-transform:uppercase;letter-spacing:.06em}
.totals dd{margin:0;font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.outcome-totals{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:8px 18px;font-size:13px;
color:#e3ecf5}
.outcome-totals strong{color:#fff;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:0;
box-shadow:0 0 0 1px rgba(255,255,255,.35)}
main{padding-top:8px;padding-bottom:24px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:22px 0;
box-shadow:0 1px 2px rgba(20,35,55,.04)}
h2{margin:0 0 4px;font-size:18px;font-weight:650;display:flex;align-items:center;gap:10px}
.step{display:inline-grid;place-items:center;width:24px;height:24px;border-radius:50%;background:var(--accent);
color:#fff;font-size:13px}
.lede,.hint{margin:0 0 14px;color:var(--muted);font-size:14px}
.hint{margin:8px 0 12px;font-size:13px}
.count-pill{background:var(--soft);border:1px solid var(--line);border-radius:999px;padding:0 10px;font-size:13px;
color:var(--muted)}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
.table-wrap.fit{display:inline-block;max-width:100%;min-width:min(100%,720px)}
table.data{border-collapse:collapse;width:100%;font-size:13.5px}
table.receipts{font-size:13px}
table.data th,table.data td{padding:7px 11px;text-align:left;border-bottom:1px solid var(--line);
vertical-align:baseline;white-space:nowrap}
table.data thead th{background:var(--soft);font-size:12px;letter-spacing:.02em;color:var(--muted);
font-weight:650}
table.data tbody tr:nth-child(even){background:#fafbfc}
table.data tbody tr:hover{background:#eef4fb}
table.data tbody tr:last-child td,table.data tbody tr:last-child th{border-bottom:0}
table.data tfoot th,table.data tfoot td{border-top:2px solid var(--line);border-bottom:0;font-weight:650}
#summary tbody th{font-weight:600}
.num{text-align:right!important;font-variant-numeric:tabular-nums}
.zero{color:#b3bcc6}
.total{font-weight:650}
.mono{font-family:var(--mono);font-size:12.5px}
.time{font-variant-numeric:tabular-nums;color:#334155}
.wrap{white-space:normal!important;min-width:16em;max-width:32em;overflow-wrap:anywhere}
.missing{color:#a0aab5}
.empty{color:var(--muted);font-style:italic;padding:12px 0;margin:0}
.all-clear{margin:0;padding:12px 14px;border-radius:8px;background:#eef7f1;color:#22543d;border:1px solid #c6e6d1}
.chart{margin:0}
#chart{width:100%;max-width:1200px;height:auto;display:block}
#chart text{font-family:var(--sans);font-size:12px;fill:#3d4a5a}
#chart .grid{stroke:#e6ebf0;stroke-width:1}
#chart .baseline{stroke:#8c99a8;stroke-width:1}
#chart .axis-title{font-size:12.5px;fill:var(--muted);font-weight:600}
#chart .bar-total{font-size:11px;fill:#3d4a5a;font-weight:600}
#chart .bar:hover rect{opacity:.85}
#chart .legend text{font-size:12.5px}
.flag{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;margin-right:4px}
.flag-overdue{background:#fdecea;color:#9b1c1c;border:1px solid #f5c2c0}
.flag-cancelled{background:#f1ebfb;color:#553c9a;border:1px solid #d9cdf3}
.badge{display:inline-flex;align-items:center;gap:6px;font-weight:600;font-size:12.5px;color:var(--c)}
.badge::before{content:"";width:8px;height:8px;border-radius:50%;background:var(--c)}
.toolbar{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:12px;margin:12px 0 0}
.search{display:flex;align-items:center;gap:10px;font-weight:600;font-size:14px;flex:1 1 420px}
.search input{flex:1;max-width:560px;font:inherit;font-weight:400;padding:8px 12px;border:1px solid #c3ccd6;
border-radius:8px;background:#fff;color:var(--ink)}
.search input:focus{outline:2px solid #7aa7d6;outline-offset:1px;border-color:#7aa7d6}
.more{display:flex;align-items:center;gap:12px;margin:12px 0 0;color:var(--muted);font-size:14px}
.more button{font:inherit;font-weight:600;color:#fff;background:var(--accent);border:0;border-radius:8px;
padding:7px 14px;cursor:pointer}
.more button:hover{background:#1a3c61}
.shown-count{margin:0;color:var(--muted);font-size:14px;font-variant-numeric:tabular-nums}
code{font-family:var(--mono);font-size:12.5px;background:var(--soft);padding:1px 5px;border-radius:4px}
footer{color:var(--muted);font-size:12.5px;padding-bottom:32px}
@media print{.masthead{background:#fff;color:var(--ink)}.toolbar,.hint,.more{display:none}
section{box-shadow:none;break-inside:avoid-page}}
"""

SCRIPT: Final = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var columns = data.columns, colours = data.outcomeColours, all = data.rows, page = data.rowsAtOnce;
  var tbody = document.getElementById("receipts").tBodies[0];
  var input = document.getElementById("search");
  var shownCount = document.getElementById("shown-count");
  var noMatch = document.getElementById("no-match");
  var more = document.getElementById("more");
  var moreText = document.getElementById("more-text");
  var showMore = document.getElementById("show-more");
  var texts = all.map(function (values) { return values.join("\\n").toLowerCase(); });
  var matches = [], limit = page;

  function row(values) {
    var tr = document.createElement("tr");
    values.forEach(function (value, index) {
      var column = columns[index];
      var td = document.createElement("td");
      td.dataset.key = column.key;
      if (column.kind) { td.className = column.kind; }
      if (value === "\\u2014") {
        td.classList.add("missing");
        td.textContent = value;
      } else if (column.kind === "outcome") {
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.style.setProperty("--c", colours[value] || "#4a5568");
        badge.textContent = value;
        td.appendChild(badge);
      } else {
        td.textContent = value;
      }
      tr.appendChild(td);
    });
    return tr;
  }
  function render() {
    var rows = document.createDocumentFragment();
    var count = Math.min(limit, matches.length);
    for (var i = 0; i < count; i++) { rows.appendChild(row(all[matches[i]])); }
    tbody.replaceChildren(rows);
    shownCount.textContent = "Showing " + count + " of " + all.length + " receipts";
    var rest = matches.length - count;
    more.hidden = rest <= 0;
    moreText.textContent = rest + " more " + (rest === 1 ? "receipt matches." : "receipts match.");
    showMore.textContent = "Show " + Math.min(rest, page) + " more";
    noMatch.hidden = matches.length !== 0 || all.length === 0;
  }
  function show(query) {
    var needle = query.trim().toLowerCase();
    matches = [];
    for (var i = 0; i < texts.length; i++) {
      if (needle === "" || texts[i].indexOf(needle) !== -1) { matches.push(i); }
    }
    limit = page;
    render();
    tbody.dataset.query = query;  // what the rows shown were searched for (for tools that wait on it)
  }
  function queryInAddress() {
    return new URLSearchParams(window.location.hash.replace(/^#/, "")).get("q") || "";
  }
  var typing = null;
  input.addEventListener("input", function () {
    // searched once typing pauses: a table of a thousand rows is laid out again at each search
    window.clearTimeout(typing);
    typing = window.setTimeout(function () {
      show(input.value);
      var hash = input.value ? "#q=" + encodeURIComponent(input.value) : "";
      try {
        history.replaceState(null, "", hash || window.location.pathname + window.location.search);
      } catch (error) { /* an address that cannot change: the view still filters */ }
    }, 150);
  });
  showMore.addEventListener("click", function () {
    limit += page;
    render();
  });
  window.addEventListener("hashchange", function () {
    input.value = queryInAddress();
    show(input.value);
  });
  input.value = queryInAddress();
  show(input.value);
})();
"""
