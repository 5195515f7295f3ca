"""``make run``: the whole system on loopback, no AWS account, then a scripted demo and a summary that adds up.

It starts moto's server (the secrets, the queues and their DLQs, the tables as ``template.yaml`` declares them),
the Extend emulator (seeded, with faults injected, an organization-scoped key), and the local deployment
(``devstack.local_deployment``: the three functions, API, queue and callback, behind the API Gateway front and
their SQS event sources), and publishes its outputs as a stack in moto (``devstack.stack_outputs``), so that
``extend-deleter --stack-name`` finds it. It registers two tenants as an operator would
(``extend-deleter tenants add --create-api-key``):

- ``acme``, ownership ``workspace``: its runs live in its own Extend workspace;
- ``globex``, ownership ``metadata``: its runs share a workspace with another customer's, told apart by a
  ``tenant`` metadata key (API 2026-02-09, which the demo runs with).

Then each tenant calls the API over real HTTP, every request signed with its own secret:

1. single DELETEs: its own run, a missing one, the other tenant's run (404, and the run stays), a request
   without an API key (403), one signed with the other tenant's secret (401), and a replay (the first answer);
2. a bulk ``POST /deletions`` each: acme's few hundred ids, some absent, some invalid, some with injected faults
   (500s, 429 with ``Retry-After``, a connection reset, a few permanent 403s); both with the other's runs mixed in;
3. two malformed messages a buggy producer put straight on the queue;
4. the queue draining through the queue function, with a live progress line (which says when it is waiting for
   SQS to redeliver a message returned for a retry);
5. each tenant following its deletion requests to their end, and the completion callbacks verified;
6. a summary per tenant: deleted / not found / rejected / in the DLQ / still queued, checked against the
   emulator's state; the other customers' runs left in place; the EMF metric totals; and the time taken.

``--serve`` keeps the stack up and prints each tenant's key, secret and ready-to-paste commands instead, with the
runs of a customer not yet registered (``newco``) for the walk-through in docs/local-stack.md.
Local tuning (printed at start): a short visibility timeout and a high per-instance Extend rate, so retries
and redrives happen in seconds; everything else is the template's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import re
import secrets
import string
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.local_deployment import OPERATOR_PRINCIPAL, REPO_ROOT, LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import REGION, moto_server
from devstack.stack_outputs import publish_outputs, stack_name
from opscli.tenants import AddedTenant
from parser_run_deleter.logic.authentication import signed_payload
from parser_run_deleter.logic.webhook_signature import signature_headers

# The Extend key is organization-scoped: a workspace tenant's calls name its workspace, everyone else's the
# default one, where globex's runs and another customer's (initech, not a tenant here) live side by side.
SHARED_WORKSPACE = "ws_shared"
ACME_WORKSPACE = "ws_acme"
METADATA_KEY = "tenant"
OTHER_CUSTOMER = "initech"
LOCAL_PARAMETERS = {"ExtendMaxRequestsPerSecondPerInstance": "50", "ExtendApiVersion": "2026-02-09"}
LOCAL_ENVIRONMENT = {
    "EXTEND_BACKOFF_BASE_SECONDS": "0.05",
    "EXTEND_BACKOFF_CAP_SECONDS": "0.5",
}
MALFORMED_MESSAGES = ('{"parserRunId": "../../etc/passwd"}', '{"parserRunId": "parser_run_42"')
INVALID_BULK_IDS = ("not/a valid id", "", "x" * 300)
GLOBEX_RUNS = 12
OTHER_CUSTOMER_RUNS = 4
CROSS_TENANT_IDS = 3  # of the other tenant's runs, mixed into each bulk request
SIGNING_RECIPE = REPO_ROOT / "docs" / "tenancy.md"
# A customer that is not a tenant yet, with runs of its own in its own workspace: docs/local-stack.md's walk-through
# registers it. Fixed ids, so that the walk-through can name them as written.
WALKTHROUGH_TENANT = "newco"
WALKTHROUGH_WORKSPACE = "ws_newco"
WALKTHROUGH_RUNS = tuple(f"parser_run_newco_{n}" for n in (1, 2, 3))


def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def http(method: str, url: str, *, headers: dict[str, str], body: bytes | None = None) -> HttpReply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            status, raw, answered = response.status, response.read(), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        status, raw, answered = error.code, error.read(), dict(error.headers.items())
    try:
        return HttpReply(status, json.loads(raw) if raw else None, answered)
    except ValueError:
        return HttpReply(status, raw.decode(errors="replace"), answered)


def _id(rng: random.Random, prefix: str = "parser_run_") -> str:
    return prefix + "".join(rng.choices(string.ascii_letters + string.digits, k=22))


@dataclass
class Plan:
    """Which runs exist and whose they are, which get faults, and what each tenant sends."""

    acme_runs: list[str]
    acme_absent: list[str]
    globex_runs: list[str]
    other_customer_runs: list[str]
    faults: dict[str, str] = field(default_factory=dict)  # id -> fault label

    @property
    def acme_singles(self) -> tuple[str, str]:
        return self.acme_runs[0], self.acme_absent[0]

    @property
    def acme_bulk(self) -> list[str]:
        # its own runs but the singles and the last few (globex asks for those: they must survive)
        keep = {*self.acme_singles, *self.acme_runs[-CROSS_TENANT_IDS:]}
        own = [value for value in self.acme_runs + self.acme_absent if value not in keep]
        return own + self.globex_runs[-CROSS_TENANT_IDS:]

    @property
    def globex_bulk(self) -> list[str]:
        # its own runs but the first (deleted singly), the last few (acme asks for those: they must survive)
        own = self.globex_runs[1:-CROSS_TENANT_IDS]
        return own + self.acme_runs[-CROSS_TENANT_IDS:] + self.other_customer_runs[:CROSS_TENANT_IDS]

    def owner_of(self, parser_run_id: str) -> tuple[str, str] | None:
        """(owner, workspace) of a seeded run; None for an id that never existed."""
        if parser_run_id in self.acme_runs:
            return "acme", ACME_WORKSPACE
        if parser_run_id in self.globex_runs:
            return "globex", SHARED_WORKSPACE
        if parser_run_id in self.other_customer_runs:
            return OTHER_CUSTOMER, SHARED_WORKSPACE
        return None


def make_plan(size: int, seed: int = 7) -> Plan:
    rng = random.Random(seed)
    ids = list(dict.fromkeys(_id(rng) for _ in range(size + 2)))
    absent_count = max(2, size // 10)
    plan = Plan(
        acme_runs=ids[absent_count:],
        acme_absent=ids[:absent_count],
        globex_runs=[_id(rng, "parser_run_gx_") for _ in range(GLOBEX_RUNS)],
        other_customer_runs=[_id(rng, "parser_run_in_") for _ in range(OTHER_CUSTOMER_RUNS)],
    )
    # Faults go on acme's own runs only, and never on one the other tenant asks for (it must stay untouched).
    candidates = plan.acme_runs[1:-CROSS_TENANT_IDS]
    rng.shuffle(candidates)
    share = max(1, size // 30)
    groups = [
        ("500 then ok", share),
        ("500 x4 (SQS retry)", max(1, share // 3)),
        ("429 Retry-After 1", share),
        ("connection reset", share),
        ("403 permanent", 2),
    ]
    for label, count in groups:
        for _ in range(count):
            if candidates:
                plan.faults[candidates.pop()] = label
    return plan


# What each injected fault makes the emulator do, and what becomes of the run: the rows of step 2's table.
FAULT_EFFECTS = {
    "500 then ok": "two 500s, then deleted: retried within one invocation",
    "500 x4 (SQS retry)": "four 500s, one more than an invocation tries: returned, redelivered by SQS, deleted",
    "429 Retry-After 1": "one 429 with Retry-After: 1, then deleted: the function waits as told",
    "connection reset": "one connection reset, then deleted: retried within one invocation",
    "403 permanent": "403 every time: returned until its last receive, then dead-lettered as permanent",
}


def fault_script(label: str) -> list[Fault]:
    return {
        "500 then ok": [Fault.status(500)] * 2,
        "500 x4 (SQS retry)": [Fault.status(500)] * 4,
        "429 Retry-After 1": [Fault.rate_limited(retry_after=1)],
        "connection reset": [Fault.reset()],
        "403 permanent": [Fault.status(403)] * 20,
    }[label]


def seed_extend(emulator: ExtendEmulator, plan: Plan) -> None:
    emulator.seed(plan.acme_runs, workspace_id=ACME_WORKSPACE)
    emulator.seed(plan.globex_runs, workspace_id=SHARED_WORKSPACE, metadata={METADATA_KEY: "globex"})
    emulator.seed(plan.other_customer_runs, workspace_id=SHARED_WORKSPACE, metadata={METADATA_KEY: OTHER_CUSTOMER})
    for parser_run_id, label in plan.faults.items():
        emulator.inject(parser_run_id, *fault_script(label))


class Console:
    """Demo output: plain lines, and one progress line redrawn on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_plain = 0.0

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str, final: bool = False, news: bool = False) -> None:
        """Redraw the line on a terminal; elsewhere print it every 2 s, and at once when it has ``news``."""
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        elif final or news or time.monotonic() - self._last_plain >= 2.0:
            self._last_plain = time.monotonic()
            self.line(text)


@dataclass(frozen=True)
class TenantClient:
    """One tenant's client of the API: its API key, its signing secret, and the secret its callbacks are signed with
    (a key of their own, so that no callback can pass for a request)."""

    tenant_id: str
    api_url: str
    api_key: str
    signing_secret: str
    callback_signing_secret: str

    @classmethod
    def of(cls, added: AddedTenant, api_url: str) -> TenantClient:
        assert added.api_key_value is not None
        return cls(
            added.tenant.tenant_id, api_url, added.api_key_value, added.signing_secret, added.callback_signing_secret
        )

    def headers(
        self, method: str, path: str, body: bytes = b"", *, secret: str | None = None, api_key: bool = True
    ) -> dict[str, str]:
        """The API key, and the Standard Webhooks headers signing the request (signing contract v2: its method and
        path, and its body when it has one)."""
        headers = signature_headers(secret or self.signing_secret, signed_payload(method, path, body))
        if api_key:
            headers["x-api-key"] = self.api_key
        if body:
            headers["content-type"] = "application/json"
        return headers

    def send(self, method: str, path: str, body: bytes | None = None, **signing: Any) -> HttpReply:
        headers = self.headers(method, path, body or b"", **signing)
        return http(method, self.api_url + path, headers=headers, body=body)

    def status(self, request_id: str) -> HttpReply:
        """``GET /deletions/{id}``: every page of the request's runs, signed as ``GET /deletions/{id}``."""
        path = f"/deletions/{request_id}"
        reply = self.send("GET", path)
        items = list(reply.body.get("items", [])) if isinstance(reply.body, dict) else []
        while isinstance(reply.body, dict) and reply.body.get("nextToken"):
            headers = self.headers("GET", path)
            reply = http("GET", f"{self.api_url}{path}?nextToken={reply.body['nextToken']}", headers=headers)
            items += reply.body.get("items", []) if isinstance(reply.body, dict) else []
        if isinstance(reply.body, dict):
            reply.body["items"] = items
        return reply


class CallbackReceiver:
    """The tenants' callback endpoint, on loopback: records each completion callback it is sent, answers 204."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, tenant_id: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callbacks/{tenant_id}"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def running_stack(
    options: LocalDeploymentOptions, sink: LogSink, plan: Plan, prewarm: bool = True
) -> Iterator[tuple[LocalDeployment, ExtendEmulator, str, dict[str, TenantClient]]]:
    _quiet_moto()
    extend_key = f"sk_local_{secrets.token_hex(16)}"
    receiver = CallbackReceiver()
    stack_receivers.append(receiver)
    with moto_server() as endpoint, ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        seed_extend(emulator, plan)
        stack = LocalDeployment(endpoint, emulator.base_url, extend_key, sink, options)
        try:
            stack.start()
            publish_outputs(stack)  # extend-deleter --stack-name finds it, as it finds a deployed stack
            acme = stack.register_tenant("acme", ownership="workspace", workspace_id=ACME_WORKSPACE)
            globex = stack.register_tenant("globex", ownership="metadata", metadata_key=METADATA_KEY)
            clients = {added.tenant.tenant_id: TenantClient.of(added, stack.api_url) for added in (acme, globex)}
            for tenant_id in clients:  # each tenant is told, on loopback, when one of its requests completes
                stack.tenant_admin().set_callback(tenant_id, receiver.url(tenant_id))
            if prewarm:
                stack.prewarm()
            yield stack, emulator, endpoint, clients
        finally:
            stack.stop()
            receiver.close()


# The callback receiver of the running stack (one at a time), for the script to read what tenants were told.
stack_receivers: list[CallbackReceiver] = []


def _options(args: argparse.Namespace) -> LocalDeploymentOptions:
    return LocalDeploymentOptions(
        parameter_overrides={**LOCAL_PARAMETERS, **args.parameter},
        environment_overrides=dict(LOCAL_ENVIRONMENT),
        visibility_timeout_s=args.visibility_timeout,
        workspace_id=SHARED_WORKSPACE,
    )


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


def run_demo(args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    plan = make_plan(args.size)
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        console.line(
            "Starting the local stack: moto (secrets, queues, tables), the Extend emulator, and the three functions "
            "(API, queue, callback) ..."
        )
        with running_stack(_options(args), sink, plan) as (stack, emulator, endpoint, clients):
            _print_stack(console, stack, emulator, endpoint, log_file)
            summary = _script(args, console, stack=stack, emulator=emulator, sink=sink, plan=plan, clients=clients)
        # every instance has exited and its output is read: the totals are final
        summary["metrics"] = dict(sorted(sink.metric_totals().items()))
    summary["seconds"] = round(time.monotonic() - started, 1)
    ok = _print_summary(console, summary)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if ok else 1


def _print_stack(
    console: Console, stack: LocalDeployment, emulator: ExtendEmulator, endpoint: str, log_file: Path
) -> None:
    assert stack.queue_pool is not None
    source = stack.queue_function.sqs
    assert source is not None
    console.line(f"  API Gateway  {stack.api_url}  (each tenant: its own x-api-key, its own signing secret)")
    console.line(f"  moto         {endpoint}")
    console.line(f"  Extend       {emulator.base_url}  (organization-scoped key)")
    console.line(f"  stack        {stack_name(stack)}  (its outputs in moto: extend-deleter --stack-name finds it)")
    console.line("  functions, from template.yaml:")
    for line in _function_lines(stack):
        console.line(f"    {line}")
    console.line(
        f"  local tuning: visibility timeout {stack.visibility_timeout_s} s, "
        + ", ".join(f"{k}={v}" for k, v in {**LOCAL_PARAMETERS, **stack.options.parameter_overrides}.items())
        + ", "
        + ", ".join(f"{k}={v}" for k, v in LOCAL_ENVIRONMENT.items())
    )
    console.line(f"  function logs {log_file}")
    console.line("  tenants (extend-deleter tenants add --create-api-key):")
    for tenant in stack.tenant_admin().list():
        where = f"workspace {tenant.workspace_id}" if tenant.workspace_id else f"metadata[{tenant.metadata_key!r}]"
        console.line(
            f"    {tenant.tenant_id:<8} ownership {tenant.ownership.value:<9} {where:<22} "
            f"API key {', '.join(tenant.api_key_ids)}, usage plan {tenant.limits.rate_limit:g}/s burst "
            f"{tenant.limits.burst_limit}, {tenant.limits.daily_quota}/day"
        )


def _function_lines(stack: LocalDeployment) -> list[str]:
    """One line per function of the template: what triggers it, and the settings the local runtime applies."""
    api = stack.api_function
    routes = ", ".join(f"{route.method.upper()} {route.path}" for route in api.api_routes)
    api_instances = stack.api_pool.max_instances if stack.api_pool else 0
    lines = [
        f"{api.logical_id:<17} API Gateway /{stack.stage}: {routes}; {api_instances} instances, "
        f"Timeout {api.timeout_s:g} s"
    ]
    for spec in stack.template.sqs_functions():
        assert spec.sqs is not None
        pool = (
            stack.queue_pool
            if spec.logical_id == stack.queue_function.logical_id
            else stack.other_pools.get(spec.logical_id)
        )
        source = spec.sqs
        redrive = stack.redrive_targets.get(source.queue_logical_id)
        lines.append(
            f"{spec.logical_id:<17} SQS {source.queue_logical_id}: BatchSize {source.batch_size}, window "
            f"{source.batching_window_s:g} s, MaximumConcurrency {pool.max_instances if pool else '-'}, Timeout "
            f"{spec.timeout_s:g} s" + (f"; maxReceiveCount {redrive[1]}, then {redrive[0]}" if redrive else "")
        )
    return lines


def _show(console: Console, label: str, reply: HttpReply, note: str = "") -> None:
    body = json.dumps(reply.body) if not isinstance(reply.body, str) else reply.body
    console.line(f"   {label:<52} -> {reply.status} {body}{note}")


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
    _show(console, f"acme   DELETE its own run {own[:18]}...", first)
    replay = http("DELETE", acme.api_url + path, headers=first_headers)
    replayed = replay.headers.get("Idempotent-Replayed", "")
    _show(console, "acme   the same signed request, replayed", replay, f"   (Idempotent-Replayed: {replayed})")
    missing = acme.send("DELETE", f"/parser_runs/{absent}")
    _show(console, "acme   DELETE a run that does not exist", missing)
    cross = acme.send("DELETE", f"/parser_runs/{foreign}")
    _show(console, "acme   DELETE globex's run", cross, "   (the same answer as a missing id)")
    no_key = acme.send("DELETE", f"/parser_runs/{own}", api_key=False)
    _show(console, "acme   DELETE without its x-api-key", no_key, "   (API Gateway)")
    forged = acme.send("DELETE", f"/parser_runs/{plan.acme_runs[1]}", secret=globex.signing_secret)
    _show(console, "acme   DELETE signed with globex's secret", forged)
    globex_own = globex.send("DELETE", f"/parser_runs/{plan.globex_runs[0]}")
    _show(console, "globex DELETE its own run (metadata names it)", globex_own)
    refused = globex.send("DELETE", f"/parser_runs/{plan.other_customer_runs[-1]}")
    _show(console, f"globex DELETE {OTHER_CUSTOMER}'s run (same workspace)", refused, "   (read, not deleted)")
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
            == {**missing.body, "parserRunId": foreign, "deletionRequestId": None},
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


def _fault_table(plan: Plan) -> list[str]:
    """The faults injected on acme's runs: one row per kind, with how many runs have it and what it does."""
    counts = Counter(plan.faults.values())
    width = max(len(label) for label in FAULT_EFFECTS)
    rows = [f"{'fault injected':<{width}}  {'runs':>4}  what the Extend emulator does, and what becomes of the run"]
    rows += [
        f"{label:<{width}}  {counts[label]:>4}  {effect}" for label, effect in FAULT_EFFECTS.items() if counts[label]
    ]
    return rows


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
    for line in _fault_table(plan):
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
    summary.update(_account(stack, emulator, sink, plan))
    console.line()
    console.line("5. Each tenant follows its deletion requests to their end, and is told when they complete")
    summary["ledger"] = _follow(console, clients, summary, timeout_s=args.drain_timeout)
    summary["callbacks"] = _callbacks(console, clients, summary["ledger"], timeout_s=30.0)
    summary["emulator"] = dict(sorted(emulator.stats().items()))
    summary["invocations"] = {
        "queue": dict(stack.queue_pool.stats) if stack.queue_pool else {},
        "api": dict(stack.api_pool.stats) if stack.api_pool else {},
        "queue_peak_concurrency": stack.queue_pool.peak_concurrency if stack.queue_pool else 0,
    }
    return summary


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


def _account(stack: LocalDeployment, emulator: ExtendEmulator, sink: LogSink, plan: Plan) -> dict[str, Any]:
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


def _print_summary(console: Console, summary: dict[str, Any]) -> bool:
    single, tenants, others = summary.get("single", {}), summary.get("tenants", {}), summary.get("others_runs", {})
    console.line()
    console.line("Summary, per tenant (ids each one asked to delete)")
    console.line(f"  {'':<10}{'deleted':>9}{'not found':>11}{'rejected':>10}{'in DLQ':>8}{'queued':>8}{'total':>7}")
    adds_up = bool(summary.get("drained", False))
    for tenant_id, account in tenants.items():
        path, bulk, singly = account["queue_path"], summary["bulk"][tenant_id], single.get(tenant_id, {})
        deleted = path.get("deleted", 0) + singly.get("deleted", 0)
        not_found = path.get("not_found", 0) + singly.get("not_found", 0)
        in_dlq = path.get("in_dlq", 0)
        unaccounted = path.get("unaccounted", 0)
        total = deleted + not_found + bulk["rejected"] + in_dlq + unaccounted
        requested = bulk["requested"] + singly.get("requested", 0)
        ok = total == requested and unaccounted == 0
        adds_up = adds_up and ok
        console.line(
            f"  {tenant_id:<10}{deleted:>9}{not_found:>11}{bulk['rejected']:>10}{in_dlq:>8}{unaccounted:>8}"
            f"{total:>7}   of {requested} requested: {'adds up' if ok else 'DOES NOT ADD UP'}"
        )
    ledger = summary.get("ledger", {})
    for tenant_id, account in tenants.items():
        path, bulk, singly = account["queue_path"], summary["bulk"][tenant_id], single.get(tenant_id, {})
        expected = {
            "deleted": path.get("deleted", 0) + singly.get("deleted", 0),
            "not_found": path.get("not_found", 0) + singly.get("not_found", 0),
            "rejected": bulk["rejected"],
            "dead_lettered": path.get("in_dlq", 0),
            "queued": 0,
        }
        totals = ledger.get("totals", {}).get(tenant_id, {})
        agrees = all(totals.get(outcome, 0) == n for outcome, n in expected.items())
        request_count = len(ledger.get("requests", {}).get(tenant_id, []))
        console.line(
            f"  Ledger, {tenant_id}: {sum(totals.values())} receipts in {request_count} requests, "
            f"{'agrees' if agrees else 'DISAGREES'} with the emulator and the queues"
        )
        adds_up = adds_up and agrees
    callbacks = summary.get("callbacks", {})
    console.line(
        f"  Completion callbacks: {callbacks.get('verified', 0)} verified of {callbacks.get('completed', 0)} "
        "completed requests"
    )
    adds_up = adds_up and callbacks.get("verified", -1) == callbacks.get("completed", -2)
    replay = single.get("replay", {})
    refusals = single.get("refusals", {})
    console.line("  Isolation:")
    for tenant_id, report in others.items():
        sent = report.get("deletes_sent")
        console.line(
            f"    {tenant_id}: asked for {report['asked']} runs it does not own -> all 'not found'; "
            f"{report['still_there']} still in Extend, {report['deleted_by_extend']} deleted"
            + (f"; DELETEs sent for {OTHER_CUSTOMER}'s runs: {sent}" if sent is not None else "")
        )
        adds_up = adds_up and report["still_there"] == report["asked"] and report["deleted_by_extend"] == 0
        adds_up = adds_up and not sent
    console.line(
        f"    replayed request: {'the first answer' if replay.get('same_answer') else 'A DIFFERENT ANSWER'}, "
        f"{replay.get('extend_deletes')} DELETE reached Extend; other tenant's secret -> "
        f"{refusals.get('other_tenants_secret')}; no API key -> {refusals.get('no_api_key')}"
    )
    adds_up = adds_up and bool(replay.get("same_answer")) and replay.get("extend_deletes") == 1
    adds_up = adds_up and refusals.get("other_tenants_secret") == 401 and refusals.get("no_api_key") == 403
    dlq = summary.get("dlq", {})
    console.line(f"  DLQ messages {dlq.get('messages', 0)} (parser runs + malformed), by reason:")
    for reason, count in sorted(dlq.get("reasons", {}).items()):
        console.line(f"    {count:>3}  {reason}")
    console.line(f"  still queued {summary.get('still_queued', 0)}")
    adds_up = adds_up and summary.get("still_queued", 0) == 0
    console.line("  Metrics (EMF totals from the functions' output):")
    for name, value in summary.get("metrics", {}).items():
        console.line(f"    {name:<28}{value:>8g}")
    console.line(
        "  Extend emulator answers: "
        + ", ".join(f"{status} x{count}" for status, count in summary.get("emulator", {}).items())
    )
    invocations = summary.get("invocations", {})
    queue_stats = invocations.get("queue", {})
    console.line(
        f"  Queue function: {queue_stats.get('invocations', 0)} invocations,"
        f" {queue_stats.get('cold_starts', 0)} cold starts, "
        f"peak concurrency {invocations.get('queue_peak_concurrency', 0)}"
    )
    console.line(f"  Time taken: {summary.get('seconds', 0):.1f} s")
    console.line(f"  Everything {'adds up' if adds_up else 'DOES NOT ADD UP'}.")
    return adds_up


def signing_recipe() -> str:
    """The curl + openssl signing recipe, as docs/tenancy.md gives it."""
    found = re.search(r"```sh\n(# sign-request.*?)```", SIGNING_RECIPE.read_text(encoding="utf-8"), re.DOTALL)
    return found.group(1) if found else "(see docs/tenancy.md)"


def serve(args: argparse.Namespace, console: Console) -> int:
    plan = make_plan(20)
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        sink.listeners.append(lambda function, doc: _echo_outcome(console, function, doc))
        with running_stack(_options(args), sink, plan) as (stack, emulator, endpoint, clients):
            console.line("The local stack is up. Ctrl-C stops it.")
            _print_stack(console, stack, emulator, endpoint, log_file)
            console.line()
            console.line("Each tenant's credentials (shown once, as `extend-deleter tenants add` prints them):")
            for client in clients.values():
                console.line(
                    f"  {client.tenant_id:<7} x-api-key {client.api_key}   signing secret {client.signing_secret}"
                )
            console.line(f"  acme's runs:   {plan.acme_runs[1]} ... ({len(plan.acme_runs)})")
            console.line(f"  globex's runs: {plan.globex_runs[0]} ... ({len(plan.globex_runs)})")
            console.line()
            console.line("Sign and send, as acme (docs/tenancy.md has the recipe):")
            console.line(signing_recipe().rstrip())
            acme = clients["acme"]
            console.line(f"  API={stack.api_url} KEY={acme.api_key} SECRET={acme.signing_secret}")
            path = f"/parser_runs/{plan.acme_runs[1]}"
            console.line(f'  curl -s -X DELETE -H "x-api-key: $KEY" $(sign_request DELETE {path}) "$API{path}"')
            console.line()
            emulator.seed(list(WALKTHROUGH_RUNS), workspace_id=WALKTHROUGH_WORKSPACE)
            console.line(
                "Operator CLI against this stack, in another terminal with extend-deleter on its PATH "
                "(source .venv/bin/activate): paste this line, then the commands below or docs/local-stack.md's "
                "walk-through"
            )
            # moto takes any key; its id names the caller, here the operator role, as on AWS with --role-arn.
            console.line(
                f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={OPERATOR_PRINCIPAL} "
                f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION} "
                f"STACK={stack_name(stack)} API={stack.api_url}"
            )
            cli = 'extend-deleter --stack-name "$STACK"'
            for command in (
                f"{cli} tenants list",
                f"{cli} tenants disable globex",
                f"printf '%s\\n' {' '.join(plan.acme_runs[4:7])} | {cli} enqueue -",
                f"{cli} status",
                f"{cli} dlq",
                f"{cli} smoke",
            ):
                console.line(f"  {command}")
            console.line(
                f"  Not a tenant yet: {WALKTHROUGH_TENANT}, its runs {', '.join(WALKTHROUGH_RUNS)} in workspace "
                f"{WALKTHROUGH_WORKSPACE} (the walk-through registers it)"
            )
            console.line()
            console.line("Outcomes as they happen:")
            stop = threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(1 if args.serve_seconds is None else args.serve_seconds):
                    if args.serve_seconds is not None:
                        break
            console.line("Shutting down ...")
    return 0


def _echo_outcome(console: Console, function: str, doc: dict[str, Any]) -> None:
    if "outcome" in doc and "_aws" not in doc:
        detail = doc.get("reason") or (f"HTTP {doc['status_code']}" if doc.get("status_code") else "")
        console.line(
            f"  [{doc.get('trigger')}] {doc.get('tenant_id', '-'):<8} {doc['outcome']:<9} {doc.get('parser_run_id')}"
            f"  {detail}"
        )


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep the stack up and print curl and CLI commands")
    parser.add_argument("--size", type=int, default=300, help="acme's ids in its bulk request (300)")
    parser.add_argument("--visibility-timeout", type=int, default=6, help="local queue visibility timeout, s (6)")
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        help="template parameter override Name=Value (repeatable), e.g. MaxReceiveCount=3",
    )
    parser.add_argument("--drain-timeout", type=float, default=90.0, help="give up draining after this many s")
    parser.add_argument("--summary-json", help="also write the summary as JSON to this file")
    parser.add_argument("--serve-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parameter = dict(args.parameter)
    if args.size < 20:
        parser.error("--size must be at least 20")
    console = Console(sys.stdout)
    try:
        return serve(args, console) if args.serve else run_demo(args, console)
    except KeyboardInterrupt:
        console.line("\ninterrupted: the stack has been shut down")
        return 130


if __name__ == "__main__":
    sys.exit(main())
