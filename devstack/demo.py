"""``make run``: the whole system on loopback, no AWS account, then a scripted demo and a summary that adds up.

It starts moto's server (the secrets, the deletion queue and its DLQ as ``template.yaml`` declares them), the
Extend emulator (seeded, with faults injected), and the local deployment (``devstack.local_deployment``: both
functions, the SQS event source and the API Gateway front), then:

1. a customer ``DELETE /parser_runs/{id}`` over real HTTP (one that exists, one that doesn't, one without an
   API key), each signed with Standard Webhooks headers;
2. a signed ``POST /deletions`` of a few hundred ids: some absent, some invalid, some with injected faults
   (500s, 429 with ``Retry-After``, a connection reset, and a few permanent 403s);
3. two malformed messages a buggy producer put straight on the queue;
4. the queue draining through the queue function, with a live progress line;
5. a summary: deleted / not found / rejected / in the DLQ with reasons / still queued, checked against the
   emulator's state; the EMF metric totals parsed from the functions' output; and the time taken.

``--serve`` keeps the stack up and prints ready-to-paste ``curl`` and CLI commands instead.
Local tuning (printed at start): a short visibility timeout and a high per-instance Extend rate, so retries
and redrives happen in seconds; everything else is the template's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
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
from pathlib import Path
from typing import IO, Any

from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import REGION, moto_server
from parser_run_deleter.logic.webhook_signature import new_signing_secret, signature_headers

WORKSPACE = "ws_local"
LOCAL_PARAMETERS = {"ExtendMaxRequestsPerSecondPerInstance": "50"}
LOCAL_ENVIRONMENT = {
    "EXTEND_BACKOFF_BASE_SECONDS": "0.05",
    "EXTEND_BACKOFF_CAP_SECONDS": "0.5",
}
MALFORMED_MESSAGES = ('{"parserRunId": "../../etc/passwd"}', '{"parserRunId": "parser_run_42"')
INVALID_BULK_IDS = ("not/a valid id", "", "x" * 300)


def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: Any


def http(method: str, url: str, *, headers: dict[str, str], body: bytes | None = None) -> HttpReply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return HttpReply(status, json.loads(raw) if raw else None)
    except ValueError:
        return HttpReply(status, raw.decode(errors="replace"))


def _id(rng: random.Random) -> str:
    return "parser_run_" + "".join(rng.choices(string.ascii_letters + string.digits, k=22))


@dataclass
class Plan:
    """Which ids exist, which get faults, and what the demo sends."""

    seeded: list[str]
    absent: list[str]
    faults: dict[str, str] = field(default_factory=dict)  # id -> fault label
    single_existing: str = ""
    single_absent: str = ""

    @property
    def bulk(self) -> list[str]:
        singles = {self.single_existing, self.single_absent}
        return [value for value in self.seeded + self.absent if value not in singles]


def make_plan(size: int, seed: int = 7) -> Plan:
    rng = random.Random(seed)
    ids = list(dict.fromkeys(_id(rng) for _ in range(size + 2)))
    absent_count = max(2, size // 10)
    plan = Plan(seeded=ids[absent_count:], absent=ids[:absent_count])
    plan.single_existing, plan.single_absent = plan.seeded[0], plan.absent[0]
    candidates = plan.seeded[1:]
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


def fault_script(label: str) -> list[Fault]:
    return {
        "500 then ok": [Fault.status(500)] * 2,
        "500 x4 (SQS retry)": [Fault.status(500)] * 4,
        "429 Retry-After 1": [Fault.rate_limited(retry_after=1)],
        "connection reset": [Fault.reset()],
        "403 permanent": [Fault.status(403)] * 20,
    }[label]


class Console:
    """Demo output: plain lines, and one progress line redrawn on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_plain = 0.0

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        elif final or time.monotonic() - self._last_plain >= 2.0:
            self._last_plain = time.monotonic()
            self.line(text)


@contextlib.contextmanager
def running_stack(
    options: LocalDeploymentOptions, sink: LogSink, plan: Plan | None, prewarm: bool = True
) -> Iterator[tuple[LocalDeployment, ExtendEmulator, str]]:
    _quiet_moto()
    extend_key = f"sk_local_{secrets.token_hex(16)}"
    with moto_server() as endpoint, ExtendEmulator() as emulator:
        emulator.add_key(extend_key, workspace_id=WORKSPACE)
        if plan is not None:
            emulator.seed(plan.seeded, workspace_id=WORKSPACE)
            for parser_run_id, label in plan.faults.items():
                emulator.inject(parser_run_id, *fault_script(label))
        stack = LocalDeployment(endpoint, emulator.base_url, extend_key, sink, options)
        try:
            stack.start()
            if prewarm:
                stack.prewarm()
            yield stack, emulator, endpoint
        finally:
            stack.stop()


def _api_headers(stack: LocalDeployment, secret: str | None, body: bytes, **extra: str) -> dict[str, str]:
    headers = {"x-api-key": stack.api_key, "content-type": "application/json", **extra}
    if secret:
        headers.update(signature_headers(secret, body))
    return headers


def drain(stack: LocalDeployment, sink: LogSink, console: Console, *, expected: int, timeout_s: float) -> bool:
    """Wait until the queue is empty and nothing is in flight; a live line shows the queue and the outcomes."""
    started = time.monotonic()
    quiet_since: float | None = None
    while True:
        depths = stack.queue_depths()
        logs = [doc for doc in sink.outcome_logs() if doc.get("trigger") == "sqs"]
        outcomes = Counter(doc["outcome"] for doc in logs)
        parked = sum(1 for doc in logs if doc["outcome"] == "failed" and doc.get("dead_letter_message_id"))
        done = outcomes["deleted"] + outcomes["not_found"] + outcomes["invalid"] + parked
        console.progress(
            f"  draining  queue {depths['visible']:>4} waiting {depths['in_flight']:>4} in flight"
            f"  DLQ {depths['dead_letter']:>2}"
            f"  | deleted {outcomes['deleted']:>4}  not found {outcomes['not_found']:>3}  invalid {outcomes['invalid']}"
            f"  failed attempts {outcomes['failed']:>3}  | {done}/{expected}  {time.monotonic() - started:5.1f} s"
        )
        idle = depths["visible"] == 0 and depths["in_flight"] == 0
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


def run_demo(args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    plan = make_plan(args.size)
    webhook_secret = new_signing_secret()
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        options = LocalDeploymentOptions(
            parameter_overrides={**LOCAL_PARAMETERS, **args.parameter},
            environment_overrides=dict(LOCAL_ENVIRONMENT),
            visibility_timeout_s=args.visibility_timeout,
            webhook_signing_secret=webhook_secret,
        )
        console.line("Starting the local stack: moto (secrets + queues), Extend emulator, both functions ...")
        with running_stack(options, sink, plan) as (stack, emulator, endpoint):
            _print_stack(console, stack, emulator, endpoint, log_file, signed=True)
            summary = _script(
                args, console, stack=stack, emulator=emulator, sink=sink, plan=plan, secret=webhook_secret
            )
        # every instance has exited and its output is read: the totals are final
        summary["metrics"] = dict(sorted(sink.metric_totals().items()))
    summary["seconds"] = round(time.monotonic() - started, 1)
    ok = _print_summary(console, summary)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if ok else 1


def _print_stack(
    console: Console, stack: LocalDeployment, emulator: ExtendEmulator, endpoint: str, log_file: Path, *, signed: bool
) -> None:
    assert stack.queue_pool is not None
    source = stack.queue_function.sqs
    assert source is not None
    console.line(
        f"  API Gateway  {stack.api_url}  (x-api-key required{', webhook signatures required' if signed else ''})"
    )
    console.line(f"  moto         {endpoint}")
    console.line(f"  Extend       {emulator.base_url}")
    console.line(
        f"  {stack.queue_function.logical_id}: BatchSize {source.batch_size}, window {source.batching_window_s:g} s, "
        f"MaximumConcurrency {stack.queue_pool.max_instances}, Timeout {stack.queue_function.timeout_s:g} s; "
        f"maxReceiveCount {stack.max_receive_count}"
    )
    console.line(
        f"  local tuning: visibility timeout {stack.visibility_timeout_s} s, "
        + ", ".join(f"{k}={v}" for k, v in {**LOCAL_PARAMETERS, **stack.options.parameter_overrides}.items())
        + ", "
        + ", ".join(f"{k}={v}" for k, v in LOCAL_ENVIRONMENT.items())
    )
    console.line(f"  function logs {log_file}")


def _script(
    args: argparse.Namespace,
    console: Console,
    *,
    stack: LocalDeployment,
    emulator: ExtendEmulator,
    sink: LogSink,
    plan: Plan,
    secret: str,
) -> dict[str, Any]:
    summary: dict[str, Any] = {"faults": dict(Counter(plan.faults.values()))}
    console.line()
    console.line("1. Customer DELETE over HTTP (signed)")
    singles = {}
    for parser_run_id, with_key in (
        (plan.single_existing, True),
        (plan.single_absent, True),
        (plan.single_existing, False),
    ):
        headers = _api_headers(stack, secret, b"")
        if not with_key:
            headers.pop("x-api-key")
        reply = http("DELETE", f"{stack.api_url}/parser_runs/{parser_run_id}", headers=headers)
        note = "" if with_key else "   (no x-api-key)"
        console.line(f"   DELETE /parser_runs/{parser_run_id} -> {reply.status} {json.dumps(reply.body)}{note}")
        if with_key:
            singles[parser_run_id] = reply.status
    summary["single"] = {
        "deleted": int(singles.get(plan.single_existing) == 200),
        "not_found": int(singles.get(plan.single_absent) == 404),
    }

    console.line()
    bulk = plan.bulk
    requested = [*bulk, *INVALID_BULK_IDS]
    random.Random(3).shuffle(requested)
    fault_counts = ", ".join(f"{label} {count}" for label, count in Counter(plan.faults.values()).items())
    console.line(
        f"2. Signed POST /deletions with {len(requested)} ids: {len([i for i in bulk if i in plan.absent])} absent, "
        f"{len(INVALID_BULK_IDS)} invalid; faults injected: {fault_counts}"
    )
    queued = 0
    rejected: list[dict[str, str]] = []
    for start in range(0, len(requested), 1000):
        body = json.dumps({"parserRunIds": requested[start : start + 1000]}).encode()
        reply = http("POST", f"{stack.api_url}/deletions", headers=_api_headers(stack, secret, body), body=body)
        if reply.status != 202 or not isinstance(reply.body, dict):
            console.line(f"   POST /deletions -> {reply.status} {reply.body}")
            continue
        queued += int(reply.body.get("queued", 0))
        rejected.extend(reply.body.get("rejected", []))
    console.line(f"   -> 202 queued {queued}, rejected {len(rejected)}:")
    for item in rejected:
        console.line(f"      {item.get('parserRunId')!r}: {item.get('reason')}")
    summary["bulk"] = {"requested": len(requested), "queued": queued, "rejected": len(rejected)}

    console.line()
    console.line(f"3. {len(MALFORMED_MESSAGES)} malformed messages put straight on the queue by a buggy producer")
    sqs = stack.sqs
    for body_text in MALFORMED_MESSAGES:
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body_text)

    console.line()
    console.line("4. The queue draining through the queue function")
    drained = drain(stack, sink, console, expected=queued + len(MALFORMED_MESSAGES), timeout_s=args.drain_timeout)
    summary["drained"] = drained
    summary.update(_account(stack, emulator, sink, plan, bulk_ids=set(bulk)))
    summary["emulator"] = dict(sorted(emulator.stats().items()))
    summary["invocations"] = {
        "queue": dict(stack.queue_pool.stats) if stack.queue_pool else {},
        "api": dict(stack.api_pool.stats) if stack.api_pool else {},
        "queue_peak_concurrency": stack.queue_pool.peak_concurrency if stack.queue_pool else 0,
    }
    return summary


def _account(
    stack: LocalDeployment, emulator: ExtendEmulator, sink: LogSink, plan: Plan, bulk_ids: set[str]
) -> dict[str, Any]:
    """Where every requested id ended, from the systems' state (emulator, queues), not from the logs alone."""
    from opscli.queues import peek_dead_letters  # noqa: PLC0415

    dead = peek_dead_letters(stack.sqs, stack.dead_letter_queue_url, limit=1000, hold_s=5)
    dead_ids = {item.parser_run_id for item in dead}
    reasons = Counter(f"{item.kind}: {item.reason}" for item in dead)
    logged_not_found = {
        doc["parser_run_id"]
        for doc in sink.outcome_logs()
        if doc.get("outcome") == "not_found" and doc.get("trigger") == "sqs"
    }
    depths = stack.queue_depths()
    seeded = set(plan.seeded)
    places: Counter[str] = Counter()
    for parser_run_id in bulk_ids:
        if parser_run_id in dead_ids:
            places["in_dlq"] += 1
        elif parser_run_id in seeded and not emulator.exists(parser_run_id, workspace_id=WORKSPACE):
            places["deleted"] += 1
        elif parser_run_id not in seeded and parser_run_id in logged_not_found:
            places["not_found"] += 1
        else:
            places["unaccounted"] += 1
    return {
        "queue_path": dict(places),
        "dlq": {"messages": len(dead), "parser_run_ids": len(dead_ids & bulk_ids), "reasons": dict(reasons)},
        "still_queued": depths["visible"] + depths["in_flight"],
        "bulk_ids": len(bulk_ids),
    }


def _print_summary(console: Console, summary: dict[str, Any]) -> bool:
    path = summary.get("queue_path", {})
    single = summary.get("single", {})
    bulk = summary.get("bulk", {})
    deleted = path.get("deleted", 0) + single.get("deleted", 0)
    not_found = path.get("not_found", 0) + single.get("not_found", 0)
    dlq = summary.get("dlq", {})
    requested = bulk.get("requested", 0) + 2
    accounted = deleted + not_found + bulk.get("rejected", 0) + path.get("in_dlq", 0) + summary.get("still_queued", 0)
    adds_up = accounted == requested and path.get("unaccounted", 0) == 0 and summary.get("drained", False)
    console.line()
    console.line("Summary")
    rows = [
        ("deleted", deleted, "gone from Extend (1 by the synchronous DELETE)"),
        ("not found", not_found, "never existed (404 from Extend)"),
        ("rejected by the API", bulk.get("rejected", 0), "invalid ids, named in the 202 response"),
        ("in DLQ", path.get("in_dlq", 0), "parser run ids, with their reasons below"),
        ("still queued", summary.get("still_queued", 0), "waiting or in flight"),
    ]
    console.line(f"  {'outcome':<22}{'ids':>6}")
    for name, count, note in rows:
        console.line(f"  {name:<22}{count:>6}   {note}")
    console.line(
        f"  {'total':<22}{accounted:>6}   of {requested} requested: {'adds up' if adds_up else 'DOES NOT ADD UP'}"
    )
    console.line(f"  DLQ messages {dlq.get('messages', 0)} (parser runs + malformed), by reason:")
    for reason, count in sorted(dlq.get("reasons", {}).items()):
        console.line(f"    {count:>3}  {reason}")
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
    return bool(adds_up)


def serve(args: argparse.Namespace, console: Console) -> int:
    rng = random.Random(11)
    seeded = [f"parser_run_serve{n:03d}_" + "".join(rng.choices(string.ascii_letters, k=8)) for n in range(1, 21)]
    plan = Plan(seeded=seeded, absent=[])
    secret = new_signing_secret() if args.sign else None
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        sink.listeners.append(lambda function, doc: _echo_outcome(console, function, doc))
        options = LocalDeploymentOptions(
            parameter_overrides={**LOCAL_PARAMETERS, **args.parameter},
            environment_overrides=dict(LOCAL_ENVIRONMENT),
            visibility_timeout_s=args.visibility_timeout,
            webhook_signing_secret=secret,
        )
        with running_stack(options, sink, plan) as (stack, emulator, endpoint):
            console.line("The local stack is up. Ctrl-C stops it.")
            _print_stack(console, stack, emulator, endpoint, log_file, signed=bool(secret))
            key = stack.api_key
            console.line(f"  seeded parser runs: {seeded[0]} ... {seeded[-1]} (20)")
            if secret:
                console.line(f"  webhook signing secret: {secret}")
            console.line()
            console.line("Try the API:")
            console.line(f"  curl -s -X DELETE -H 'x-api-key: {key}' {stack.api_url}/parser_runs/{seeded[0]}")
            body = json.dumps({"parserRunIds": [*seeded[1:4], "parser_run_absent"]})
            console.line(
                f"  curl -s -X POST -H 'x-api-key: {key}' -H 'content-type: application/json' "
                f"-d '{body}' {stack.api_url}/deletions"
            )
            if secret:
                console.line("  (signing is on: add webhook-id / webhook-timestamp / webhook-signature headers)")
            console.line()
            console.line("Operator CLI against this stack (another terminal):")
            console.line(
                f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
                f"AWS_DEFAULT_REGION={REGION}"
            )
            console.line(
                f"  export DELETION_QUEUE_URL={stack.queue_url} DEAD_LETTER_QUEUE_URL={stack.dead_letter_queue_url}"
            )
            console.line(f"  printf '%s\\n' {' '.join(seeded[4:8])} | .venv/bin/python -m opscli enqueue -")
            console.line("  .venv/bin/python -m opscli status")
            console.line("  .venv/bin/python -m opscli dlq")
            console.line("  .venv/bin/python -m opscli redrive")
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
        console.line(f"  [{doc.get('trigger')}] {doc['outcome']:<9} {doc.get('parser_run_id')}  {detail}")


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep the stack up and print curl and CLI commands")
    parser.add_argument("--sign", action="store_true", help="with --serve: require webhook signatures too")
    parser.add_argument("--size", type=int, default=300, help="ids in the bulk request (300)")
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
