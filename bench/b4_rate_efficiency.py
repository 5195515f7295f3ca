"""B4 rate efficiency: Extend's rate limit R, 1,000 deletes through the local SQS event source, N instances.

The emulator enforces R requests/s (one token bucket, a one-second burst, 429 with ``Retry-After``). The queue
(moto) holds 1,000 messages; the local SQS event source (``devstack.sqs_event_source``) polls it with
``MaximumConcurrency`` = N pollers, batches of 10, each invoking one of N warm worker processes running the queue
function's entry point.

Every outcome is recorded in the ledger (moto's DynamoDB), as deployed: the queue function has no mode without it.

* **R = 20/s, shares right**: ``EXTEND_MAX_REQUESTS_PER_SECOND`` = 0.95 R / N, the capacity rule in
  docs/operations.md, at a rate moto's DynamoDB can carry beside everything else on two cores. Targets:
  throughput >= 0.9 R, 429s <= 2 % of requests, nothing lost.
* **R = 50/s, shares right** (informational): where moto, not the function, may set the pace.
* **over-committed** (informational): each instance set to 1.5 R / N, so the fleet asks for 1.5 R. Shows
  that AIMD (halve on a 429, honour ``Retry-After``, add back slowly) converges near R instead of collapsing.

Throughput is counted at the emulator: 200s per second between the first and the last request. "Lost" means
a run that still exists, a message still on the queue, or one in the DLQ.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import HANDLER_DIR, BenchServices, Result
from devstack.functions import FunctionConfig, FunctionPool
from devstack.logs import LogSink
from devstack.moto_stack import aws_client
from devstack.sqs_event_source import EventSourceSettings, SqsEventSource

MESSAGES = 1000
RATE = 50.0
INSTANCES = 4
SHARE = 0.95
THROUGHPUT_TARGET = 0.9
# Each deletion adds DynamoDB writes for its ledger record. moto serves about 100 writes/s on two cores, shared
# with SQS and the functions: at R=50 it, not the function, may set the pace (DynamoDB takes thousands/s).
LEDGER_RATE = 20.0
THROTTLE_TARGET = 0.02


class Feeder:
    """Sends the 1,000 messages as the queue drains, keeping about ``BACKLOG`` waiting.

    moto's ReceiveMessage slows down with the queue's length (about 2.3 s per receive with 1,000 messages on
    this kind of machine, against tens of ms in SQS), which would measure moto instead of the function. A queue
    that always has several batches waiting is what the event source sees in a real backlog.
    """

    BACKLOG = 40

    def __init__(self, sqs: Any, queue_url: str, ids: list[str], source: SqsEventSource) -> None:
        self.sqs, self.queue_url, self.ids, self.source = sqs, queue_url, ids, source
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="b4-feeder", daemon=True)

    def start(self) -> Feeder:
        self._fill()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _fill(self) -> None:
        while self.sent < len(self.ids) and self.sent - self.source.stats["messages_deleted"] < self.BACKLOG:
            chunk = self.ids[self.sent : self.sent + 10]
            entries = [
                {"Id": str(i), "MessageBody": f'{{"parserRunId": "{parser_run_id}"}}'}
                for i, parser_run_id in enumerate(chunk)
            ]
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"B4: SQS refused {len(response['Failed'])} messages")
            self.sent += len(chunk)

    def _run(self) -> None:
        while not self._stop.wait(0.05) and self.sent < len(self.ids):
            self._fill()


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _warm_up(services: BenchServices, pool: FunctionPool, instances: int) -> None:
    """One single-record invocation per instance, all at once (so each instance gets one): their imports,
    secret and first connection happen before the clock starts. Cold starts are B1's subject."""
    warm_ids = services.new_ids(instances, prefix="pr_b4_warm")
    events = services.delivered(warm_ids, 1)
    threads = [threading.Thread(target=pool.invoke, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    services.consumed(events)


def scenario(
    services: BenchServices,
    per_instance_rps: float,
    *,
    rate: float = RATE,
    instances: int = INSTANCES,
    messages: int = MESSAGES,
    timeout_s: float = 240,
) -> dict[str, Any]:
    """Run ``messages`` deletions through the event source with ``instances`` instances; what happened."""
    queues = services.queues
    sqs = aws_client("sqs", services.endpoint)
    ids = services.new_ids(messages, prefix="pr_b4")
    variables = services.queue_variables(
        EXTEND_MAX_REQUESTS_PER_SECOND=f"{per_instance_rps:.4f}", EXTEND_MAX_ATTEMPTS="5"
    )
    config = FunctionConfig(
        name="QueueFunction",
        handler="parser_run_deleter.entrypoints.queue_function.lambda_handler",
        code_uri=HANDLER_DIR,
        timeout_s=60,
        memory_mb=256,
        environment={key: value for key, value in variables.items() if not key.startswith("BENCH_")},
    )
    pool = FunctionPool(config, LogSink(), max_instances=instances)
    pool.prewarm(instances)
    _warm_up(services, pool, instances)
    services.extend.reset_stats()
    services.extend.rate_limit_rps = rate  # a fresh, full bucket
    source = SqsEventSource(
        pool,
        EventSourceSettings(
            queue_url=queues.queue_url, queue_arn=queues.queue_arn, batch_size=10, maximum_concurrency=instances
        ),
        sqs,
    )
    feeder = Feeder(sqs, queues.queue_url, ids, source).start()
    started = time.monotonic()
    source.start()
    try:
        while time.monotonic() - started < timeout_s:
            if feeder.sent == len(ids) and source.stats["messages_deleted"] >= len(ids):
                break
            time.sleep(0.2)
    finally:
        feeder.stop()
        source.stop()
        pool.close()
        services.extend.rate_limit_rps = None
    requests = [r for r in services.extend.requests if r.parser_run_id in set(ids)]
    stats = services.extend.stats()
    ok = [r.timestamp for r in requests if r.status == 200]
    window = (max(r.timestamp for r in requests) - min(r.timestamp for r in requests)) if requests else 0.0
    remaining = sum(services.extend.exists(i, workspace_id="ws_bench") for i in ids)
    dead = _queue_depth(sqs, queues.dead_letter_queue_url)
    left = _queue_depth(sqs, queues.queue_url)
    return {
        "per_instance_rps": per_instance_rps,
        "requests": len(requests),
        "deleted_200": len(ok),
        "throttled_429": stats.get("429", 0),
        "window_s": window,
        "throughput_rps": len(ok) / window if window else 0.0,
        "not_deleted": remaining,
        "left_on_queue": left,
        "dead_lettered": dead,
        "invocations": source.stats.get("invocations", 0),
    }


def run(services: BenchServices, runs: int) -> list[Result]:
    scenarios = []
    for label, arguments, is_target in (
        (f"R={LEDGER_RATE:g}/s, shares right (0.95 R / N each)", {"rate": LEDGER_RATE}, True),
        ("shares right (moto's DynamoDB may bound it)", {}, False),
        (f"R={LEDGER_RATE:g}/s, over-committed (1.5 R / N each)", {"rate": LEDGER_RATE, "over": True}, False),
    ):
        rate = float(arguments.get("rate", RATE))
        share = 1.5 if arguments.get("over") else SHARE
        services._queues = None  # a fresh queue pair for each scenario
        outcome = scenario(services, share * rate / INSTANCES, rate=rate)
        scenarios.append((label, outcome, is_target, rate))
    results = []
    for label, outcome, is_target, rate in scenarios:
        lost = outcome["not_deleted"] + outcome["left_on_queue"] + outcome["dead_lettered"]
        throttle_share = outcome["throttled_429"] / max(1, outcome["requests"])
        efficiency = outcome["throughput_rps"] / rate
        if lost:
            raise RuntimeError(f"B4 {label}: {lost} messages lost: {outcome}")
        passed = efficiency >= THROUGHPUT_TARGET and throttle_share <= THROTTLE_TARGET
        results.append(
            Result(
                "B4",
                f"{INSTANCES} instances, {label}"
                if label.startswith("R=")
                else f"R={RATE:g}/s, {INSTANCES} instances, {label}",
                outcome["throughput_rps"],
                rate,
                efficiency,
                f">= {THROUGHPUT_TARGET} R, 429s <= 2% (got {throttle_share:.1%}), lost 0"
                + ("" if is_target else " (info)"),
                passed if is_target else True,
                unit="req/s",
                detail=outcome,
            )
        )
    return results
