"""``python -m bench [--runs N] [--only B1,B3]``: run the benchmarks and print their ratios.

A MISS is reported, never raised: the command fails only when a benchmark cannot run or loses a message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench import (
    b1_cold_start,
    b2_warm_overhead,
    b3_concurrency,
    b4_rate_efficiency,
    b5_footprint,
    b6_ownership_reads,
)
from bench.harness import ROOT, Result, bench_services, machine

BENCHMARKS = {
    "B1": b1_cold_start,
    "B2": b2_warm_overhead,
    "B3": b3_concurrency,
    "B4": b4_rate_efficiency,
    "B5": b5_footprint,
    "B6": b6_ownership_reads,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="repetitions per figure (median); default 7")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B3")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    options = parser.parse_args(argv)
    selected = [name.strip().upper() for name in options.only.split(",") if name.strip()] or list(BENCHMARKS)
    info = machine()
    print(
        f"# {info['date']} | {info['nproc']} CPU(s), {info['cpu']} | Python {info['python']} | "
        f"median of {options.runs} runs",
        flush=True,
    )
    results: list[Result] = []
    with bench_services() as services:
        for name in selected:
            for result in BENCHMARKS[name].run(services, options.runs):
                print(result.line(), flush=True)
                results.append(result)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps({"machine": info, "results": [vars(r) for r in results]}, indent=2))
    missed = [r for r in results if not r.passed]
    why = " (see docs/performance.md for why)" if missed else ""
    print(f"# {len(results) - len(missed)} PASS, {len(missed)} MISS{why}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
