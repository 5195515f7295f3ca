"""``extend-deleter smoke`` against the local stack, run as an operator runs it after a deploy: the installed console
script, in its own process, from a directory outside the repository, finding the stack by ``--stack-name`` (its
outputs published in moto's CloudFormation, as a deployed stack's are).

It passes when the first-tenant path works, fails (exit 1) when the API cannot be reached or Extend refuses, and
in every case leaves no tenant, API key, usage plan or secret behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import OPERATOR_PRINCIPAL, LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import LOCAL_AWS_ENV, aws_client
from devstack.stack_outputs import publish_outputs
from tests.support.secret_guard import register_secret

pytestmark = pytest.mark.slow

# The console script `pip install .` made, next to the interpreter running the tests (the venv's).
CLI = Path(sys.executable).parent / "extend-deleter"


@dataclass
class Smoked:
    stack: LocalDeployment
    extend: ExtendEmulator
    stack_name: str


@pytest.fixture(scope="module")
def smoked(moto_endpoint: str) -> Iterator[Smoked]:
    extend_key = register_secret(f"sk_smoke_{os.urandom(12).hex()}")
    with ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        options = LocalDeploymentOptions(
            environment_overrides={"EXTEND_BACKOFF_BASE_SECONDS": "0.01", "EXTEND_BACKOFF_CAP_SECONDS": "0.05"},
            visibility_timeout_s=5,
            api_instances=1,
            stack_name=f"smoke{os.urandom(3).hex()}",
        )
        stack = LocalDeployment(moto_endpoint, emulator.base_url, extend_key, LogSink(), options).start()
        try:
            yield Smoked(stack, emulator, publish_outputs(stack))
        finally:
            stack.stop()


def smoke(smoked: Smoked, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
        **LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL": smoked.stack.moto_endpoint,
        "AWS_ACCESS_KEY_ID": OPERATOR_PRINCIPAL,  # moto takes any key: its id names the caller, the operator role
    }
    command = [str(CLI), "--stack-name", smoked.stack_name, "smoke", *arguments]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def leftovers(smoked: Smoked) -> dict[str, list[str]]:
    """Whatever a smoke tenant may have left: its registry item, API key, usage plan and secrets."""
    endpoint = smoked.stack.moto_endpoint
    apigateway, secrets = aws_client("apigateway", endpoint), aws_client("secretsmanager", endpoint)
    prefix = f"{smoked.stack.api_function.environment['TENANT_SECRET_PREFIX']}/smoke-"
    return {
        "tenants": [t.tenant_id for t in smoked.stack.tenant_admin().list() if t.tenant_id.startswith("smoke-")],
        "api keys": [k["name"] for k in apigateway.get_api_keys(limit=500)["items"] if "smoke-" in k["name"]],
        "usage plans": [p["name"] for p in apigateway.get_usage_plans(limit=500)["items"] if "smoke-" in p["name"]],
        "secrets": [s["Name"] for s in secrets.list_secrets()["SecretList"] if s["Name"].startswith(prefix)],
    }


NOTHING_LEFT: dict[str, list[str]] = {"tenants": [], "api keys": [], "usage plans": [], "secrets": []}


def steps(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    document = json.loads(result.stdout)
    return {step["name"]: step for step in document["steps"]}


def test_smoke_passes_on_a_working_stack_and_leaves_nothing_behind(smoked: Smoked, tmp_path: Path) -> None:
    # When an operator runs the smoke test against the stack
    result = smoke(smoked, tmp_path, "--json")

    # Then it passes: a 404 for the id that cannot exist, with a deletion request that reads back completed
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["passed"] is True
    found = steps(result)
    deleted = found["signed DELETE of an id that cannot exist"]
    assert (deleted["status"], deleted["ok"]) == (404, True)
    assert (found["its deletion request read back"]["status"], found["its deletion request read back"]["ok"]) == (
        200,
        True,
    )
    assert found["the temporary tenant removed"]["ok"] is True
    # and the DELETE went all the way to Extend, which answered that the run does not exist
    sent = smoked.extend.requests_for(deleted["detail"])
    assert [(request.method, request.status) for request in sent] == [("DELETE", 404)]
    # and nothing of the temporary tenant is left
    assert leftovers(smoked) == NOTHING_LEFT


def test_smoke_fails_when_the_api_cannot_be_reached_and_still_cleans_up(smoked: Smoked, tmp_path: Path) -> None:
    # Given an API URL where nothing listens (a port just freed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # When the smoke test runs against it (the text output, as an operator reads it)
    result = smoke(smoked, tmp_path, "--api-url", f"http://127.0.0.1:{port}/v1")

    # Then it fails with exit 1, saying which step failed and why, in one line each; no traceback
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "smoke test FAILED"
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert "signed DELETE of an id that cannot exist" in failed and f"no answer from http://127.0.0.1:{port}" in failed
    assert any(line.startswith("ok") and "the temporary tenant removed" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert leftovers(smoked) == NOTHING_LEFT


def test_smoke_fails_when_extend_refuses_connections_and_still_cleans_up(smoked: Smoked, tmp_path: Path) -> None:
    # Given Extend refusing every connection
    smoked.extend.refuse_connections()
    try:
        # When the smoke test runs
        result = smoke(smoked, tmp_path, "--json", "--propagation-wait", "0")
    finally:
        smoked.extend.accept_connections()

    # Then the DELETE was not answered "not found" (Extend never said so), and the smoke test fails
    assert result.returncode == 1, result.stdout + result.stderr
    assert json.loads(result.stdout)["passed"] is False
    deleted = steps(result)["signed DELETE of an id that cannot exist"]
    assert deleted["ok"] is False and deleted["status"] != 404
    assert deleted["detail"].startswith("expected 404, got ")
    assert steps(result)["the temporary tenant removed"]["ok"] is True
    assert leftovers(smoked) == NOTHING_LEFT
