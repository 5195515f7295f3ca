"""The IAM tier's shared, expensive parts, made once per session: the recording (``make run``'s demo and an
operator session of every CLI command, every AWS call logged) and the simulator's verdicts on it.

It needs the expanded template (`make validate`), Node (`make node`) and the simulator (`make iam-simulator`);
`make iam` and `make test` provide all three. Without them the tier is skipped locally and fails in CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import iam_simulator
from tests.support.iam_calls import IamCall, calls_of
from tests.support.iam_deployment import Deployment
from tests.support.iam_evaluation import Refusal, judge, refusals
from tests.support.iam_recording import record_demo, record_operator_session
from tests.support.iam_simulator import Verdict
from tests.support.template import load_transformed


@dataclass(frozen=True)
class Recording:
    """The raw call logs, and the distinct IAM requests they make (recorded and implied)."""

    logs: dict[str, list[dict[str, Any]]]
    calls: list[IamCall]


@dataclass(frozen=True)
class Judged:
    calls: list[IamCall]
    verdicts: list[Verdict]
    refusals: list[Refusal]
    refusal_verdicts: list[Verdict]


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    iam_simulator.available()
    return Deployment(load_transformed())


@pytest.fixture(scope="session")
def recording(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    folder: Path = tmp_path_factory.mktemp("iam-recording")
    logs = {
        "make run": record_demo(folder / "demo.jsonl"),
        "extend-deleter": record_operator_session(folder / "operator.jsonl", folder),
    }
    return Recording(logs, calls_of(logs.values(), deployment))


@pytest.fixture(scope="session")
def judged(recording: Recording, deployment: Deployment) -> Judged:
    cases = refusals(deployment, recording.calls)
    verdicts = judge([*recording.calls, *(case.call for case in cases)], deployment)
    count = len(recording.calls)
    return Judged(recording.calls, verdicts[:count], cases, verdicts[count:])
