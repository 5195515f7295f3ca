"""B6 ownership reads per resource type: what the metadata policy's read before each DELETE costs, per type, under
API 2026-02-09, against the emulator with a fixed 10 ms per request (Extend's own time, standing in for it).

For each run type, 40 items are deleted through ``logic.ownership.delete_owned`` as a workspace tenant (one DELETE
each: Extend refuses other workspaces itself) and as a metadata tenant (a GET, then the DELETE), side by side, one
item at a time; then the same items as a dry run (``check_owned``: the GET alone). Extend's requests are counted at
the wire, from the emulator's log, by method: the target is exactly the calls the policy needs, a GET (Extend's
read budget) and a DELETE (its write budget) per metadata item, and none more. The time ratio is information: it is
the read's round trip, paid on the read limit, not the deletion budget.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Final

from bench.harness import BenchServices, Result, median
from devstack.extend_emulator import API_VERSION_2026
from parser_run_deleter.adapters.extend_client import ExtendClient
from parser_run_deleter.adapters.extend_credentials import ExtendCredentials
from parser_run_deleter.logic.ownership import check_owned, delete_owned
from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.logic.tenants import Ownership, Tenant
from parser_run_deleter.shared.extend_resources import RESOURCES, Resource, carries_metadata
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ExtendSettings
from parser_run_deleter.shared.time_budget import Deadline

ITEMS: Final = 40
LATENCY_S: Final = 0.01
WORKSPACE: Final = "ws_b6"


class _Key:
    def __init__(self, key: str) -> None:
        self.credentials = ExtendCredentials(key, None)

    def current(self, deadline: Deadline) -> ExtendCredentials:
        return self.credentials

    def refresh(self, stale: ExtendCredentials, deadline: Deadline) -> ExtendCredentials:
        return self.credentials


def run(services: BenchServices, runs: int) -> list[Result]:
    extend = services.extend
    key = f"sk_b6_{uuid.uuid4().hex[:12]}"
    extend.add_key(key, workspace_id=WORKSPACE)
    settings = ExtendSettings(
        extend_api_key_secret_id="unused", extend_api_base_url=extend.base_url, extend_api_version=API_VERSION_2026
    )
    client = ExtendClient(
        settings, _Key(key), AdaptiveRateLimiter(10_000), read_rate_limiter=AdaptiveRateLimiter(10_000)
    )
    workspace = Tenant("acme", Ownership.WORKSPACE, workspace_id=WORKSPACE)
    metadata = Tenant("globex", Ownership.METADATA, metadata_key="tenant")
    policies = {"workspace": (workspace, delete_owned), "metadata": (metadata, delete_owned)}
    policies["dry run"] = (metadata, check_owned)
    expected = {"workspace": Counter(DELETE=1), "metadata": Counter(GET=1, DELETE=1), "dry run": Counter(GET=1)}
    results: list[Result] = []
    extend.latency_s = LATENCY_S
    try:
        for resource in (r for r in RESOURCES[API_VERSION_2026] if carries_metadata(r)):
            times: dict[str, list[float]] = {name: [] for name in policies}
            calls: dict[str, Counter[str]] = {}
            for _ in range(max(1, runs // 2)):
                for name, (tenant, act) in policies.items():
                    ids = [f"{_PREFIX[resource]}b6{uuid.uuid4().hex[:10]}" for _ in range(ITEMS)]
                    extend.seed(ids, WORKSPACE, resource=resource.value, metadata={"tenant": "globex"})
                    extend.reset_stats()
                    started = time.perf_counter()
                    for item in ids:
                        request = DeletionRequest(item, tenant_id=tenant.tenant_id, resource=resource)
                        act(client, API_VERSION_2026, tenant, request, Deadline.after(30))
                    times[name].append(time.perf_counter() - started)
                    per_item = Counter(r.method for r in extend.requests)
                    calls[name] = Counter({method: n // ITEMS for method, n in per_item.items()})
            exact = all(calls[name] == expected[name] for name in policies)
            base = median(times["workspace"])
            metadata_time, dry_time = median(times["metadata"]), median(times["dry run"])
            shown = ", ".join(
                f"{name} {'+'.join(f'{n} {m}' for m, n in sorted(calls[name].items()))}" for name in policies
            )
            results.append(
                Result(
                    "B6",
                    f"{resource.value}: metadata vs workspace, per item",
                    metadata_time / ITEMS,
                    base / ITEMS,
                    metadata_time / base,
                    "calls exact",
                    exact,
                    detail={"calls_per_item": {k: dict(v) for k, v in calls.items()}, "dry_run_s": dry_time / ITEMS},
                )
            )
            print(f"     {resource.value}: Extend calls per item: {shown}", flush=True)
    finally:
        extend.latency_s = 0.0
        client.close()
    return results


_PREFIX: Final = {
    Resource.PARSE_RUNS: "pr_",
    Resource.EXTRACT_RUNS: "exr_",
    Resource.CLASSIFY_RUNS: "clr_",
    Resource.SPLIT_RUNS: "splr_",
    Resource.EDIT_RUNS: "edr_",
    Resource.WORKFLOW_RUNS: "workflow_run_",
}
