"""B2 warm overhead: 2,000 deletes through a warm handler (200 SQS batches of 10, records of a batch concurrent
on the default pool, every outcome recorded in the ledger as deployed) against a zero-latency emulator and moto,
vs the same work by hand: a sequential urllib3 loop sending the same DELETEs, each followed by the two ledger
writes the handler makes for it (``warm_raw_ledger.py``). The bare loop without the ledger is shown beside it.

The target is on the CPU time of the function's own process (``time.process_time`` over the timed part): with
the ledger on, the wall time is mostly moto's, which parses every DynamoDB expression in Python on the same two
cores (a longer conditional update costs it more), and so would measure moto rather than the function. Wall
times are shown for information.

Also reported, not targeted: the handler with ``EXTEND_MAX_CONCURRENCY=1`` (records one after another, like
the raw loop), which isolates the per-record cost of parsing, logging and metrics from the concurrency gain.
"""

from __future__ import annotations

from typing import Any

from bench.harness import BenchServices, Result, median, run_child

DELETES = 2000
BATCH = 10
TARGET = 1.5


def delivered_batches(services: BenchServices, ids: list[str], batch: int) -> list[dict[str, Any]]:
    """A warm-up event of the first id, then the rest in batches: each record delivered from the queue, so the
    handler confirms its receipt handle with SQS (one ChangeMessageVisibilityBatch per ten records) as deployed."""
    return [*services.delivered(ids[:1], 1), *services.delivered(ids[1:], batch)]


def run(services: BenchServices, runs: int) -> list[Result]:
    services.extend.latency_s = 0.0
    variants = {
        "raw": ("warm_raw.py", services.env(BENCH_API_KEY=services.api_key)),
        "raw_ledger": ("warm_raw_ledger.py", services.queue_env(BENCH_API_KEY=services.api_key)),
        "handler": ("warm_ours.py", services.queue_env()),
        "handler_sequential": ("warm_ours.py", services.queue_env(EXTEND_MAX_CONCURRENCY="1")),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    rss: list[int] = []
    for _ in range(max(1, runs // 2)):  # each run is 2,000 requests per variant: fewer repeats suffice
        for name, (script, env) in variants.items():
            ids = services.new_ids(DELETES + 1)
            events = delivered_batches(services, ids, BATCH) if script == "warm_ours.py" else []
            child = run_child(script, env, ids=ids, events=events, consumed=services.consumed)
            if child.report["failures"]:
                raise RuntimeError(f"B2 {name}: {child.report['failures']} deletes failed")
            times[name].append(child.report["elapsed_s"])
            cpu[name].append(child.report["cpu_s"])
            if name == "handler":
                rss.append(child.report["rss_kb"])
        services.extend.reset_stats()
    raw, floor, ours = (median(times[name]) for name in ("raw", "raw_ledger", "handler"))
    floor_cpu, ours_cpu, sequential_cpu = (
        median(cpu[name]) for name in ("raw_ledger", "handler", "handler_sequential")
    )
    detail: dict[str, object] = {"wall_s": times, "cpu_s": cpu}
    detail["warm_rss_kb"] = rss
    return [
        Result(
            "B2",
            f"{DELETES} deletes, batches of {BATCH}, ledger on: CPU vs urllib3 + the same ledger writes by hand",
            ours_cpu,
            floor_cpu,
            ours_cpu / floor_cpu,
            f"<= {TARGET}x",
            ours_cpu / floor_cpu <= TARGET,
            detail=detail,
        ),
        Result(
            "B2",
            "  same, EXTEND_MAX_CONCURRENCY=1, CPU (info)",
            sequential_cpu,
            floor_cpu,
            sequential_cpu / floor_cpu,
            "info",
            True,
        ),
        Result("B2", "  wall time, the same two (info)", ours, floor, ours / floor, "info", True),
        Result("B2", "  wall time vs the bare urllib3 loop, no ledger (info)", ours, raw, ours / raw, "info", True),
    ]
