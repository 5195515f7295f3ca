"""The demo's seeded world: which runs exist in Extend and whose they are, what each tenant asks for, and the
faults the Extend emulator injects on some of them."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from devstack.extend_emulator import ExtendEmulator, Fault

# The Extend key is organization-scoped: a workspace tenant's calls name its workspace, everyone else's the
# default one, where globex's runs and another customer's (initech, not a tenant here) live side by side.
SHARED_WORKSPACE = "ws_shared"
ACME_WORKSPACE = "ws_acme"
METADATA_KEY = "tenant"
OTHER_CUSTOMER = "initech"
GLOBEX_RUNS = 12
OTHER_CUSTOMER_RUNS = 4
CROSS_TENANT_IDS = 3  # of the other tenant's runs, mixed into each bulk request


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
