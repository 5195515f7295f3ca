"""Rewrite docs/security.md's tables of the AWS calls the system makes and of the refusals, with their verdicts.

It records ``make run``'s demo and an operator session of every CLI command, has the IAM simulator judge each call
against template.yaml's policies (tests/support/iam_*), and writes the two generated sections of the document;
tests/iam checks they stay true. Needs `make validate`, `make node` and `make iam-simulator` (`make iam-table`
runs them). Usage, from the repository's root:

    .venv/bin/python -m tools.iam_table docs/security.md

``--judge`` judges the calls of any run instead, and lists those IAM would deny (exit status 1 if any), e.g. of
the system tests:

    DEVSTACK_AWS_CALL_LOG=calls.jsonl make system
    .venv/bin/python -m tools.iam_table --judge calls.jsonl
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.iam_calls import calls_of, read_call_log
from tests.support.iam_deployment import Deployment
from tests.support.iam_evaluation import denying_statements, judge, refusals, sections, with_section
from tests.support.iam_recording import record_demo, record_operator_session
from tests.support.template import load_transformed


def judge_logs(paths: list[Path]) -> int:
    """Every call of the logs at ``paths``, judged: the denied ones listed."""
    deployment = Deployment(load_transformed())
    calls = calls_of([read_call_log(path) for path in paths], deployment)
    verdicts = judge(calls, deployment)
    denied = [(call, verdict) for call, verdict in zip(calls, verdicts, strict=True) if not verdict.allowed]
    for call, verdict in denied:
        reasons = "; ".join(denying_statements(call, verdict, deployment))
        print(f"DENIED {call.principal} {call.action} on {call.resource} ({call.made_by}): {reasons}")
    print(f"{len(calls)} calls judged, {len(denied)} denied")
    return 1 if denied else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "--judge":
        return judge_logs([Path(path) for path in argv[2:]])
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    document = Path(argv[1])
    deployment = Deployment(load_transformed())
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        logs = [record_demo(workdir / "demo.jsonl"), record_operator_session(workdir / "operator.jsonl", workdir)]
    calls = calls_of(logs, deployment)
    cases = refusals(deployment, calls)
    verdicts = judge([*calls, *(case.call for case in cases)], deployment)
    tables = sections(calls, verdicts[: len(calls)], cases, verdicts[len(calls) :], deployment)
    text = document.read_text(encoding="utf-8")
    for name, body in tables.items():
        text = with_section(text, name, body)
    document.write_text(text, encoding="utf-8")
    print(f"{document}: {len(calls)} calls and {len(cases)} refusals judged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
