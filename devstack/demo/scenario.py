"""What ``make run``'s demo does, step by step: each tenant's single DELETEs and bulk request, malformed messages on
the queue, the queue draining, and each tenant following its requests to their end; it collects the summary that
``summary`` checks and ``rendering`` prints."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devstack.demo.beyond import beyond
from devstack.demo.plan import CROSS_TENANT_IDS, OTHER_CUSTOMER, Plan, make_plan
from devstack.demo.rendering import Console, fault_table, print_stack, print_summary, show
from devstack.demo.stack import running_stack, stack_options, stack_receivers
from devstack.demo.summary import account, adds_up
from devstack.demo.tenant_client import HttpReply, TenantClient, http
from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment
from devstack.logs import LogSink

MALFORMED_MESSAGES = ('{"parserRunId": "../../etc/passwd"}', '{"parserRunId": "parser_run_42"')
INVALID_BULK_IDS = ("not/a valid id", "", "x" * 300)


def run_demo(args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    plan = make_plan(args.size)
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        console.line(
            "Starting the local stack: moto (secrets, queues, tables), the Extend emulator, and the four functions "
            "(API, queue, callback, sweeper) ..."
        )
        with running_stack(stack_options(args), sink, plan) as (stack, emulator, endpoint, clients):
            print_stack(console, stack, emulator, endpoint, log_file)
            summary = _script(args, console, stack=stack, emulator=emulator, sink=sink, plan=plan, clients=clients)
        # every instance has exited and its output is read: the totals are final
        summary["metrics"] = dict(sorted(sink.metric_totals().items()))
    summary["seconds"] = round(time.monotonic() - started, 1)
    print_summary(console, summary)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if adds_up(summary) else 1


def _script(
    args: argparse.Namespace,
    console: Console,
    *,
    stack: LocalDeployment,
    emulator: ExtendEmulator,
    sink: LogSink,
    plan: Plan,
    clients: dict[str, TenantClient],
) -> dict[str, Any]:
    summary: dict[str, Any] = {"faults": dict(Counter(plan.faults.values()))}
    console.line()
    summary["single"] = _singles(console, plan, clients, emulator)

    console.line()
    acme_requested = [*plan.acme_bulk, *INVALID_BULK_IDS]
    random.Random(3).shuffle(acme_requested)
    console.line(
        f"2. Signed POST /deletions: acme {len(acme_requested)} ids ({len(plan.acme_absent) - 1} absent, "
        f"{len(INVALID_BULK_IDS)} invalid, {CROSS_TENANT_IDS} of globex's, faults injected on some of its runs); "
        f"globex {len(plan.globex_bulk)} ids ({CROSS_TENANT_IDS} of acme's, {CROSS_TENANT_IDS} of {OTHER_CUSTOMER}'s)"
    )
    for line in fault_table(plan):
        console.line(f"   {line}")
    summary["bulk"] = {
        "acme": _bulk(console, clients["acme"], acme_requested),
        "globex": _bulk(console, clients["globex"], plan.globex_bulk),
    }

    console.line()
    console.line(f"3. {len(MALFORMED_MESSAGES)} malformed messages put straight on the queue by a buggy producer")
    for body_text in MALFORMED_MESSAGES:
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body_text)

    console.line()
    console.line("4. The queue draining through the queue function")
    queued = sum(int(bulk["queued"]) for bulk in summary["bulk"].values())
    drained = drain(stack, sink, console, expected=queued + len(MALFORMED_MESSAGES), timeout_s=args.drain_timeout)
    summary["drained"] = drained
    summary.update(account(stack, emulator, sink, plan))
    console.line()
    console.line("5. Each tenant follows its deletion requests to their end, and is told when they complete")
    summary["ledger"] = _follow(console, clients, summary, timeout_s=args.drain_timeout)
    summary["callbacks"] = _callbacks(console, clients, summary["ledger"], timeout_s=30.0)
    console.line()
    summary["beyond"] = beyond(console, stack, emulator, clients["acme"], timeout_s=args.drain_timeout)
    summary["emulator"] = dict(sorted(emulator.stats().items()))
    summary["invocations"] = {
        "queue": dict(stack.queue_pool.stats) if stack.queue_pool else {},
        "api": dict(stack.api_pool.stats) if stack.api_pool else {},
        "queue_peak_concurrency": stack.queue_pool.peak_concurrency if stack.queue_pool else 0,
    }
    return summary


def _singles(
    console: Console, plan: Plan, clients: dict[str, TenantClient], emulator: ExtendEmulator
) -> dict[str, Any]:
    acme, globex = clients["acme"], clients["globex"]
    own, absent = plan.acme_singles
    foreign = plan.globex_runs[-1]  # globex leaves its last runs alone: they must survive acme's requests
    console.line("1. Single DELETEs over HTTP, each signed by its tenant")
    path = f"/parser_runs/{own}"
    first_headers = acme.headers("DELETE", path)
    first = http("DELETE", acme.api_url + path, headers=first_headers)
    show(console, f"acme   DELETE its own run {own[:18]}...", first)
    replay = http("DELETE", acme.api_url + path, headers=first_headers)
    replayed = replay.headers.get("Idempotent-Replayed", "")
    show(console, "acme   the same signed request, replayed", replay, f"   (Idempotent-Replayed: {replayed})")
    missing = acme.send("DELETE", f"/parser_runs/{absent}")
    show(console, "acme   DELETE a run that does not exist", missing)
    cross = acme.send("DELETE", f"/parser_runs/{foreign}")
    show(console, "acme   DELETE globex's run", cross, "   (the same answer as a missing id)")
    no_key = acme.send("DELETE", f"/parser_runs/{own}", api_key=False)
    show(console, "acme   DELETE without its x-api-key", no_key, "   (API Gateway)")
    forged = acme.send("DELETE", f"/parser_runs/{plan.acme_runs[1]}", secret=globex.signing_secret)
    show(console, "acme   DELETE signed with globex's secret", forged)
    globex_own = globex.send("DELETE", f"/parser_runs/{plan.globex_runs[0]}")
    show(console, "globex DELETE its own run (metadata names it)", globex_own)
    refused = globex.send("DELETE", f"/parser_runs/{plan.other_customer_runs[-1]}")
    show(console, f"globex DELETE {OTHER_CUSTOMER}'s run (same workspace)", refused, "   (read, not deleted)")
    deletes_of_own = [r for r in emulator.requests if r.method == "DELETE" and r.parser_run_id == own]
    requests = {
        "acme": [reply.body["deletionRequestId"] for reply in (first, missing, cross) if _has_request(reply)],
        "globex": [reply.body["deletionRequestId"] for reply in (globex_own, refused) if _has_request(reply)],
    }
    console.line(f"   deletion requests: acme {', '.join(requests['acme'])}; globex {', '.join(requests['globex'])}")
    return {
        "requests": requests,
        "acme": {
            "requested": 3,
            "deleted": int(first.status == 200),
            "not_found": int(missing.status == 404) + int(cross.status == 404),
        },
        "globex": {"requested": 2, "deleted": int(globex_own.status == 200), "not_found": int(refused.status == 404)},
        "replay": {
            "same_answer": replay.status == first.status and replay.body == first.body,
            "marked": replayed == "true",
            "extend_deletes": len(deletes_of_own),
        },
        "refusals": {"no_api_key": no_key.status, "other_tenants_secret": forged.status},
        "cross_tenant_single": {
            "status": cross.status,
            # the same answer as for a missing id, but for the id it names (and its own deletion request)
            "body_as_missing": isinstance(missing.body, dict)
            and isinstance(cross.body, dict)
            and {**cross.body, "deletionRequestId": None}
            == {**missing.body, "id": foreign, "parserRunId": foreign, "deletionRequestId": None},
        },
    }


def _has_request(reply: HttpReply) -> bool:
    return isinstance(reply.body, dict) and isinstance(reply.body.get("deletionRequestId"), str)


def _bulk(console: Console, client: TenantClient, ids: list[str]) -> dict[str, Any]:
    queued = 0
    rejected: list[dict[str, str]] = []
    request_ids: list[str] = []
    for start in range(0, len(ids), 1000):
        body = json.dumps({"parserRunIds": ids[start : start + 1000]}).encode()
        reply = client.send("POST", "/deletions", body)
        if reply.status != 202 or not isinstance(reply.body, dict):
            console.line(f"   POST /deletions -> {reply.status} {reply.body}")
            continue
        queued += int(reply.body.get("queued", 0))
        rejected.extend(reply.body.get("rejected", []))
        request_ids.append(str(reply.body["deletionRequestId"]))
    console.line(
        f"   {client.tenant_id:<6} -> 202 queued {queued}, rejected {len(rejected)}; "
        f"deletion request {', '.join(request_ids)}"
    )
    for item in rejected:
        console.line(f"      {item.get('parserRunId')!r}: {item.get('reason')}")
    return {"requested": len(ids), "queued": queued, "rejected": len(rejected), "requests": request_ids}


def drain(stack: LocalDeployment, sink: LogSink, console: Console, *, expected: int, timeout_s: float) -> bool:
    """Wait until the queue is empty and nothing is in flight; a live line shows the queue and the outcomes."""
    started = time.monotonic()
    quiet_since: float | None = None
    redelivery = RedeliveryWait(stack)
    last_note = ""
    while True:
        depths = stack.queue_depths()
        logs = [doc for doc in sink.outcome_logs() if doc.get("trigger") == "sqs"]
        outcomes = Counter(doc["outcome"] for doc in logs)
        parked = sum(1 for doc in logs if doc["outcome"] == "failed" and doc.get("dead_letter_message_id"))
        done = outcomes["deleted"] + outcomes["not_found"] + outcomes["invalid"] + parked
        note = redelivery.note(depths)
        console.progress(
            f"  draining  queue {depths['visible'] + depths['delayed']:>4} waiting {depths['in_flight']:>4} in flight"
            f"  DLQ {depths['dead_letter']:>2}"
            f"  | deleted {outcomes['deleted']:>4}  not found {outcomes['not_found']:>3}  invalid {outcomes['invalid']}"
            f"  failed attempts {outcomes['failed']:>3}  | {done}/{expected}  {time.monotonic() - started:5.1f} s"
            + note,
            news=bool(note) and note != last_note,
        )
        last_note = note
        idle = depths["visible"] == depths["in_flight"] == depths["delayed"] == 0
        if idle:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 0.5:
                console.progress("  drained.", final=False)
                console.progress("", final=True) if console.tty else None
                return True
        else:
            quiet_since = None
        if time.monotonic() - started > timeout_s:
            console.progress("  gave up waiting for the queue to drain", final=True)
            return False
        time.sleep(0.25)


class RedeliveryWait:
    """Tells the drain's reader what a pause is: messages in flight with none visible or delayed and no batch at
    work were returned for a retry, and SQS delivers them again only when their visibility timeout ends. A batch
    the event source has just received is in flight too, for up to its batching window before it is invoked: the
    note waits that long (and a second) before it names a redelivery."""

    def __init__(self, stack: LocalDeployment) -> None:
        self.stack = stack
        self.visibility_s = stack.visibility_timeout_s
        source = stack.queue_function.sqs
        self.settle_s = (source.batching_window_s if source is not None else 0.0) + 1.0
        self._since: float | None = None

    def note(self, depths: dict[str, int]) -> str:
        working = self.stack.queue_pool.busy if self.stack.queue_pool is not None else 0
        if not depths["in_flight"] or depths["visible"] or depths["delayed"] or working:
            self._since = None
            return ""
        self._since = self._since or time.monotonic()
        if time.monotonic() - self._since < self.settle_s:
            return ""
        count = depths["in_flight"]
        return (
            f"  | waiting for SQS to redeliver {count} message{'' if count == 1 else 's'} returned for a retry, "
            f"after the {self.visibility_s} s visibility timeout"
        )


def _follow(
    console: Console, clients: dict[str, TenantClient], summary: dict[str, Any], *, timeout_s: float
) -> dict[str, Any]:
    """Poll ``GET /deletions/{id}`` for each request until it completes; its counts, per tenant, as the ledger
    keeps them."""
    requests = {
        tenant_id: [*summary["single"]["requests"][tenant_id], *summary["bulk"][tenant_id]["requests"]]
        for tenant_id in clients
    }
    final = {"completed", "completed_with_failures"}
    statuses: dict[str, str] = {}
    totals: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + timeout_s
    for tenant_id, request_ids in requests.items():
        totals[tenant_id] = {}
        for request_id in request_ids:
            reply = clients[tenant_id].status(request_id)
            while reply.body.get("status") not in final and time.monotonic() < deadline:
                time.sleep(0.5)
                reply = clients[tenant_id].status(request_id)
            body = reply.body
            statuses[request_id] = str(body.get("status"))
            for outcome, n in body.get("counts", {}).items():
                totals[tenant_id][outcome] = totals[tenant_id].get(outcome, 0) + int(n)
            counts = ", ".join(f"{outcome} {n}" for outcome, n in body.get("counts", {}).items() if n)
            receipts = sum(1 for item in body.get("items", []) if item.get("outcome") != "queued")
            console.line(f"   {tenant_id:<6} {request_id}  {statuses[request_id]:<24} {counts}  ({receipts} receipts)")
    return {"requests": requests, "statuses": statuses, "totals": totals}


def _callbacks(
    console: Console, clients: dict[str, TenantClient], ledger: dict[str, Any], *, timeout_s: float
) -> dict[str, Any]:
    """Wait for one completion callback per completed request, and verify each with the standardwebhooks library
    and the tenant's own secret."""
    import standardwebhooks  # noqa: PLC0415 - a dev dependency, used here only

    receiver = stack_receivers[-1]
    completed = {rid for rid, state in ledger["statuses"].items() if state.startswith("completed")}
    owner = {rid: tenant_id for tenant_id, rids in ledger["requests"].items() for rid in rids}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        told = {_callback_request(item) for item in receiver.snapshot()}
        if completed <= told:
            break
        time.sleep(0.25)
    verified: set[str] = set()
    for item in receiver.snapshot():
        request_id = _callback_request(item)
        tenant_id = owner.get(request_id)
        if tenant_id is None or not item["path"].endswith(f"/{tenant_id}"):
            continue
        try:
            secret = clients[tenant_id].callback_signing_secret
            event = standardwebhooks.Webhook(secret).verify(item["body"], item["headers"])
        except standardwebhooks.WebhookVerificationError:
            continue
        if event["data"]["status"] == ledger["statuses"].get(request_id):
            verified.add(request_id)
    console.line(
        f"   completion callbacks: {len(receiver.snapshot())} received for {len(completed)} completed requests, "
        f"{len(verified)} verified with standardwebhooks and the tenant's own secret"
    )
    return {"completed": len(completed), "received": len(receiver.snapshot()), "verified": len(verified)}


def _callback_request(item: dict[str, Any]) -> str:
    try:
        return str(json.loads(item["body"])["data"]["deletionRequestId"])
    except (ValueError, KeyError, TypeError):
        return ""
