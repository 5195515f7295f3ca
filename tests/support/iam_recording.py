"""Recordings of every AWS call the system makes, for tests/iam and tools/iam_table.py.

Two runs, each with its own moto server logging every request (``devstack.aws_call_log``):

- ``make run``'s demo, as the Makefile runs it (its own process), at a small size: the three functions behind
  the API and the queues, their event sources, and the tenants registered as an operator registers them;
- an operator session: every command of the CLI (``extend-deleter``), as the operator role, against a local
  stack whose outputs are published in moto's CloudFormation (``devstack.stack_outputs``), so the CLI finds it
  with ``--stack-name`` as it finds a deployed stack, with the queue function and the API answering it.

Each principal signs with its own access key id (``devstack.local_deployment``), so the log tells who did what.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from devstack.aws_call_log import ENVIRONMENT_VARIABLE
from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.local_deployment import OPERATOR_PRINCIPAL, LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import LOCAL_AWS_ENV, aws_client, moto_server
from devstack.stack_outputs import publish_outputs
from opscli.cli import main as extend_deleter
from tests.support.iam_calls import read_call_log
from tests.support.secret_guard import register_secret
from tests.support.waiting import wait_until

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
# The demo as tests/system/test_demo.py runs it: small, with a short visibility timeout and two receives.
DEMO_ARGUMENTS: Final = ("--size", "40", "--visibility-timeout", "4", "--parameter", "MaxReceiveCount=2")
CALLBACK_URL: Final = "http://127.0.0.1:9/callbacks"  # loopback, allowed locally; nothing listens there
WORKSPACE: Final = "ws_ops"
OPERATOR_RUNS: Final = ("pr_ops_1", "pr_ops_2")
PARKED_RUN: Final = "pr_ops_parked"


def record_demo(log: Path, timeout_s: float = 300.0) -> list[dict[str, Any]]:
    """Run ``make run``'s demo with every AWS call logged to ``log``; the calls."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env[ENVIRONMENT_VARIABLE] = str(log)
    done = subprocess.run(
        [sys.executable, "-m", "devstack.demo", *DEMO_ARGUMENTS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"the demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return read_call_log(log)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _logged_moto(log: Path) -> Iterator[str]:
    """A moto server of its own, logging to ``log`` (the variable is read once, as the server starts), its
    per-request lines quiet."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    # moto answers an operation it lacks (StartMessageMoveTask) with a 500 and logs a traceback; the CLI then
    # redrives message by message, as it does where AWS lacks it.
    werkzeug.setLevel(logging.CRITICAL)
    with _environment(**{ENVIRONMENT_VARIABLE: str(log)}):
        server = moto_server()
        endpoint = server.__enter__()
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)
        werkzeug.setLevel(level)


class Operator:
    """The CLI, run as the operator role: ``extend-deleter <arguments> --stack-name <the local stack>``."""

    def __init__(self, endpoint: str, stack_name: str, workdir: Path) -> None:
        self.endpoint = endpoint
        self.stack_name = stack_name
        self.workdir = workdir

    def __call__(self, *arguments: str, expect: int = 0) -> str:
        out, err = io.StringIO(), io.StringIO()
        environment: dict[str, str | None] = {
            **LOCAL_AWS_ENV,
            "AWS_ACCESS_KEY_ID": OPERATOR_PRINCIPAL,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_PROFILE": None,
            # Nothing but the stack's outputs names what the CLI works on.
            "TENANTS_TABLE_NAME": None,
            "TENANT_SECRET_PREFIX": None,
            "LEDGER_TABLE_NAME": None,
            "DELETION_QUEUE_URL": None,
            "DEAD_LETTER_QUEUE_URL": None,
        }
        with _environment(**environment):
            status = extend_deleter([*arguments, "--stack-name", self.stack_name], out, err)
        assert status == expect, f"extend-deleter {' '.join(arguments)} exited {status}: {err.getvalue().strip()}"
        return out.getvalue()


def record_operator_session(log: Path, workdir: Path) -> list[dict[str, Any]]:
    """Every command of the operator CLI against a local stack, with every AWS call logged to ``log``."""
    extend_key = register_secret(f"sk_iam_{os.urandom(12).hex()}")
    with _logged_moto(log) as endpoint, ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        emulator.seed([*OPERATOR_RUNS, PARKED_RUN], workspace_id=WORKSPACE)
        # Extend refuses the parked run once: one receive (MaxReceiveCount 1) dead-letters it with its reason.
        emulator.inject(PARKED_RUN, Fault.status(403))
        options = LocalDeploymentOptions(
            parameter_overrides={"MaxReceiveCount": "1"},
            environment_overrides={"EXTEND_BACKOFF_BASE_SECONDS": "0.01", "EXTEND_BACKOFF_CAP_SECONDS": "0.05"},
            visibility_timeout_s=5,
            api_instances=1,
            workspace_id=WORKSPACE,
            stack_name="ops",
        )
        stack = LocalDeployment(endpoint, emulator.base_url, extend_key, LogSink(), options).start()
        try:
            operator = Operator(endpoint, publish_outputs(stack), workdir)
            _operator_session(operator, stack, emulator)
        finally:
            stack.stop()
    return read_call_log(log)


def _operator_session(operator: Operator, stack: LocalDeployment, emulator: ExtendEmulator) -> None:
    operator("tenants", "add", "acme", "--ownership", "workspace", "--workspace-id", WORKSPACE, "--create-api-key")
    operator("tenants", "list")
    operator("tenants", "show", "acme")
    # moto's API Gateway refuses a fractional rate in a usage plan update (AWS takes it): the update is still
    # requested, and that request is what IAM judges.
    operator("tenants", "set-limits", "acme", "--rate-limit", "0.5", expect=1)
    operator("tenants", "set-callback", "acme", CALLBACK_URL)
    operator("tenants", "rotate-secret", "acme", "--overlap", "0")
    operator("tenants", "rotate-secret", "acme", "--callbacks")
    operator("tenants", "rotate-api-key", "acme")
    operator("tenants", "disable", "acme")
    operator("tenants", "enable", "acme")
    operator("tenants", "recount", "acme")
    ids = operator.workdir / "ids.txt"
    ids.write_text("\n".join([*OPERATOR_RUNS, PARKED_RUN]) + "\n", encoding="utf-8")
    operator("enqueue", str(ids), "--requested-by", "iam-test", "--reason", "recording")
    wait_until(lambda: stack.queue_depths()["dead_letter"] == 1, timeout_s=60)
    operator("status")
    # A parked callback, put there as SQS's redrive would after its last delivery (the harness's key).
    aws_client("sqs", stack.moto_endpoint).send_message(
        QueueUrl=stack.queue_urls["CallbackDeadLetterQueue"], MessageBody="{}"
    )
    operator("dlq")
    operator("dlq", "--callbacks")
    operator("redrive")
    operator("redrive", "--callbacks")
    wait_until(lambda: not emulator.exists(PARKED_RUN, workspace_id=WORKSPACE), timeout_s=60)
    operator("receipts", "--tenant", "acme")
    operator("receipts", "--operator")
    operator("tenants", "set-callback", "acme", "--clear")
    operator("smoke")
    operator("tenants", "remove", "acme", "--yes")
