"""B1 cold start: a fresh process that imports a handler and serves its first event.

Children interleaved run by run so that machine noise hits them alike: the queue function's handler with one SQS
record against the same calls made by hand (``cold_queue_floor.py``: the key, the record's confirmation, the
DELETE and its two ledger writes) and against the bare floor (one GetSecretValue, one DELETE), the API function's
handler with one tenant's signed DELETE (registry, signing secret, replay store and ledger included) against the
same calls made by hand with boto3 and urllib3 (the API's floor), and the peer
(extend-ai SDK, Powertools with an enabled Tracer). Each is timed from just before the spawn to its report, so
interpreter start-up is included for all of them.
"""

from __future__ import annotations

from bench.harness import BenchServices, ChildRun, Result, median, run_child

FLOOR_TARGET = 1.25
PEER_TARGET = 0.6


def run(services: BenchServices, runs: int) -> list[Result]:
    children = {
        "floor": ("cold_floor.py", services.env()),
        "queue_floor": ("cold_queue_floor.py", services.queue_env()),
        "ours": ("cold_ours.py", services.queue_env()),
        "api": ("cold_api.py", services.api_env()),
        "api_floor": ("cold_api_floor.py", services.api_env()),
        "peer": ("cold_peer.py", services.peer_env()),
    }

    def once(script: str, env: dict[str, str]) -> ChildRun:
        ids = services.new_ids(1)
        events = services.delivered(ids, 1) if script in ("cold_ours.py", "cold_queue_floor.py") else []
        return run_child(script, env, ids=ids, events=events, consumed=services.consumed)

    for script, env in children.values():  # warm the page cache; not counted
        once(script, env)
    times: dict[str, list[float]] = {name: [] for name in children}
    rss: dict[str, list[int]] = {name: [] for name in children}
    for _ in range(runs):
        for name, (script, env) in children.items():
            child = once(script, env)
            if child.report["failures"]:
                raise RuntimeError(f"B1 {name}: the record was not deleted")
            times[name].append(child.wall_s)
            rss[name].append(child.report["rss_kb"])
    floor, queue_floor, ours, api, api_floor, peer = (
        median(times[name]) for name in ("floor", "queue_floor", "ours", "api", "api_floor", "peer")
    )
    detail = {name: {"median_s": median(values), "runs": values} for name, values in times.items()}
    return [
        Result(
            "B1",
            "queue cold start (first record, ledger on) vs the same calls by hand",
            ours,
            queue_floor,
            ours / queue_floor,
            f"<= {FLOOR_TARGET}x",
            ours / queue_floor <= FLOOR_TARGET,
            detail=detail,
        ),
        Result("B1", "  same vs the bare floor: key + DELETE (info)", ours, floor, ours / floor, "info", True),
        Result(
            "B1",
            "API cold start (signed DELETE, ledger on) vs the same calls by hand",
            api,
            api_floor,
            api / api_floor,
            f"<= {FLOOR_TARGET}x",
            api / api_floor <= FLOOR_TARGET,
        ),
        Result(
            "B1",
            "cold start vs peer (extend-ai SDK + Tracer)",
            ours,
            peer,
            ours / peer,
            f"<= {PEER_TARGET}x",
            ours / peer <= PEER_TARGET,
            detail={f"{name}_rss_kb": median(values) for name, values in rss.items()},
        ),
    ]
