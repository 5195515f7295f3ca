"""The score of a mutmut run, per module, as docs/testing.md shows it: ``python tools/mutation_report.py``.

Reads mutmut's results (``mutants/**/*.py.meta``) and the mutants argued equivalent
(``tools/mutation-equivalents.toml``: a name, and why no test can tell it from the original). A timeout counts as
killed (the mutant never finished a test that the original passes); a mutant no test reaches counts as survived.
Exit status 1 when a module is under the goal, so a run can be checked without reading it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Final

GOAL: Final = 0.90
KILLED: Final = {1, 3, 36, 24, -24, 152, 255, -9, -11, 37}
SURVIVED: Final = {0, 5, 33}
NOT_RUN: Final = {None, 2, 34}


def module_name(meta: Path, root: Path) -> str:
    relative = meta.relative_to(root).with_suffix("").with_suffix("")
    parts = relative.parts[1:] if relative.parts[0] in ("handler", "src") else relative.parts
    return ".".join(parts).removeprefix("parser_run_deleter.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--equivalents", type=Path, default=Path("tools/mutation-equivalents.toml"))
    args = parser.parse_args(argv)
    equivalents: dict[str, str] = (
        tomllib.loads(args.equivalents.read_text(encoding="utf-8")).get("equivalent", {})
        if args.equivalents.exists()
        else {}
    )
    metas = sorted(args.mutants.glob("**/*.py.meta"))
    if not metas:
        print(f"no results under {args.mutants}: run `make mutation` first", file=sys.stderr)
        return 2
    print("| module | mutants | killed | survived | equivalent | not run | score |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    survivors: list[str] = []
    under_goal = False
    totals: Counter[str] = Counter()
    for meta in metas:
        results: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        counts: Counter[str] = Counter()
        for name, code in results.items():
            if name in equivalents:
                counts["equivalent"] += 1
            elif code in NOT_RUN:
                counts["not run"] += 1
            elif code in KILLED:
                counts["killed"] += 1
            else:
                counts["survived"] += 1
                survivors.append(name)
        judged = counts["killed"] + counts["survived"]
        score = counts["killed"] / judged if judged else 1.0
        under_goal |= score < GOAL
        totals.update(counts)
        totals["mutants"] += len(results)
        print(
            f"| `{module_name(meta, args.mutants)}` | {len(results):,} | {counts['killed']:,} | "
            f"{counts['survived']:,} | {counts['equivalent']:,} | {counts['not run']:,} | {score:.1%} |"
        )
    judged = totals["killed"] + totals["survived"]
    print(
        f"| all | {totals['mutants']:,} | {totals['killed']:,} | {totals['survived']:,} | "
        f"{totals['equivalent']:,} | {totals['not run']:,} | {totals['killed'] / max(judged, 1):.1%} |"
    )
    if survivors:
        print("\nSurvivors (`.tools/mutation/bin/mutmut show NAME`):")
        for name in survivors:
            print(f"- `{name}`")
    return 1 if under_goal else 0


if __name__ == "__main__":
    sys.exit(main())
