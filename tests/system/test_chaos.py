"""Chaos: 1,000 deletions through the local stack while Extend misbehaves, the key rotates and Extend vanishes.

Then the ledger is reconciled against the emulator id by id: every valid id has exactly one receipt, none is
left queued, and none contradicts Extend.

The whole system runs as deployed: ``template.yaml``'s functions as worker processes of the local Lambda
runtime (``devstack.local_deployment``), its SQS event source polling moto's queue, and its API Gateway front on
loopback, signed requests and API keys included. 600 ids go onto the queue and 400 come in as synchronous API
deletes. The Extend emulator answers about 30% of deletes with a fault (500, 503, 429 with and without
``Retry-After``, connection resets, read timeouts, 5-second stalls); mid-run the Extend key is rotated (the
secret updated, the old key refused) and Extend is unreachable for a while (40 connections refused).

At the end every id must be accounted for exactly once: deleted, not found (already deleted), or dead-lettered
with a reason. SQS delivers at least once, so a message may come back after its deletion was done (its delete
from the queue came too late): that copy must find "not found" and is counted in the table as a redelivery;
two different fates for one id fail the run. Nothing lost, no unexpected exception, no invocation past its
deadline. The accounting table is printed to the terminal, even under output capture.

Tuned to finish in a few minutes on two cores: the queue function's timeout is cut to 6 s, 2 s of it kept for
recording outcomes in the local ledger (and the visibility timeout to 10 s, still above timeout plus batching),
Extend's read timeout to 1 s, backoffs to tens of ms.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import urllib3

from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.functions import FunctionConfig
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import aws_client, moto_server_process
from parser_run_deleter.logic.tenants import TenantLimits
from tests.support.api import signature_headers
from tests.support.secret_guard import record_response, register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

WORKSPACE = "ws_chaos"
QUEUE_IDS = 600
API_IDS = 400
ABSENT_SHARE = 0.1  # ids that were never there (or are already gone): "not found"
PERMANENT_FAILURES = 10  # queue ids Extend always refuses (403): dead-lettered "permanent" on the last receive
INVALID_MESSAGES = 10  # queue messages whose id fails validation: dead-lettered "invalid" at once
FAULT_PROBABILITY = 0.3
QUEUE_FUNCTION_TIMEOUT_S = 6.0
VISIBILITY_TIMEOUT_S = 10
MAX_RECEIVE_COUNT = 4
RUN_LIMIT_S = 240.0
# Connections refused while Extend is "down" before it comes back (about 1.5 s of the run's traffic).
OUTAGE_REFUSALS = 40
FAULTS = [
    Fault.status(500),
    Fault.status(503),
    Fault.rate_limited(retry_after=1),
    Fault.rate_limited(retry_after=None),
    Fault.reset(),
    Fault.stall(2),  # past the 1 s read timeout: a read timeout
    Fault.stall(5),  # a 5-second stall
]
REPORT_LINE = re.compile(r"^\[(?P<function>\w+)\] REPORT RequestId: \S+\tDuration: (?P<ms>[0-9.]+) ms")


class ChaosDeployment(LocalDeployment):
    """The template's stack, with the queue function's timeout cut so that a run takes minutes, not hours."""

    def _config(self, spec: Any, local: dict[str, str] | None = None) -> FunctionConfig:
        config = super()._config(spec, local)
        if spec.sqs is not None:
            return replace(config, timeout_s=QUEUE_FUNCTION_TIMEOUT_S)
        return config


@dataclass
class Plan:
    queue_ids: list[str]
    api_ids: list[str]
    absent: set[str]
    permanent: set[str]
    invalid_bodies: dict[str, str]  # label -> body

    @property
    def valid_ids(self) -> list[str]:
        return self.queue_ids + self.api_ids

    @property
    def seeded(self) -> list[str]:
        return [i for i in self.valid_ids if i not in self.absent]


def make_plan(seed: int = 7) -> Plan:
    rng = random.Random(seed)
    queue_ids = [f"pr_chaos_q{index:04d}_{rng.randrange(16**6):06x}" for index in range(QUEUE_IDS - INVALID_MESSAGES)]
    api_ids = [f"pr_chaos_a{index:04d}_{rng.randrange(16**6):06x}" for index in range(API_IDS)]
    everyone = queue_ids + api_ids
    absent = set(rng.sample(everyone, int(len(everyone) * ABSENT_SHARE)))
    permanent = set(rng.sample([i for i in queue_ids if i not in absent], PERMANENT_FAILURES))
    invalid = {
        f"invalid_{index}": json.dumps({"parserRunId": f"../chaos/{index}"}) for index in range(INVALID_MESSAGES)
    }
    return Plan(queue_ids, api_ids, absent, permanent, invalid)


@dataclass
class Run:
    stack: LocalDeployment
    emulator: ExtendEmulator
    sink: LogSink
    raw: io.StringIO
    signing_secret: str
    api_key: str
    keys: list[str]
    api_answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    api_errors: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


@pytest.fixture
def chaos() -> Iterator[Run]:
    # A moto of its own, in its own process: in the test process, after every earlier test, its garbage
    # collections and the coverage tracer slowed the ledger until its calls timed out.
    with moto_server_process() as moto_endpoint:
        yield from _chaos(moto_endpoint)


def _chaos(moto_endpoint: str, parameters: dict[str, str] | None = None) -> Iterator[Run]:
    extend_key = register_secret(f"sk_chaos_{secrets.token_hex(16)}")
    raw = io.StringIO()
    sink = LogSink(raw)
    options = LocalDeploymentOptions(
        parameter_overrides={
            "ExtendMaxRequestsPerSecondPerInstance": "100",
            "ExtendMaxConcurrencyPerInstance": "8",
            "MaxReceiveCount": str(MAX_RECEIVE_COUNT),
            "MaximumConcurrency": "3",
            "BatchingWindowSeconds": "0",
            "ApiThrottleRateLimit": "1000",
            "ApiThrottleBurstLimit": "2000",
            **(parameters or {}),
        },
        environment_overrides={
            "EXTEND_READ_TIMEOUT_SECONDS": "1",
            "EXTEND_CONNECT_TIMEOUT_SECONDS": "1",
            "EXTEND_BACKOFF_BASE_SECONDS": "0.05",
            "EXTEND_BACKOFF_CAP_SECONDS": "0.5",
            "EXTEND_MAX_REQUESTS_PER_SECOND": "100",  # the API function's pacing too (the parameter is the queue's)
            "POWERTOOLS_METRICS_NAMESPACE": "Chaos",
            # The ledger here is moto, one call at a time on two shared cores: recording a batch's outcomes can
            # take a second or more, where DynamoDB takes milliseconds. The margin that covers it grows to match.
            "DEADLINE_SAFETY_MARGIN_SECONDS": "2",
        },
        visibility_timeout_s=VISIBILITY_TIMEOUT_S,
        api_instances=2,
        workspace_id=WORKSPACE,
        stack_name=f"chaos{secrets.token_hex(3)}",
    )
    with ExtendEmulator(seed=11) as emulator:
        emulator.add_key(extend_key, workspace_id=WORKSPACE)
        stack = ChaosDeployment(moto_endpoint, emulator.base_url, extend_key, sink, options)
        try:
            stack.start()
            # One tenant makes the API deletes (its share of the stage is not what is under test here)
            tenant = stack.register_tenant(
                "chaos", ownership="workspace", workspace_id=WORKSPACE, limits=TenantLimits(999, 1999, 1_000_000)
            )
            assert tenant.api_key_value is not None
            signing_secret = register_secret(tenant.signing_secret)
            register_secret(signing_secret.removeprefix("whsec_"))
            stack.prewarm()
            yield Run(stack, emulator, sink, raw, signing_secret, register_secret(tenant.api_key_value), [extend_key])
        finally:
            stack.stop()


def rotate_key(run: Run) -> None:
    """Secret updated with a new key, then the old key revoked at Extend: warm instances must re-read it."""
    new_key = register_secret(f"sk_chaos_{secrets.token_hex(16)}")
    run.emulator.add_key(new_key, workspace_id=WORKSPACE)
    secretsmanager = aws_client("secretsmanager", run.stack.moto_endpoint)
    prefix = run.stack.options.stack_name + "-"
    [secret] = [
        s
        for page in secretsmanager.get_paginator("list_secrets").paginate()  # the session's moto holds >100
        for s in page["SecretList"]
        if s["Name"].startswith(prefix) and s["Name"].endswith("/extend-api-key")
    ]
    secretsmanager.put_secret_value(
        SecretId=secret["ARN"], SecretString=json.dumps({"apiKey": new_key, "workspaceId": WORKSPACE})
    )
    run.emulator.revoke_key(run.keys[-1])
    run.keys.append(new_key)


def send_queue_messages(run: Run, plan: Plan) -> None:
    sqs = aws_client("sqs", run.stack.moto_endpoint)
    bodies = [json.dumps({"parserRunId": i, "requestedBy": "chaos", "reason": "erasure"}) for i in plan.queue_ids]
    bodies += list(plan.invalid_bodies.values())
    random.Random(3).shuffle(bodies)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=run.stack.queue_url, Entries=entries)
        assert not response.get("Failed"), response["Failed"]


def api_delete(run: Run, http: urllib3.PoolManager, parser_run_id: str) -> None:
    headers = {
        "x-api-key": run.api_key,
        **signature_headers(run.signing_secret, None, method="DELETE", path=f"/parser_runs/{parser_run_id}"),
    }
    try:
        response = http.request(
            "DELETE", f"{run.stack.api_url}/parser_runs/{parser_run_id}", headers=headers, timeout=60.0, retries=False
        )
    except urllib3.exceptions.HTTPError as error:
        run.api_errors.append(f"{parser_run_id}: {type(error).__name__}")
        return
    text = response.data.decode("utf-8", errors="replace")
    record_response(text)
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    run.api_answers[parser_run_id] = (response.status, body)


def wait_for_answers(run: Run, count: int) -> None:
    wait_until(lambda: len(run.api_answers) + len(run.api_errors) >= count, timeout_s=RUN_LIMIT_S, poll_s=0.05)


def logs_settled(run: Run) -> Callable[[], bool]:
    """True once the functions' output has stopped growing between two looks: the last invocations' lines are in
    (each instance's output is read apart from its result, so it may trail it)."""
    last = [-1]

    def settled() -> bool:
        current = run.sink.lines
        unchanged, last[0] = current == last[0], current
        return unchanged

    return settled


def drained(run: Run) -> bool:
    depths = run.stack.queue_depths()
    source = run.stack.event_source
    assert source is not None
    return depths["visible"] == depths["in_flight"] == depths["delayed"] == 0 and source.in_flight == 0


def dead_letters(run: Run) -> list[dict[str, Any]]:
    sqs = aws_client("sqs", run.stack.moto_endpoint)
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=run.stack.dead_letter_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=600,
        WaitTimeSeconds=0,
    ).get("Messages", []):
        messages.extend(batch)
    return messages


def body_id(body: str) -> str:
    with contextlib.suppress(ValueError):
        document = json.loads(body)
        if isinstance(document, dict) and isinstance(document.get("parserRunId"), str):
            return str(document["parserRunId"])
    return body


def test_a_thousand_deletions_under_chaos_are_each_accounted_for_exactly_once(
    chaos: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run, plan = chaos, make_plan()
    # Given Extend holding the runs (but not the absent ones), failing ~30% of deletes at random,
    # and refusing a few runs for good
    run.emulator.seed(plan.seeded, workspace_id=WORKSPACE)
    run.emulator.inject_random(FAULT_PROBABILITY, FAULTS, seed=5)
    for parser_run_id in plan.permanent:
        run.emulator.inject(parser_run_id, *[Fault.status(403)] * 100)
    started = time.monotonic()

    # When 600 ids go onto the queue and 400 arrive as API deletes, while the key rotates and Extend vanishes
    http = urllib3.PoolManager(maxsize=8)
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="api-client") as clients:
        send_queue_messages(run, plan)
        futures = [clients.submit(api_delete, run, http, parser_run_id) for parser_run_id in plan.api_ids]
        # mid-run, measured by progress rather than by the clock: a quarter, then half of the API requests in
        wait_for_answers(run, API_IDS // 4)
        rotate_key(run)
        run.events.append(f"{time.monotonic() - started:5.1f}s key rotated (old key revoked)")
        wait_for_answers(run, API_IDS // 2)
        run.emulator.set_unreachable(True)
        run.events.append(f"{time.monotonic() - started:5.1f}s Extend unreachable")
        # an outage long enough to be felt: measured by the connections it refused, not by the clock
        wait_until(lambda: run.emulator.stats().get("unreachable", 0) >= OUTAGE_REFUSALS, timeout_s=RUN_LIMIT_S)
        run.emulator.set_unreachable(False)
        run.events.append(f"{time.monotonic() - started:5.1f}s Extend back")
        for future in futures:
            future.result()
    run.events.append(f"{time.monotonic() - started:5.1f}s all API requests answered")
    wait_until(lambda: drained(run), timeout_s=RUN_LIMIT_S, poll_s=0.5)
    wait_until(logs_settled(run), timeout_s=30, poll_s=0.5)
    run.events.append(f"{time.monotonic() - started:5.1f}s queue drained")

    # Then every id is accounted for exactly once
    account = Accounting.build(run, plan)
    with capsys.disabled():
        print(account.table(run, time.monotonic() - started))
    assert account.lost == [], f"lost: {account.lost[:10]}"
    # (SQS delivers at least once: a redelivered message whose deletion already happened finds "not found" and
    # is consumed again. That is the idempotent case; two different fates for one id are not.)
    assert account.conflicting == {}, f"two fates for one id: {dict(list(account.conflicting.items())[:10])}"
    assert account.without_reason == [], f"dead-lettered without a reason: {account.without_reason[:10]}"
    assert account.inconsistent == [], f"state at Extend disagrees: {account.inconsistent[:10]}"
    # and the ones refused for good, and only invalid or refused ones, are in the DLQ, with their reasons
    # (a refused run dead-letters as "permanent", or as "retries_exhausted" when its last receive met a retryable
    # fault instead; a run that kept meeting faults may dead-letter that way too, with its reason)
    failed_for_good = {
        i for i, state in account.final.items() if state.startswith("dead-lettered") and not state.endswith("invalid")
    }
    assert plan.permanent <= failed_for_good
    assert all(run.emulator.exists(i, workspace_id=WORKSPACE) for i in plan.permanent)
    assert {i for i, state in account.final.items() if state == "dead-lettered: invalid"} == {
        body_id(body) for body in plan.invalid_bodies.values()
    }
    # and nothing went wrong that should not: no exception, no 5xx, no invocation past its deadline
    assert account.unexpected == [], f"unexpected: {account.unexpected[:10]}"
    assert account.past_deadline == [], f"invocations past their deadline: {account.past_deadline[:10]}"
    # and the chaos really happened: faults on about 30% of deletes, a rotation picked up, an outage seen
    stats = run.emulator.stats()
    assert 0.2 <= account.fault_share <= 0.4, stats
    assert stats.get("401", 0) >= 1 and stats.get("unreachable", 0) >= 1
    # and the ledger agrees, id by id: every valid id has exactly one receipt, none is left queued, and none
    # contradicts Extend (deleted or not found: gone; refused for good: still there)
    ledger = LedgerReconciliation.build(run, plan, account)
    with capsys.disabled():
        print(ledger.table())
    assert ledger.missing == [], f"not in the ledger: {ledger.missing[:10]}"
    assert ledger.duplicated == [], f"more than one receipt: {ledger.duplicated[:10]}"
    assert ledger.mismatches == [], f"ledger contradicts Extend or the logs: {ledger.mismatches[:10]}"
    assert ledger.outcomes.get("queued", 0) == 0
    # and no secret reached the function logs
    text = run.raw.getvalue()
    for secret in [*run.keys, run.signing_secret]:
        assert secret not in text


@dataclass
class LedgerReconciliation:
    """The ledger's receipts against the emulator's state and the accounting from the logs, id by id."""

    receipts: int
    outcomes: Counter[str]
    missing: list[str]
    duplicated: list[str]
    mismatches: list[str]

    @classmethod
    def build(cls, run: Run, plan: Plan, account: Accounting) -> LedgerReconciliation:
        dynamodb = aws_client("dynamodb", run.stack.moto_endpoint)
        found: dict[str, list[str]] = defaultdict(list)
        pages = dynamodb.get_paginator("scan").paginate(TableName=run.stack.table_names["LedgerTable"])
        for page in pages:
            for item in page["Items"]:
                if item["sk"]["S"].startswith("RUN#"):
                    found[item["parserRunId"]["S"]].append(item["outcome"]["S"])
        missing = [i for i in plan.valid_ids if i not in found]
        duplicated = [f"{i}: {outcomes}" for i, outcomes in found.items() if len(outcomes) > 1]
        mismatches: list[str] = []
        expected = {"deleted": "deleted", "not found": "not_found"}
        for parser_run_id in plan.valid_ids:
            outcomes = found.get(parser_run_id, [])
            if not outcomes:
                continue
            outcome = outcomes[0]
            still_there = run.emulator.exists(parser_run_id, workspace_id=WORKSPACE)
            if outcome in ("deleted", "not_found") and still_there:
                mismatches.append(f"{parser_run_id}: ledger {outcome}, still at Extend")
            if parser_run_id in plan.permanent and outcome != "dead_lettered":
                mismatches.append(f"{parser_run_id}: refused for good, ledger {outcome}")
            logged = account.final.get(parser_run_id, "")
            # (a deletion whose answer was lost is "deleted" in the ledger and "not found" in a redelivery's log)
            lost_answer = outcome == "deleted" and logged == "not found"
            if logged in expected and outcome in expected.values() and expected[logged] != outcome and not lost_answer:
                mismatches.append(f"{parser_run_id}: ledger {outcome}, logs {logged}")
            if logged.startswith("dead-lettered") and outcome != "dead_lettered":
                mismatches.append(f"{parser_run_id}: ledger {outcome}, logs {logged}")
        tally = Counter(first for first, *_ in found.values())
        return cls(sum(len(o) for o in found.values()), tally, missing, duplicated, mismatches)

    def table(self) -> str:
        counts = ", ".join(f"{outcome} {n}" for outcome, n in sorted(self.outcomes.items()))
        return (
            f"Ledger reconciliation: {self.receipts} receipts for {sum(self.outcomes.values())} ids ({counts}); "
            f"missing {len(self.missing)}, duplicated {len(self.duplicated)}, mismatches {len(self.mismatches)}"
        )


@dataclass
class Accounting:
    final: dict[str, str]
    lost: list[str]
    redelivered: dict[str, list[str]]
    conflicting: dict[str, list[str]]
    without_reason: list[str]
    inconsistent: list[str]
    unexpected: list[str]
    past_deadline: list[str]
    fault_share: float
    rows: Counter[tuple[str, str]]
    invocations: Counter[str]
    max_duration_ms: dict[str, float]

    @classmethod
    def build(cls, run: Run, plan: Plan) -> Accounting:
        terminal: dict[str, list[str]] = defaultdict(list)
        for outcome_log in run.sink.outcome_logs():
            if outcome_log.get("outcome") in ("deleted", "not_found"):
                terminal[outcome_log["parser_run_id"]].append(
                    f"{outcome_log['outcome']} ({outcome_log['trigger']}, {outcome_log.get('status_code')})"
                )
        without_reason: list[str] = []
        for message in dead_letters(run):
            attributes = {
                name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()
            }
            parser_run_id = body_id(message["Body"])
            kind, reason = attributes.get("FailureKind"), attributes.get("FailureReason")
            if not (kind and reason):
                without_reason.append(parser_run_id)
            terminal[parser_run_id].append(f"dead-lettered: {kind}")

        everyone = [*plan.valid_ids, *(body_id(body) for body in plan.invalid_bodies.values())]
        origin = dict.fromkeys(plan.queue_ids, "queue") | dict.fromkeys(plan.api_ids, "api")
        origin |= {body_id(body): "queue" for body in plan.invalid_bodies.values()}
        final: dict[str, str] = {}
        lost: list[str] = []
        redelivered: dict[str, list[str]] = {}
        conflicting: dict[str, list[str]] = {}
        inconsistent: list[str] = []
        rows: Counter[tuple[str, str]] = Counter()
        for parser_run_id in everyone:
            events = terminal.get(parser_run_id, [])
            if not events:
                lost.append(parser_run_id)
                rows[(origin[parser_run_id], "LOST")] += 1
                continue
            fates = [event.split(" (")[0].replace("not_found", "not found") for event in events]
            if len(events) > 1:
                redelivered[parser_run_id] = events
                # The consistent repeats: one deletion (or none), then "not found" for the copies; or copies of one
                # dead-lettering (a record let go at the deadline may have sent its copy). A copy whose first attempt
                # went unanswered and whose retry met 404 reads "deleted, confirmed on retry" (docs/ledger.md):
                # only two deletions Extend answered 200 conflict.
                answered_deleted = [event for event in events if event.startswith("deleted") and event.endswith("200)")]
                dead_lettered = {fate for fate in fates if fate.startswith("dead-lettered")}
                if (
                    (dead_lettered and set(fates) != dead_lettered)
                    or len(dead_lettered) > 1
                    or len(answered_deleted) > 1
                ):
                    conflicting[parser_run_id] = events
            state = "deleted" if "deleted" in fates else fates[0]
            final[parser_run_id] = state
            rows[(origin[parser_run_id], state)] += 1
            still_there = run.emulator.exists(parser_run_id, workspace_id=WORKSPACE)
            # deleted / not found: gone for sure; refused for good: still there; retries exhausted: either
            if (state in ("deleted", "not found") and still_there) or (
                state == "dead-lettered: permanent" and not still_there
            ):
                inconsistent.append(f"{parser_run_id}: {state}, still at Extend: {still_there}")
        for parser_run_id, (status, body) in run.api_answers.items():
            expected = {"deleted": 200, "not_found": 404, "queued": 202}
            if not (isinstance(body, dict) and expected.get(body.get("status", "")) == status):
                inconsistent.append(f"{parser_run_id}: API answered {status} {body}")

        unexpected = [f"API client: {error}" for error in run.api_errors]
        unexpected += [f"API id not answered: {i}" for i in plan.api_ids if i not in run.api_answers]
        documents = run.sink.snapshot()
        unexpected += [f"{doc.get('errorType')}: {doc.get('errorMessage')}" for doc in documents if "errorType" in doc]
        unexpected += [
            f"log {doc['level']}: {doc.get('message')}"
            for doc in documents
            if doc.get("level") in ("ERROR", "CRITICAL")
        ]
        unexpected += [f"emulator: {error}" for error in run.emulator.server_errors]
        invocations: Counter[str] = Counter()
        for pool in (run.stack.queue_pool, run.stack.api_pool):
            assert pool is not None
            invocations[f"{pool.config.name} invocations"] = pool.stats["invocations"]
            invocations[f"{pool.config.name} cold starts"] = pool.stats["cold_starts"]
            if pool.stats["errors"]:
                unexpected.append(f"{pool.config.name}: {pool.stats['errors']} invocation error(s)")
        assert run.stack.front is not None
        unexpected += [f"HTTP {status} x{n}" for status, n in run.stack.front.requests.items() if status >= 500]

        past_deadline: list[str] = []
        max_duration_ms: dict[str, float] = defaultdict(float)
        timeouts = {
            run.stack.queue_pool.config.name: run.stack.queue_pool.config.timeout_s,  # type: ignore[union-attr]
            run.stack.api_pool.config.name: run.stack.api_pool.config.timeout_s,  # type: ignore[union-attr]
        }
        for line in run.raw.getvalue().splitlines():
            match = REPORT_LINE.match(line)
            if match:
                function, duration_ms = match["function"], float(match["ms"])
                max_duration_ms[function] = max(max_duration_ms[function], duration_ms)
                if duration_ms >= timeouts[function] * 1000:
                    past_deadline.append(f"{function}: {duration_ms:.0f} ms")
            elif "Task timed out" in line:
                past_deadline.append(line)

        requests = run.emulator.requests
        deletes = [r for r in requests if r.method == "DELETE" and r.status != 401]
        # random faults only: not the outage, not the scripted refusals of the permanent ids
        faulted = [r for r in deletes if r.fault is not None and r.fault not in ("unreachable", "status:403")]
        fault_share = len(faulted) / max(1, len(deletes))
        return cls(
            final,
            lost,
            redelivered,
            conflicting,
            without_reason,
            inconsistent,
            unexpected,
            past_deadline,
            fault_share,
            rows,
            invocations,
            dict(max_duration_ms),
        )

    def table(self, run: Run, elapsed_s: float) -> str:
        states = ["deleted", "not found", "dead-lettered: permanent", "dead-lettered: retries_exhausted"]
        states += ["dead-lettered: invalid", "LOST"]
        others = sorted({state for _, state in self.rows} - set(states))
        columns = [c.replace("dead-lettered: ", "DLQ ") for c in states + others]
        width = max(len(c) for c in columns) + 2
        lines = ["", "Chaos run accounting (every id exactly once)", ""]
        header = f"{'path':<8}" + "".join(f"{c:>{width}}" for c in columns) + f"{'total':>8}"
        lines.append(header)
        lines.append("-" * len(header))
        for origin in ("queue", "api", None):
            counts = [
                sum(self.rows[(o, c)] for o in (("queue", "api") if origin is None else (origin,)))
                for c in states + others
            ]
            label = origin or "total"
            lines.append(f"{label:<8}" + "".join(f"{n:>{width}}" for n in counts) + f"{sum(counts):>8}")
        lines.append("")
        lines.append(
            f"lost {len(self.lost)}, two fates for one id {len(self.conflicting)}, redelivered after completion "
            f"(idempotent) {len(self.redelivered)}, dead-lettered without reason "
            f"{len(self.without_reason)}, unexpected errors {len(self.unexpected)}, past deadline "
            f"{len(self.past_deadline)}"
        )
        api_statuses = Counter(status for status, _ in run.api_answers.values())
        lines.append(f"API answers: {dict(sorted(api_statuses.items()))}")
        stats = run.emulator.stats()
        lines.append(f"Extend emulator answers: {dict(sorted(stats.items()))}")
        faults = Counter(r.fault for r in run.emulator.requests if r.fault)
        lines.append(f"faults injected: {dict(sorted(faults.items()))} ({self.fault_share:.0%} of deletes)")
        lines.append(f"invocations: {dict(self.invocations)}; longest (ms): {self.max_duration_ms}")
        lines.append(f"timeline: {'; '.join(run.events)}; total {elapsed_s:.1f}s")
        return "\n".join(lines)


# ---------------------------------------------------------------- every resource type, and cancellations

MIXED_PREFIXES = {
    "pr_": "parse_runs",
    "exr_": "extract_runs",
    "clr_": "classify_runs",
    "splr_": "split_runs",
    "edr_": "edit_runs",
    "workflow_run_": "workflow_runs",
    "file_": "files",
}
MIXED_REQUESTS, MIXED_PER_REQUEST = 8, 30
CANCELLED_REQUESTS = (1, 4, 7)  # the second at once, the others once the queue is under way
FAST_FAULTS = [Fault.status(500), Fault.status(503), Fault.rate_limited(retry_after=None), Fault.reset()]


@pytest.fixture
def mixed_chaos() -> Iterator[Run]:
    with moto_server_process() as moto_endpoint:
        yield from _chaos(moto_endpoint, {"ExtendApiVersion": "2026-02-09"})


def signed_post(run: Run, http: urllib3.PoolManager, path: str, body: bytes | None) -> tuple[int, Any]:
    headers = {"x-api-key": run.api_key, **signature_headers(run.signing_secret, body, method="POST", path=path)}
    if body:
        headers["content-type"] = "application/json"
    response = http.request("POST", f"{run.stack.api_url}{path}", body=body, headers=headers, timeout=60.0)
    text = response.data.decode("utf-8", errors="replace")
    record_response(text)
    return response.status, json.loads(text)


def test_mixed_types_and_cancellations_under_faults_account_for_every_id(
    mixed_chaos: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run, rng = mixed_chaos, random.Random(17)
    prefixes = list(MIXED_PREFIXES)
    requests_ids = [
        [f"{rng.choice(prefixes)}mix{request:02d}n{n:03d}" for n in range(MIXED_PER_REQUEST)]
        for request in range(MIXED_REQUESTS)
    ]
    every = [item for ids in requests_ids for item in ids]
    absent = set(rng.sample(every, len(every) // 10))
    # Given Extend holding each item as its own type, failing ~30% of deletes
    for item in every:
        if item not in absent:
            resource = next(MIXED_PREFIXES[p] for p in prefixes if item.startswith(p))
            run.emulator.seed([item], workspace_id=WORKSPACE, resource=resource)
    run.emulator.inject_random(FAULT_PROBABILITY, FAST_FAULTS, seed=9)
    http = urllib3.PoolManager(maxsize=4)
    started = time.monotonic()

    # When each request is sent, typed by prefix, and three are cancelled: one at once, two with the queue under way
    request_ids = []
    for ids in requests_ids:
        status, body = signed_post(run, http, "/deletions", json.dumps({"ids": ids}).encode())
        assert status == 202 and body["queued"] == MIXED_PER_REQUEST, body
        request_ids.append(body["deletionRequestId"])
    cancels: dict[str, tuple[int, Any]] = {}
    cancels[request_ids[1]] = signed_post(run, http, f"/deletions/{request_ids[1]}/cancel", None)
    wait_until(lambda: len(run.emulator.requests) >= len(every) // 3, timeout_s=RUN_LIMIT_S, poll_s=0.05)
    for index in CANCELLED_REQUESTS[1:]:
        cancels[request_ids[index]] = signed_post(run, http, f"/deletions/{request_ids[index]}/cancel", None)
    wait_until(lambda: drained(run), timeout_s=RUN_LIMIT_S, poll_s=0.5)
    wait_until(logs_settled(run), timeout_s=30, poll_s=0.5)

    # Then every id has exactly one receipt, of its own type, in its own request, and none is left queued
    from parser_run_deleter.adapters.ledger_table import LedgerTable

    table = run.stack.table_names["LedgerTable"]
    store = LedgerTable(table, retention_days=400, client=aws_client("dynamodb", run.stack.moto_endpoint))
    receipts = {request_id: list(store.all_runs(request_id)) for request_id in request_ids}
    outcomes: Counter[str] = Counter()
    contradictions: list[str] = []
    for request_id, ids in zip(request_ids, requests_ids, strict=True):
        found = {receipt.parser_run_id: receipt for receipt in receipts[request_id]}
        assert sorted(found) == sorted(ids) and len(receipts[request_id]) == len(ids), request_id
        for item, receipt in found.items():
            outcomes[receipt.outcome.value] += 1
            assert receipt.resource == next(MIXED_PREFIXES[p] for p in prefixes if item.startswith(p)), item
            there = run.emulator.exists(item, WORKSPACE)
            # and none contradicts Extend: deleted or not found is gone; cancelled or dead-lettered is still there
            # (unless it never was)
            expected_there = receipt.outcome.value in ("cancelled", "dead_lettered", "failed") and item not in absent
            if receipt.outcome.value == "queued" or there != expected_there:
                contradictions.append(f"{item}: {receipt.outcome.value}, at Extend: {there}")
    with capsys.disabled():
        print(
            f"\nmixed types and cancellations: {len(every)} ids in {MIXED_REQUESTS} requests, "
            f"{len(CANCELLED_REQUESTS)} cancelled, {time.monotonic() - started:.1f} s; outcomes {dict(outcomes)}"
        )
    assert contradictions == [], contradictions[:10]
    # and each cancelled request reads cancelled, with what was done before it kept; the others completed
    for index, request_id in enumerate(request_ids):
        record = store.request(request_id)
        assert record is not None
        if index in CANCELLED_REQUESTS:
            assert cancels[request_id][0] == 202 and record.status().value == "cancelled", request_id
        else:
            assert record.status().value in ("completed", "completed_with_failures"), request_id
    assert outcomes["cancelled"] >= MIXED_PER_REQUEST  # the request cancelled at once lost nothing it could keep
    # and every type was deleted at its own path
    paths = {request.path.split("/")[1] for request in run.emulator.requests if request.method == "DELETE"}
    assert paths == set(MIXED_PREFIXES.values())
