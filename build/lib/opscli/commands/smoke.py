"""``smoke``: the first-tenant path, end to end, against any stack: a temporary tenant with its own API key, a signed
``DELETE`` of an id that cannot exist (404), its deletion request read back, and the tenant removed again.

Run it after a deploy: it proves the API key, the usage plan, the signature, the registry, the secrets, the
replay store, Extend (which answers "not found") and the ledger work together, and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import urllib3

from opscli.commands.tenants import tenant_admin, usage_plan_stage
from opscli.context import EXIT_INCOMPLETE, EXIT_OK, CliError, Context
from parser_run_deleter.logic.authentication import signed_payload
from parser_run_deleter.logic.webhook_signature import signature_headers

# A new key takes a moment to reach every API Gateway node: a 403 is retried for this long.
KEY_PROPAGATION_S: Final = 90.0


@dataclass
class Step:
    name: str
    status: int
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SignedCaller:
    """The temporary tenant, calling the API as any tenant would: its key and a signature over the request."""

    http: urllib3.PoolManager
    api_url: str
    api_key: str
    signing_secret: str

    def call(self, method: str, path: str) -> tuple[int, Any]:
        headers = signature_headers(self.signing_secret, signed_payload(method, path, b""))
        headers["x-api-key"] = self.api_key
        url = self.api_url.rstrip("/") + path
        response = self.http.request(method, url, headers=headers, timeout=30.0, retries=False)
        try:
            body = json.loads(response.data)
        except ValueError:
            body = response.data.decode(errors="replace")[:200]
        return response.status, body


def cmd_smoke(context: Context) -> int:
    args = context.args
    api_url = args.api_url or context.outputs.get("ApiUrl")
    if not api_url:
        raise CliError("no API: pass --api-url, or --stack-name (its ApiUrl output)", 2)
    admin = tenant_admin(context)
    tenant_id = f"smoke-{secrets.token_hex(4)}"
    added = admin.add(tenant_id, ownership="unrestricted", stage=usage_plan_stage(context))
    if added.api_key_value is None:
        raise CliError("the stack has no usage plan to give the smoke tenant an API key (--stage)", 2)
    steps: list[Step] = []
    try:
        caller = SignedCaller(urllib3.PoolManager(), api_url, added.api_key_value, added.signing_secret)
        missing = f"smoke_{secrets.token_hex(8)}"
        waited_until = time.monotonic() + args.propagation_wait
        while True:
            status, body = caller.call("DELETE", f"/parser_runs/{missing}")
            if status != 403 or time.monotonic() > waited_until:
                break
            time.sleep(3)  # the new key is not everywhere yet
        request_id = body.get("deletionRequestId") if isinstance(body, dict) else None
        steps.append(Step("signed DELETE of an id that cannot exist", status, status == 404 and bool(request_id)))
        if request_id:
            status, body = caller.call("GET", f"/deletions/{request_id}")
            done = isinstance(body, dict) and body.get("status") == "completed"
            steps.append(Step("its deletion request read back", status, status == 200 and done, str(request_id)))
    finally:
        admin.remove(tenant_id)
        steps.append(Step("the temporary tenant removed", 0, True, tenant_id))
    passed = all(step.ok for step in steps)
    context.emit(
        {"passed": passed, "apiUrl": api_url, "steps": [vars(step) for step in steps]},
        lambda: [
            *(f"{'ok ' if s.ok else 'FAIL'} {s.name}{f' ({s.status})' if s.status else ''} {s.detail}" for s in steps),
            "smoke test passed" if passed else "smoke test FAILED",
        ],
    )
    return EXIT_OK if passed else EXIT_INCOMPLETE


def register(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    smoke = commands.add_parser(
        "smoke", parents=common, help="the first-tenant path against a stack: a signed DELETE, its status, cleanup"
    )
    smoke.add_argument("--api-url", help="the API's base URL (default: the stack's ApiUrl output)")
    smoke.add_argument("--table", help="tenant registry table (default: the stack's)")
    smoke.add_argument("--secret-prefix", help="tenants' secret name prefix (default: the stack's)")
    smoke.add_argument(
        "--propagation-wait",
        type=float,
        default=KEY_PROPAGATION_S,
        help=f"seconds a new API key may take to work everywhere ({KEY_PROPAGATION_S:g})",
    )
    smoke.set_defaults(run=cmd_smoke)
