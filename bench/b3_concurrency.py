"""B3 batch concurrency: one invocation of 100 records at 50 ms emulator latency, vs N x latency / concurrency.

``EXTEND_MAX_CONCURRENCY=10`` (100 / 10 = 10 waves of 50 ms: ideal 500 ms). Timed inside a warm instance,
one 100-record invocation per repeat (an SQS batching window delivers up to 100).
"""

from __future__ import annotations

from bench.b2_warm_overhead import delivered_batches
from bench.harness import BenchServices, Result, median, run_child

RECORDS = 100
LATENCY_S = 0.05
CONCURRENCY = 10
TARGET = 1.3


def run(services: BenchServices, runs: int) -> list[Result]:
    services.extend.latency_s = LATENCY_S
    try:
        ideal = RECORDS * LATENCY_S / CONCURRENCY
        env = services.queue_env(EXTEND_MAX_CONCURRENCY=str(CONCURRENCY))
        times = []
        for _ in range(runs):
            ids = services.new_ids(RECORDS + 1)
            events = delivered_batches(services, ids, RECORDS)
            child = run_child("warm_ours.py", env, ids=ids, events=events, consumed=services.consumed)
            if child.report["failures"]:
                raise RuntimeError(f"B3: {child.report['failures']} deletes failed")
            times.append(child.report["elapsed_s"])
    finally:
        services.extend.latency_s = 0.0
    measured = median(times)
    return [
        Result(
            "B3",
            f"{RECORDS} records at {LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}",
            measured,
            ideal,
            measured / ideal,
            f"<= {TARGET}x ideal",
            measured / ideal <= TARGET,
            detail={"runs": times},
        ),
    ]
