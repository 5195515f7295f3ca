"""Two tenants through the local API Gateway front, as deployed: API keys in usage plans, the API function as a
worker process of the local Lambda runtime, the queue function polling moto's queue, and the Extend emulator.

Every request here travels as HTTP. The docs' curl + openssl signing recipe is run as written; the operator
commands are run as an operator runs them (``extend-deleter tenants ...``, in their own process).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import LOCAL_AWS_ENV
from tests.support.api import TenantSigner
from tests.support.secret_guard import register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ACME_WS, BETA_WS, DEFAULT_WS = "ws_acme", "ws_beta", "ws_default_org"


@dataclass
class Client:
    """One tenant's HTTP client: its key on every request, and its own signature."""

    tenant_id: str
    api_key: str
    secret: str
    session: requests.Session
    api_url: str

    def delete(self, parser_run_id: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(
            f"{self.api_url}/parser_runs/{parser_run_id}", headers={"x-api-key": self.api_key}, timeout=30, **kwargs
        )

    def bulk(self, ids: list[str]) -> requests.Response:
        return self.session.post(
            f"{self.api_url}/deletions",
            data=json.dumps({"parserRunIds": ids}).encode(),
            headers={"x-api-key": self.api_key, "content-type": "application/json"},
            timeout=30,
        )


@dataclass
class Flow:
    stack: LocalDeployment
    extend: ExtendEmulator
    acme: Client
    beta: Client


def client(stack: LocalDeployment, tenant_id: str, workspace_id: str) -> Client:
    added = stack.register_tenant(tenant_id, ownership="workspace", workspace_id=workspace_id)
    assert added.api_key_value is not None
    secret, api_key = register_secret(added.signing_secret), register_secret(added.api_key_value)
    register_secret(secret.removeprefix("whsec_"))
    session = requests.Session()
    session.auth = TenantSigner(secret, f"/{stack.stage}")
    return Client(tenant_id, api_key, secret, session, stack.api_url)


@pytest.fixture(scope="module")
def flow(moto_endpoint: str) -> Iterator[Flow]:
    extend_key = register_secret(f"sk_flow_{os.urandom(12).hex()}")
    with ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        options = LocalDeploymentOptions(
            environment_overrides={
                "EXTEND_BACKOFF_BASE_SECONDS": "0.01",
                "EXTEND_BACKOFF_CAP_SECONDS": "0.05",
                "TENANT_CACHE_SECONDS": "1",
            },
            visibility_timeout_s=5,
            api_instances=2,
            workspace_id=DEFAULT_WS,
            stack_name=f"flow{os.urandom(3).hex()}",
        )
        stack = LocalDeployment(moto_endpoint, emulator.base_url, extend_key, LogSink(), options).start()
        try:
            stack.prewarm()
            yield Flow(stack, emulator, client(stack, "acme", ACME_WS), client(stack, "beta", BETA_WS))
        finally:
            stack.stop()


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """The answer as a caller compares it: every accepted answer carries a fresh request id."""
    assert body.pop("deletionRequestId").startswith("dr_")
    return body


def test_each_tenant_reaches_only_its_runs_on_both_paths(flow: Flow) -> None:
    # Given runs of both tenants, each in its own workspace
    flow.extend.seed(["pr_acme_1", "pr_acme_2"], workspace_id=ACME_WS)
    flow.extend.seed(["pr_beta_1", "pr_beta_2"], workspace_id=BETA_WS)

    # When acme deletes its run and beta's, singly and in bulk
    own = flow.acme.delete("pr_acme_1")
    cross = flow.acme.delete("pr_beta_1")
    missing = flow.acme.delete("pr_nowhere")
    bulk = flow.acme.bulk(["pr_acme_2", "pr_beta_2"])

    # Then its own runs go; beta's answer as missing ids do, and stay, on the API path and through the queue
    assert own.status_code == 200
    assert (cross.status_code, without_request_id(cross.json())) == (
        404,
        {"id": "pr_beta_1", "resource": "parser_runs", "parserRunId": "pr_beta_1", "status": "not_found"},
    )
    assert (missing.status_code, without_request_id(missing.json())) == (
        404,
        {"id": "pr_nowhere", "resource": "parser_runs", "parserRunId": "pr_nowhere", "status": "not_found"},
    )
    assert set(cross.headers) - {"Date"} == set(missing.headers) - {"Date"}
    assert (bulk.status_code, bulk.json()["queued"], bulk.json()["rejected"]) == (202, 2, [])
    wait_until(lambda: not flow.extend.exists("pr_acme_2", workspace_id=ACME_WS))
    wait_until(lambda: len(flow.extend.requests_for("pr_beta_2")) >= 1)
    wait_until(lambda: flow.stack.queue_depths() == {"visible": 0, "in_flight": 0, "delayed": 0, "dead_letter": 0})
    assert flow.extend.exists("pr_beta_1", workspace_id=BETA_WS) and flow.extend.exists(
        "pr_beta_2", workspace_id=BETA_WS
    )
    assert {r.workspace_id for r in flow.extend.requests if r.parser_run_id in ("pr_beta_1", "pr_beta_2")} == {ACME_WS}
    # and beta still reaches its own
    assert flow.beta.delete("pr_beta_1").status_code == 200


def test_a_replay_gets_the_first_answer_and_a_twin_in_flight_gets_409(flow: Flow) -> None:
    flow.extend.seed(["pr_twin"], workspace_id=ACME_WS)
    flow.extend.inject("pr_twin", Fault.latency(2.0))
    request = flow.acme.session.prepare_request(
        requests.Request("DELETE", f"{flow.acme.api_url}/parser_runs/pr_twin", headers={"x-api-key": flow.acme.api_key})
    )

    # When the same signed request is sent twice at once (the two API instances serve one each), then again
    with ThreadPoolExecutor(2) as pool:
        first, twin = pool.map(lambda _: requests.Session().send(request, timeout=30), range(2))
    replay = requests.Session().send(request, timeout=30)

    # Then one ran, its twin was told it is in progress, and the replay got the first answer, marked
    statuses = sorted([first.status_code, twin.status_code])
    assert statuses == [200, 409], statuses
    served = first if first.status_code == 200 else twin
    assert (replay.status_code, replay.json()) == (200, served.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len([r for r in flow.extend.requests_for("pr_twin") if r.method == "DELETE"]) == 1


def test_another_tenants_secret_and_a_missing_key_are_refused_before_anything_runs(flow: Flow) -> None:
    flow.extend.seed(["pr_guarded"], workspace_id=ACME_WS)
    forged = requests.Session()
    forged.auth = TenantSigner(flow.beta.secret, f"/{flow.stack.stage}")
    answer = forged.delete(
        f"{flow.acme.api_url}/parser_runs/pr_guarded", headers={"x-api-key": flow.acme.api_key}, timeout=30
    )
    assert answer.status_code == 401
    assert flow.acme.session.delete(f"{flow.acme.api_url}/parser_runs/pr_guarded", timeout=30).status_code == 403
    assert flow.extend.requests_for("pr_guarded") == []


def operator(flow: Flow, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = flow.stack.api_function.environment
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL": flow.stack.moto_endpoint,
        "TENANTS_TABLE_NAME": environment["TENANTS_TABLE_NAME"],
        "TENANT_SECRET_PREFIX": environment["TENANT_SECRET_PREFIX"],
    }
    command = [sys.executable, "-m", "opscli", "tenants", *arguments]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_an_operator_disables_a_tenant_and_it_is_locked_out_within_its_cache_time(flow: Flow) -> None:
    flow.extend.seed(["pr_lock_1", "pr_lock_2"], workspace_id=BETA_WS)
    assert flow.beta.delete("pr_lock_1").status_code == 200

    disabled = operator(flow, "disable", "beta", "--json")
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["status"] == "disabled"
    time.sleep(1.2)  # TENANT_CACHE_SECONDS is 1 here
    assert flow.beta.delete("pr_lock_2").status_code == 403
    assert flow.extend.exists("pr_lock_2", workspace_id=BETA_WS)

    assert operator(flow, "enable", "beta").returncode == 0
    time.sleep(1.2)
    assert flow.beta.delete("pr_lock_2").status_code == 200


def recipe_blocks() -> tuple[str, str]:
    """The signing function and the usage example, as docs/tenancy.md gives them."""
    text = (REPO_ROOT / "docs" / "tenancy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    [function] = [block for block in blocks if block.startswith("# sign-request")]
    [usage] = [block for block in blocks if "sign_request DELETE" in block]
    return function, usage


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("bash", "curl", "openssl")), reason="bash/curl/openssl")
def test_the_documented_curl_and_openssl_recipe_signs_requests_the_api_accepts(flow: Flow) -> None:
    # Given the recipe and its example, with this stack's URL and acme's credentials in place of the placeholders
    flow.extend.seed(["pr_123"], workspace_id=ACME_WS)
    function, usage = recipe_blocks()
    usage = re.sub(r"^API=.*$", "", usage, flags=re.MULTILINE)
    script = "set -euo pipefail\n" + function + usage.replace("curl -s", "curl -s -w ' %{http_code}\\n'")
    env = {"API": flow.acme.api_url, "KEY": flow.acme.api_key, "SECRET": flow.acme.secret, "PATH": os.environ["PATH"]}

    # When it runs
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)

    # Then both of its requests were accepted: the DELETE deleted the run, the bulk request was queued
    assert result.returncode == 0, result.stderr
    answers = [line.rsplit(" ", 1) for line in result.stdout.splitlines() if line.strip()]
    (deleted, deleted_status), (bulk, bulk_status) = [(json.loads(body), status) for body, status in answers]
    assert (without_request_id(deleted), deleted_status) == (
        {"id": "pr_123", "resource": "parser_runs", "parserRunId": "pr_123", "status": "deleted"},
        "200",
    )
    assert (bulk["queued"], bulk["rejected"], bulk_status) == (2, [], "202")
    assert not flow.extend.exists("pr_123", workspace_id=ACME_WS)
