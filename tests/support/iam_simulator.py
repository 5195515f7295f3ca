"""A maintained IAM policy simulator, @cloud-copilot/iam-simulate, run by the project's own Node.

``make iam-simulator`` installs it (pinned by tools/iam-simulator/package.json) into .tools/iam-simulate;
tools/iam_simulate.mjs loads it from there and evaluates a batch of simulations per Node process. The simulator is
AGPL-licensed, so it is fetched at test time and never part of this repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from tests.support import node
from tests.support.template import missing_artifact

SIMULATOR: Final = node.REPOSITORY / ".tools" / "iam-simulate"
SCRIPT: Final = node.REPOSITORY / "tools" / "iam_simulate.mjs"
PACKAGE: Final = SIMULATOR / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json"


@dataclass(frozen=True)
class Verdict:
    """The simulator's answer to one request: ``Allowed``, ``ExplicitlyDenied``, ``ImplicitlyDenied``, or
    ``Error`` (an invalid action, ARN or policy), with the statements that granted or denied it."""

    result: str
    grants: tuple[dict[str, Any], ...]
    denials: tuple[dict[str, Any], ...]
    errors: Any = None

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


def available() -> None:
    """Skip (fail in CI) when Node or the simulator is not installed."""
    if not node.available() or not PACKAGE.is_file():
        missing_artifact("the IAM simulator is not installed: run `make iam-simulator`")


def evaluate(simulations: list[dict[str, Any]]) -> list[Verdict]:
    """One verdict per simulation (iam-simulate's ``Simulation`` shape), in order, from one Node process."""
    if not simulations:
        return []
    done = node.node([str(SCRIPT), str(SIMULATOR)], stdin=json.dumps({"simulations": simulations}), timeout=600.0)
    if done.returncode != 0:
        raise RuntimeError(f"the IAM simulator failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    answers = json.loads(done.stdout)
    assert len(answers) == len(simulations), "the simulator answered a different number of simulations"
    return [
        Verdict(answer["result"], tuple(answer["grants"]), tuple(answer["denials"]), answer["errors"])
        for answer in answers
    ]
