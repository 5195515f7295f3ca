"""Open the auditor's report (``extend-deleter receipts --format html``) in headless Chromium and say what it shows.

    .tools/browser/bin/python tools/browser_check.py REPORT.html SCREENSHOT.png [--query TEXT ...] [--fragment TEXT]

Runs in its own venv (``make browser``): Playwright drives Debian's Chromium at /usr/bin/chromium; it never
downloads a browser. Prints one JSON object on stdout: every request the page attempted other than the report's
own file (there should be none), console errors, page errors, dialogs (alert, confirm, prompt), Content Security
Policy violations, and what the page shows: the summary table's counts per tenant and outcome, the chart's bars and
legend, the overdue and cancelled requests, and the receipts table's visible rows (and its "show more"); then the
same rows after typing each ``--query`` into the search box, and after opening the page at ``#q=`` ``--fragment``.
A full-page screenshot of the page as it opened goes to SCREENSHOT.png. Exit status 0 when the page was read, 2
when it could not be.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urldefrag

# Installed in .tools/browser only, not in .venv where mypy runs: untyped there.
from playwright.sync_api import Error as PlaywrightError  # type: ignore[import-not-found, unused-ignore]
from playwright.sync_api import sync_playwright  # type: ignore[import-not-found, unused-ignore]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
TIMEOUT_MS = 30_000

# Records what the page's security policy refused, before any of the page's own script runs.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# What the page shows, read from the DOM as a person sees it: innerText, and the rows on screen only. The receipts'
# cells are plain text (set with textContent, no CSS that changes it): their textContent, much faster to read.
READ_PAGE = """
() => {
  const visible = (element) => element.getClientRects().length > 0;
  const cellText = (element) => element.innerText.trim();
  const summary = {};
  for (const row of document.querySelectorAll("#summary tbody tr[data-tenant]")) {
    const counts = {};
    for (const cell of row.querySelectorAll("td[data-outcome]")) {
      counts[cell.dataset.outcome] = Number(cellText(cell));
    }
    summary[cellText(row.querySelector("th"))] = counts;
  }
  const bars = [...document.querySelectorAll("#chart g.bar")].map((bar) => ({
    day: bar.dataset.day,
    total: Number(bar.dataset.total),
    title: bar.querySelector("title") ? bar.querySelector("title").textContent : null,
    segments: Object.fromEntries(
      [...bar.querySelectorAll("rect.segment")].map((rect) => [rect.dataset.outcome, Number(rect.dataset.count)])
    ),
    height: [...bar.querySelectorAll("rect.segment")].reduce((sum, rect) => sum + rect.getBBox().height, 0),
  }));
  const legend = [...document.querySelectorAll("#chart g.legend-item")].map((item) => item.textContent.trim());
  const attention = [...document.querySelectorAll("#attention tbody tr")].map((row) => ({
    requestId: cellText(row.querySelector(".request-id")),
    flags: [...row.querySelectorAll(".flag")].map(cellText),
    cells: [...row.cells].map(cellText),
  }));
  return {
    title: document.title,
    heading: cellText(document.querySelector("h1")),
    totals: Object.fromEntries(
      [...document.querySelectorAll(".totals dd")].map((dd) => [dd.id.replace(/^total-/, ""), Number(cellText(dd))])
    ),
    summary,
    bars,
    legend,
    attention,
    attentionNone: document.getElementById("attention-none") !== null,
    images: document.images.length,
    ...readRows(),
  };
  function readRows() {
    const rows = [...document.querySelectorAll("#receipts tbody tr")];
    const shown = rows.filter(visible);
    const columns = [...document.querySelectorAll("#receipts thead th")].map(cellText);
    return {
      receiptColumns: columns,
      receiptRows: rows.length,
      visibleRows: shown.length,
      visible: shown.slice(0, 1000).map((row) => [...row.cells].map((cell) => cell.textContent.trim())),
      shownCount: cellText(document.getElementById("shown-count")),
      noMatchShown: visible(document.getElementById("no-match")),
      more: visible(document.getElementById("more")) ? cellText(document.getElementById("more")) : null,
    };
  }
}
"""

READ_ROWS = """
() => {
  const visible = (element) => element.getClientRects().length > 0;
  const rows = [...document.querySelectorAll("#receipts tbody tr")].filter(visible);
  return {
    visibleRows: rows.length,
    visible: rows.slice(0, 1000).map((row) => [...row.cells].map((cell) => cell.textContent.trim())),
    shownCount: document.getElementById("shown-count").innerText.trim(),
    noMatchShown: visible(document.getElementById("no-match")),
    more: visible(document.getElementById("more")) ? document.getElementById("more").innerText.trim() : null,
    searchValue: document.getElementById("search").value,
    hash: window.location.hash,
  };
}
"""


# The page searches once typing pauses: its table says what its rows were searched for.
SEARCHED = '(query) => document.querySelector("#receipts tbody").dataset.query === query'


def check(report: Path, screenshot: Path, queries: list[str], fragment: str | None) -> dict[str, Any]:
    url = report.resolve().as_uri()
    result: dict[str, Any] = {
        "url": url,
        "requests": [],
        "consoleErrors": [],
        "pageErrors": [],
        "dialogs": [],
        "cspViolations": [],
        "queries": [],
    }

    def on_request(request: Any) -> None:
        if urldefrag(request.url).url != url:
            result["requests"].append({"url": request.url, "resourceType": request.resource_type})

    def on_console(message: Any) -> None:
        if message.type == "error":
            result["consoleErrors"].append(message.text)

    def on_dialog(dialog: Any) -> None:
        result["dialogs"].append({"type": dialog.type, "message": dialog.message})
        dialog.dismiss()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, java_script_enabled=True, service_workers="block")
            context.set_default_timeout(TIMEOUT_MS)
            context.add_init_script(WATCH_VIOLATIONS)
            page = context.new_page()
            page.on("request", on_request)
            page.on("console", on_console)
            page.on("pageerror", lambda error: result["pageErrors"].append(str(error)))
            page.on("dialog", on_dialog)

            page.goto(url, wait_until="load")
            result["page"] = page.evaluate(READ_PAGE)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

            search = page.locator("#search")
            for query in queries:
                search.click()
                search.fill("")
                search.press_sequentially(query)
                page.wait_for_function(SEARCHED, arg=query)
                result["queries"].append({"query": query, **page.evaluate(READ_ROWS)})
            if queries:
                search.fill("")
                page.wait_for_function(SEARCHED, arg="")
                result["cleared"] = page.evaluate(READ_ROWS)

            if fragment is not None:
                shared = context.new_page()
                shared.on("request", on_request)
                shared.on("console", on_console)
                shared.on("dialog", on_dialog)
                shared.goto(f"{url}#q={quote(fragment, safe='')}", wait_until="load")
                result["fragment"] = {"query": fragment, **shared.evaluate(READ_ROWS)}
                result["cspViolations"].extend(shared.evaluate("window.__cspViolations"))
            result["cspViolations"].extend(page.evaluate("window.__cspViolations"))
        finally:
            browser.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("report", type=Path, help="the report, an HTML file")
    parser.add_argument("screenshot", type=Path, help="where the full-page screenshot (PNG) goes")
    parser.add_argument("--query", action="append", default=[], help="text to type into the search box (repeatable)")
    parser.add_argument("--fragment", help="also open the page at #q=TEXT and read the rows it shows")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"browser_check: no report at {args.report}", file=sys.stderr)
        return 2
    try:
        result = check(args.report, args.screenshot, args.query, args.fragment)
    except PlaywrightError as error:
        print(f"browser_check: the browser could not read the page: {error}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
