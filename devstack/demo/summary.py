"""What the demo's summary computes: where every id each tenant asked to delete ended, read from the systems' state
(the emulator, the queues) rather than from logs alone, and the checks that all hold when "Everything adds up."."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from devstack.demo.beyond import beyond_adds_up
from devstack.demo.plan import CROSS_TENANT_IDS, Plan
from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment
from devstack.logs import LogSink


def account(stack: LocalDeployment, emulator: ExtendEmulator, sink: LogSink, plan: Plan) -> dict[str, Any]:
    """Where every id each tenant queued ended, from the systems' state (emulator, queues), not from logs alone."""
    from opscli.queues import peek_dead_letters  # noqa: PLC0415

    dead = peek_dead_letters(stack.sqs, stack.dead_letter_queue_url, limit=1000, hold_s=5)
    dead_ids = {item.parser_run_id for item in dead}
    reasons = Counter(f"{item.kind}: {item.reason}" for item in dead)
    not_found_logged = {
        (doc.get("tenant_id"), doc["parser_run_id"])
        for doc in sink.outcome_logs()
        if doc.get("outcome") == "not_found" and doc.get("trigger") == "sqs"
    }
    tenants: dict[str, Any] = {}
    for tenant_id, bulk_ids in (("acme", plan.acme_bulk), ("globex", plan.globex_bulk)):
        places: Counter[str] = Counter()
        for parser_run_id in bulk_ids:
            owner = plan.owner_of(parser_run_id)
            if parser_run_id in dead_ids:
                places["in_dlq"] += 1
            elif owner and owner[0] == tenant_id and not emulator.exists(parser_run_id, workspace_id=owner[1]):
                places["deleted"] += 1
            elif (owner is None or owner[0] != tenant_id) and (tenant_id, parser_run_id) in not_found_logged:
                places["not_found"] += 1
            else:
                places["unaccounted"] += 1
        tenants[tenant_id] = {"queue_path": dict(places), "bulk_ids": len(bulk_ids)}
    depths = stack.queue_depths()
    return {
        "tenants": tenants,
        "dlq": {"messages": len(dead), "parser_run_ids": len(dead_ids), "reasons": dict(reasons)},
        "still_queued": depths["visible"] + depths["in_flight"] + depths["delayed"],
        "others_runs": _others_runs(emulator, plan),
    }


def _others_runs(emulator: ExtendEmulator, plan: Plan) -> dict[str, Any]:
    """The runs each tenant asked for but did not own: still in Extend, and (metadata policy) never sent a DELETE."""
    asked = {
        "acme": plan.globex_runs[-CROSS_TENANT_IDS:],
        "globex": [
            *plan.acme_runs[-CROSS_TENANT_IDS:],
            plan.other_customer_runs[-1],
            *plan.other_customer_runs[:CROSS_TENANT_IDS],
        ],
    }
    report: dict[str, Any] = {}
    for tenant_id, ids in asked.items():
        still_there = sum(1 for run in ids if (owner := plan.owner_of(run)) and emulator.exists(run, owner[1]))
        deletes_sent = [
            request
            for request in emulator.requests
            if request.method == "DELETE" and request.parser_run_id in ids and request.status == 200
        ]
        report[tenant_id] = {"asked": len(ids), "still_there": still_there, "deleted_by_extend": len(deletes_sent)}
    other = [r for r in emulator.requests if r.method == "DELETE" and r.parser_run_id in plan.other_customer_runs]
    report["globex"]["deletes_sent"] = len(other)
    return report


@dataclass(frozen=True)
class Tally:
    """Where the ids one tenant asked to delete ended, singly and in bulk; ``unaccounted`` is the "queued" column."""

    tenant_id: str
    deleted: int
    not_found: int
    rejected: int
    in_dlq: int
    unaccounted: int
    requested: int

    @property
    def total(self) -> int:
        return self.deleted + self.not_found + self.rejected + self.in_dlq + self.unaccounted

    @property
    def adds_up(self) -> bool:
        return self.total == self.requested and self.unaccounted == 0


def tallies(summary: dict[str, Any]) -> list[Tally]:
    """One tally per tenant: its single DELETEs and where its bulk request's ids ended."""
    single = summary.get("single", {})
    found = []
    for tenant_id, tenant in summary.get("tenants", {}).items():
        path, bulk, singly = tenant["queue_path"], summary["bulk"][tenant_id], single.get(tenant_id, {})
        found.append(
            Tally(
                tenant_id,
                deleted=path.get("deleted", 0) + singly.get("deleted", 0),
                not_found=path.get("not_found", 0) + singly.get("not_found", 0),
                rejected=bulk["rejected"],
                in_dlq=path.get("in_dlq", 0),
                unaccounted=path.get("unaccounted", 0),
                requested=bulk["requested"] + singly.get("requested", 0),
            )
        )
    return found


@dataclass(frozen=True)
class LedgerCheck:
    """The receipts a tenant's requests show, and whether their totals are the tenant's tally."""

    tenant_id: str
    receipts: int
    requests: int
    agrees: bool


def ledger_checks(summary: dict[str, Any]) -> list[LedgerCheck]:
    ledger = summary.get("ledger", {})
    checks = []
    for tally in tallies(summary):
        expected = {
            "deleted": tally.deleted,
            "not_found": tally.not_found,
            "rejected": tally.rejected,
            "dead_lettered": tally.in_dlq,
            "queued": 0,
        }
        totals = ledger.get("totals", {}).get(tally.tenant_id, {})
        checks.append(
            LedgerCheck(
                tally.tenant_id,
                receipts=sum(totals.values()),
                requests=len(ledger.get("requests", {}).get(tally.tenant_id, [])),
                agrees=all(totals.get(outcome, 0) == n for outcome, n in expected.items()),
            )
        )
    return checks


def _isolated(report: dict[str, Any]) -> bool:
    """Every run a tenant asked for but did not own is still in Extend, and no DELETE went out for one."""
    return (
        report["still_there"] == report["asked"] and report["deleted_by_extend"] == 0 and not report.get("deletes_sent")
    )


def adds_up(summary: dict[str, Any]) -> bool:
    """Everything adds up: the queue drained; each tenant's ids all ended somewhere, as its ledger says; every
    completed request's callback verified; no tenant reached another's runs; a replay got the first answer with
    one DELETE sent; the other tenant's secret and a missing API key were refused; nothing is still queued."""
    single = summary.get("single", {})
    callbacks = summary.get("callbacks", {})
    replay, refusals = single.get("replay", {}), single.get("refusals", {})
    return all(
        [
            bool(summary.get("drained", False)),
            *(tally.adds_up for tally in tallies(summary)),
            *(check.agrees for check in ledger_checks(summary)),
            callbacks.get("verified", -1) == callbacks.get("completed", -2),
            *(_isolated(report) for report in summary.get("others_runs", {}).values()),
            bool(replay.get("same_answer")) and replay.get("extend_deletes") == 1,
            refusals.get("other_tenants_secret") == 401 and refusals.get("no_api_key") == 403,
            summary.get("still_queued", 0) == 0,
            beyond_adds_up(summary),
        ]
    )
