"""The tenant-side examples in docs/examples/, each run as a tenant's developer runs it, against the local stack.

The signing examples (Python, Node, curl + openssl) send real requests through the local API Gateway front: a
run they delete is gone from the Extend emulator, an unknown id is a 404, a bulk request's status reads back, and
a request signed with another tenant's secret is refused before Extend hears of it. The callback verifiers
(Python, Node) check a completion callback that the stack's callback function really delivered, refuse it
changed, signed with another secret, or stale, and, run as servers, take a delivery straight from the stack.

The Python examples run with ``-I -S`` (no site-packages): they need nothing beyond the standard library. Node is
the project's own (``make node``), with no npm packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import standardwebhooks

from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from opscli.tenants import AddedTenant
from parser_run_deleter.logic.webhook_signature import HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP
from tests.support import node
from tests.support.api import TenantSigner
from tests.support.openapi_contract import operations, spec
from tests.support.secret_guard import record_response, register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "docs" / "examples"
SIGNERS = ("python", "node", "curl")
VERIFIERS = ("python", "node")
PLACEHOLDER_URL = "http://127.0.0.1:9/not-yet"
HAS_SHELL_TOOLS = all(shutil.which(tool) for tool in ("bash", "curl", "openssl"))


@dataclass
class Tenant:
    tenant_id: str
    workspace_id: str
    api_key: str
    signing_secret: str
    callback_secret: str
    session: requests.Session


@dataclass
class Receiver:
    """A tenant's callback endpoint on loopback: records each delivery as received, answers 204."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@dataclass
class Examples:
    stack: LocalDeployment
    extend: ExtendEmulator
    node_executable: str
    acme: Tenant
    beta: Tenant
    hooks: Tenant  # its callbacks go to ``receiver``
    receiver: Receiver
    servers: dict[str, Tenant]  # by language: each one's callbacks go to that language's verifier server


def tenant(stack: LocalDeployment, tenant_id: str, **definition: Any) -> Tenant:
    workspace_id = f"ws_{tenant_id.replace('-', '_')}"
    added: AddedTenant = stack.register_tenant(
        tenant_id, ownership="workspace", workspace_id=workspace_id, **definition
    )
    assert added.api_key_value is not None
    for secret in (added.signing_secret, added.callback_signing_secret):
        register_secret(secret)
        register_secret(secret.removeprefix("whsec_"))
    session = requests.Session()  # the tests' own client (tests/support/api.py's signer), apart from the examples
    session.auth = TenantSigner(added.signing_secret, f"/{stack.stage}")
    session.headers["x-api-key"] = register_secret(added.api_key_value)
    return Tenant(
        tenant_id, workspace_id, added.api_key_value, added.signing_secret, added.callback_signing_secret, session
    )


def live(url: str, api_key: str) -> bool:
    """Whether the front knows the key: an unsigned request gets the function's 401, not the gateway's 403."""
    return requests.get(url, headers={"x-api-key": api_key}, timeout=10).status_code == 401


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/deletions"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def examples(moto_endpoint: str, receiver: Receiver) -> Iterator[Examples]:
    # make test installs Node before any test runs (the pytest target depends on `make node`): no skipping here.
    assert node.available(), "no Node in .tools/node: run `make node`"
    # The wheel's node binary itself, so that a server example can run in the background with its own environment.
    found = node.node(["-p", "process.execPath"])
    assert found.returncode == 0, found.stderr
    node_executable = found.stdout.strip()
    extend_key = register_secret(f"sk_examples_{os.urandom(12).hex()}")
    with ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        options = LocalDeploymentOptions(
            environment_overrides={"EXTEND_BACKOFF_BASE_SECONDS": "0.01", "EXTEND_BACKOFF_CAP_SECONDS": "0.05"},
            visibility_timeout_s=5,
            api_instances=2,
            workspace_id="ws_default_org",
            stack_name=f"ex{os.urandom(3).hex()}",
        )
        stack = LocalDeployment(moto_endpoint, emulator.base_url, extend_key, LogSink(), options).start()
        try:
            stack.prewarm()
            tenants = {name: tenant(stack, name) for name in ("acme", "beta")}
            tenants["hooks"] = tenant(stack, "hooks", callback_url=receiver.url)
            for language in VERIFIERS:
                # Registered with a callback URL, so that the API function (which caches the tenant) queues their
                # callbacks; the URL becomes their server's once it listens, and the callback function reads it
                # then, at the first delivery.
                tenants[f"server-{language}"] = tenant(stack, f"server-{language}", callback_url=PLACEHOLDER_URL)
            for registered in tenants.values():
                # A new API key takes a moment to reach the front, as in API Gateway: until then it is a 403.
                wait_until(partial(live, f"{stack.api_url}/deletions/dr_none", registered.api_key))
            yield Examples(
                stack,
                emulator,
                node_executable,
                tenants["acme"],
                tenants["beta"],
                tenants["hooks"],
                receiver,
                {language: tenants[f"server-{language}"] for language in VERIFIERS},
            )
        finally:
            stack.stop()


# ---- the signing examples


@dataclass(frozen=True)
class Answer:
    exit_code: int
    status: int
    body: Any


def sign_request(
    examples: Examples, language: str, *arguments: str, as_tenant: Tenant, secret: str | None = None
) -> Answer:
    """Run one signing example with the tenant's credentials in the environment, as its docstring says."""
    command = {
        "python": [sys.executable, "-I", "-S", str(EXAMPLES / "sign_request.py")],
        "node": [examples.node_executable, str(EXAMPLES / "sign_request.mjs")],
        "curl": ["bash", str(EXAMPLES / "sign_request.sh")],
    }[language]
    env = {
        "PATH": os.environ["PATH"],
        "DELETER_API_URL": examples.stack.api_url,
        "DELETER_API_KEY": as_tenant.api_key,
        "DELETER_SIGNING_SECRET": secret or as_tenant.signing_secret,
    }
    result = subprocess.run([*command, *arguments], env=env, capture_output=True, text=True, timeout=60, check=False)
    record_response(result.stdout + result.stderr)  # the secret guard fails the test if an example prints a secret
    status_line, _, body = result.stdout.partition("\n")
    assert status_line.startswith("HTTP "), (result.returncode, result.stdout, result.stderr)
    return Answer(result.returncode, int(status_line.removeprefix("HTTP ")), json.loads(body))


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    assert body.pop("deletionRequestId").startswith("dr_")
    return body


def signers() -> list[Any]:
    return [
        pytest.param(language, marks=pytest.mark.skipif(not HAS_SHELL_TOOLS, reason="bash, curl and openssl"))
        if language == "curl"
        else language
        for language in SIGNERS
    ]


@pytest.mark.parametrize("language", signers())
def test_a_signed_delete_deletes_the_run_and_an_unknown_id_is_a_404(examples: Examples, language: str) -> None:
    # Given one of acme's runs in Extend
    acme = examples.acme
    run, unknown = f"pr_{language}_delete", f"pr_{language}_nowhere"
    examples.extend.seed([run], workspace_id=acme.workspace_id)

    # When the example deletes it, then an id that does not exist
    deleted = sign_request(examples, language, "DELETE", f"/parser_runs/{run}", as_tenant=acme)
    missing = sign_request(examples, language, "delete", f"/parser_runs/{unknown}", as_tenant=acme)

    # Then the run is gone from Extend, and the unknown id reached Extend (past the signature check) and is a 404
    assert (deleted.exit_code, deleted.status) == (0, 200)
    assert without_request_id(deleted.body) == {
        "id": run,
        "resource": "parser_runs",
        "parserRunId": run,
        "status": "deleted",
    }
    assert not examples.extend.exists(run, workspace_id=acme.workspace_id)
    assert (missing.exit_code, missing.status) == (1, 404)
    assert without_request_id(missing.body) == {
        "id": unknown,
        "resource": "parser_runs",
        "parserRunId": unknown,
        "status": "not_found",
    }
    assert [request.method for request in examples.extend.requests_for(unknown)] == ["DELETE"]


@pytest.mark.parametrize("language", signers())
def test_a_bulk_request_is_queued_and_its_status_reads_back(examples: Examples, language: str) -> None:
    # Given two of acme's runs
    acme = examples.acme
    runs = [f"pr_{language}_bulk_1", f"pr_{language}_bulk_2"]
    examples.extend.seed(runs, workspace_id=acme.workspace_id)

    # When the example posts them (a body with spaces: the bytes signed are the bytes sent), and the queue drains
    body = json.dumps({"parserRunIds": runs})
    posted = sign_request(examples, language, "POST", "/deletions", body, as_tenant=acme)
    assert (posted.exit_code, posted.status) == (0, 202), posted.body
    assert (posted.body["queued"], posted.body["rejected"]) == (2, [])
    wait_until(lambda: not any(examples.extend.exists(run, workspace_id=acme.workspace_id) for run in runs))

    # Then the example reads the request back, with a query string that is sent but not signed
    route = f"/deletions/{posted.body['deletionRequestId']}?limit=1"
    reads: list[Answer] = []

    def completed() -> bool:
        reads.append(sign_request(examples, language, "GET", route, as_tenant=acme))
        return bool(reads[-1].body.get("status") == "completed")

    wait_until(completed, poll_s=0.5)
    status = reads[-1]
    assert (status.exit_code, status.status) == (0, 200)
    assert status.body["deletionRequestId"] == posted.body["deletionRequestId"]
    assert status.body["counts"]["deleted"] == 2
    assert [item["parserRunId"] for item in status.body["items"]] == runs[:1]
    assert "nextToken" in status.body


@pytest.mark.parametrize("language", signers())
def test_a_request_signed_with_another_tenants_secret_is_refused(examples: Examples, language: str) -> None:
    # Given one of acme's runs
    run = f"pr_{language}_guarded"
    examples.extend.seed([run], workspace_id=examples.acme.workspace_id)

    # When the example sends acme's API key with beta's signing secret
    acme, beta = examples.acme, examples.beta
    forged = sign_request(
        examples, language, "DELETE", f"/parser_runs/{run}", as_tenant=acme, secret=beta.signing_secret
    )

    # Then it is refused before Extend hears of it
    assert (forged.exit_code, forged.status) == (1, 401)
    assert examples.extend.exists(run, workspace_id=examples.acme.workspace_id)
    assert examples.extend.requests_for(run) == []


@pytest.mark.parametrize(
    ("language", "command"),
    [
        ("python", [sys.executable, "-I", "-S", str(EXAMPLES / "sign_request.py")]),
        ("curl", ["bash", str(EXAMPLES / "sign_request.sh")]),
    ],
)
def test_without_credentials_a_signing_example_says_what_to_set(language: str, command: list[str]) -> None:
    env = {"PATH": os.environ["PATH"], "DELETER_API_URL": "https://api.example.test/v1"}
    result = subprocess.run([*command, "DELETE", "/parser_runs/pr_1"], env=env, capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "DELETER_API_KEY" in result.stderr and "DELETER_SIGNING_SECRET" in result.stderr


def test_the_node_signer_without_credentials_says_what_to_set() -> None:
    result = node.node([str(EXAMPLES / "sign_request.mjs"), "DELETE", "/parser_runs/pr_1"])
    assert result.returncode == 2
    assert "DELETER_API_URL" in result.stderr


def test_the_curl_example_signs_with_the_function_docs_tenancy_md_shows() -> None:
    # The shell function is written twice (in the doc, where tests/system/test_tenancy_flow.py runs it, and in the
    # script): they must not drift apart.
    text = (REPO_ROOT / "docs" / "tenancy.md").read_text(encoding="utf-8")
    [function] = [block for block in text.split("```sh\n")[1:] if block.startswith("# sign-request")]
    function = function.split("```")[0]
    assert "sign_request() {" in function
    assert function in (EXAMPLES / "sign_request.sh").read_text(encoding="utf-8")


# ---- the callback verifiers


@dataclass(frozen=True)
class Delivery:
    """A completion callback as the stack's callback function delivered it, and the secrets around it."""

    headers: dict[str, str]
    body: bytes
    deletion_request_id: str
    callback_secret: str
    signing_secret: str


@pytest.fixture(scope="module")
def delivered(examples: Examples) -> Delivery:
    # Given a run of a tenant with a callback URL, deleted through the API: its deletion request completes at once
    hooks = examples.hooks
    examples.extend.seed(["pr_hooked"], workspace_id=hooks.workspace_id)
    answer = hooks.session.delete(f"{examples.stack.api_url}/parser_runs/pr_hooked", timeout=30)
    assert answer.status_code == 200, answer.text

    # When the stack's callback function delivers the completion callback
    wait_until(lambda: len(examples.receiver.received) == 1)
    headers, body = examples.receiver.received[0]
    request_id = answer.json()["deletionRequestId"]
    assert {name.lower(): value for name, value in headers.items()}["webhook-id"] == f"msg_{request_id}_1"
    return Delivery(headers, body, request_id, hooks.callback_secret, hooks.signing_secret)


def signed_at(delivery: Delivery, moment: datetime, *, webhook_id: str | None = None) -> dict[str, str]:
    """The delivered body's headers signed again with the tenant's callback secret at ``moment``, by the
    standardwebhooks library (an independent signer)."""
    webhook_id = webhook_id or {name.lower(): value for name, value in delivery.headers.items()}["webhook-id"]
    signature = standardwebhooks.Webhook(delivery.callback_secret).sign(webhook_id, moment, delivery.body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


def verify(examples: Examples, language: str, tmp_path: Path, headers: dict[str, str], body: bytes, secret: str) -> (
    subprocess.CompletedProcess[str]
):  # fmt: skip
    """Run one verifier's ``check`` on a saved delivery, as its docstring says."""
    (tmp_path / "headers.json").write_text(json.dumps(headers), encoding="utf-8")
    (tmp_path / "body.json").write_bytes(body)
    command = {
        "python": [sys.executable, "-I", "-S", str(EXAMPLES / "verify_callback.py")],
        "node": [examples.node_executable, str(EXAMPLES / "verify_callback.mjs")],
    }[language]
    arguments = ["check", str(tmp_path / "headers.json"), str(tmp_path / "body.json")]
    env = {"PATH": os.environ["PATH"], "DELETER_CALLBACK_SIGNING_SECRET": secret}
    result = subprocess.run([*command, *arguments], env=env, capture_output=True, text=True, timeout=60, check=False)
    record_response(result.stdout + result.stderr)
    return result


@pytest.mark.parametrize("language", VERIFIERS)
def test_a_verifier_accepts_the_callback_the_stack_delivered(
    examples: Examples, delivered: Delivery, language: str, tmp_path: Path
) -> None:
    result = verify(examples, language, tmp_path, delivered.headers, delivered.body, delivered.callback_secret)

    assert result.returncode == 0, result.stdout + result.stderr
    event = json.loads(result.stdout)
    assert (event["type"], event["data"]["deletionRequestId"], event["data"]["status"]) == (
        "deletion_request.completed",
        delivered.deletion_request_id,
        "completed",
    )


def fresh(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    return signed_at(delivery, datetime.now(UTC)), delivery.body, delivery.callback_secret


def changed_body(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    body = delivery.body.replace(b'"deleted":1', b'"deleted":2')
    assert body != delivery.body
    return delivery.headers, body, delivery.callback_secret


def request_signing_secret(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    # The tenant's other secret: the one it signs its requests with never verifies a callback.
    return delivery.headers, delivery.body, delivery.signing_secret


def stale(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    return signed_at(delivery, datetime.now(UTC) - timedelta(minutes=6)), delivery.body, delivery.callback_secret


def from_the_future(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    return signed_at(delivery, datetime.now(UTC) + timedelta(minutes=6)), delivery.body, delivery.callback_secret


def under_another_webhook_id(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    # A captured signature replayed as another message: the id is part of what is signed.
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    return {**headers, "webhook-id": "msg_dr_replayed_2"}, delivery.body, delivery.callback_secret


def unsigned(delivery: Delivery) -> tuple[dict[str, str], bytes, str]:
    headers = {name: value for name, value in delivery.headers.items() if name.lower() != "webhook-signature"}
    return headers, delivery.body, delivery.callback_secret


Tampering = Callable[[Delivery], tuple[dict[str, str], bytes, str]]


@pytest.mark.parametrize("language", VERIFIERS)
@pytest.mark.parametrize(
    ("make", "rejected_because"),
    [
        # the control: re-signed now, the same way as the stale ones are, it verifies
        pytest.param(fresh, None, id="fresh"),
        pytest.param(changed_body, "no signature matches", id="changed_body"),
        pytest.param(request_signing_secret, "no signature matches", id="request_signing_secret"),
        pytest.param(under_another_webhook_id, "no signature matches", id="under_another_webhook_id"),
        pytest.param(stale, "webhook-timestamp is more than 300 seconds from now", id="stale"),
        pytest.param(from_the_future, "webhook-timestamp is more than 300 seconds from now", id="from_the_future"),
        pytest.param(unsigned, "missing webhook-id, webhook-timestamp or webhook-signature", id="unsigned"),
    ],
)
def test_a_verifier_refuses_a_changed_misdirected_or_stale_callback(
    examples: Examples,
    delivered: Delivery,
    language: str,
    tmp_path: Path,
    make: Tampering,
    rejected_because: str | None,
) -> None:
    headers, body, secret = make(delivered)
    result = verify(examples, language, tmp_path, headers, body, secret)
    if rejected_because is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["data"]["deletionRequestId"] == delivered.deletion_request_id
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith(f"rejected: {rejected_because}"), result.stdout


@pytest.mark.parametrize("language", VERIFIERS)
def test_a_verifier_server_takes_a_delivery_from_the_stack_and_refuses_a_forged_one(
    examples: Examples, delivered: Delivery, language: str
) -> None:
    # Given a tenant whose callback URL is the example's server, started with its callback-signing secret
    server_tenant = examples.servers[language]
    command = {
        "python": [sys.executable, "-I", "-S", str(EXAMPLES / "verify_callback.py")],
        "node": [examples.node_executable, str(EXAMPLES / "verify_callback.mjs")],
    }[language]
    env = {"PATH": os.environ["PATH"], "DELETER_CALLBACK_SIGNING_SECRET": server_tenant.callback_secret}
    server = subprocess.Popen(
        [*command, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        listening = server.stdout.readline() if server.stdout else ""
        assert listening.startswith("listening on http://127.0.0.1:"), listening
        url = listening.removeprefix("listening on ").strip()
        examples.stack.tenant_admin().set_callback(server_tenant.tenant_id, f"{url}deletions")

        # When one of its runs is deleted and the stack delivers the completion callback
        examples.extend.seed(["pr_served"], workspace_id=server_tenant.workspace_id)
        answer = server_tenant.session.delete(f"{examples.stack.api_url}/parser_runs/pr_served", timeout=30)
        assert answer.status_code == 200, answer.text
        status_url = f"{examples.stack.api_url}/deletions/{answer.json()['deletionRequestId']}"
        states: list[dict[str, Any]] = []

        def attempted() -> bool:
            states.append(server_tenant.session.get(status_url, timeout=30).json())
            return states[-1].get("callback", {}).get("state") not in (None, "pending")

        wait_until(attempted)

        # and another tenant's real callback is posted to it, as a forger would; and the stack's delivery is sent
        # again (a retry: the same webhook-id, signed afresh)
        forged = requests.post(f"{url}deletions", data=delivered.body, headers=delivered.headers, timeout=10)
        webhook_id = states[-1]["callback"]["webhookId"]
        signature = standardwebhooks.Webhook(server_tenant.callback_secret).sign(
            webhook_id, datetime.now(UTC), delivered.body.decode()
        )
        retried = requests.post(
            f"{url}deletions",
            data=delivered.body,
            headers={
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
                "webhook-signature": signature,
            },
            timeout=10,
        )
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=30)
    record_response(stdout + stderr)

    # Then the server verified the stack's delivery (the stack recorded its 204), refused the forged one, and
    # acknowledged the retry without acting on it again (one event printed)
    callback = states[-1]["callback"]
    assert (callback["state"], callback["lastStatus"]) == ("delivered", 204), callback
    [line] = stdout.splitlines()
    printed = json.loads(line)
    assert printed["webhookId"] == callback["webhookId"]
    assert printed["event"]["data"]["deletionRequestId"] == answer.json()["deletionRequestId"]
    assert (forged.status_code, retried.status_code) == (400, 204)
    assert stderr.splitlines() == [
        "rejected: no signature matches: the body was changed, or it is signed with another secret"
    ]


# ---- openapi.yaml, for generated clients


def test_openapi_yaml_requires_the_api_key_and_the_signature_together_on_every_operation() -> None:
    # The schemes name the headers the function verifies, and the signing rule is in the signature's description.
    schemes = spec()["components"]["securitySchemes"]
    named = {name: (scheme["type"], scheme["in"], scheme["name"]) for name, scheme in schemes.items()}
    assert named == {
        "apiKey": ("apiKey", "header", "x-api-key"),
        "webhookId": ("apiKey", "header", HEADER_ID),
        "webhookTimestamp": ("apiKey", "header", HEADER_TIMESTAMP),
        "webhookSignature": ("apiKey", "header", HEADER_SIGNATURE),
    }
    rule = schemes["webhookSignature"]["description"]
    assert '"{METHOD} {route path}"' in rule and '"{webhook-id}.{webhook-timestamp}.{payload}"' in rule
    # One requirement holding all four: a client must send the key and the signature, not either one.
    everything: list[dict[str, list[str]]] = [{name: [] for name in named}]
    assert spec()["security"] == everything
    for method, path in sorted(operations()):
        operation = spec()["paths"][path][method.lower()]
        assert operation["security"] == everything, (method, path)
        parameters = {parameter.get("$ref", "") for parameter in operation.get("parameters", [])}
        assert not any("Webhook" in reference for reference in parameters), (method, path)


def test_openapi_yaml_lists_the_custom_domain_besides_the_execute_api_endpoint() -> None:
    servers = {server["url"]: server.get("variables", {}) for server in spec()["servers"]}
    assert set(servers) == {
        "https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
        "https://{customDomain}{basePath}",
    }
    assert servers["https://{customDomain}{basePath}"]["basePath"]["default"] == ""
