"""``smoke``: the first-tenant path, end to end, against any stack: a temporary tenant with its own API key, a signed
``DELETE`` of an id that cannot exist (404), its deletion request read back, and the tenant removed again.

Run it after a deploy: it proves the API key, the usage plan, the signature, the registry, the secrets, the
replay store, Extend (which answers "not found") and the ledger work together, and leaves nothing behind. Every
step is reported, a failed one with what was answered (or why nothing was); the tenant is removed whatever
happened before, and a removal that fails is a failed step naming the command that finishes it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from botocore.exceptions import BotoCoreError, ClientError

from opscli import tenants as tenants_module
from opscli.commands.tenants import tenant_admin, usage_plan_stage
from opscli.context import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_OK, CliError, Context, aws_error
from parser_run_deleter.logic.authentication import signed_payload
from parser_run_deleter.logic.webhook_signature import signature_headers

# A new key takes a moment to reach every API Gateway node: a 403 is retried for this long.
KEY_PROPAGATION_S: Final = 90.0
# How much of an unexpected answer a failed step quotes: enough for API Gateway's or the API's message.
QUOTED_CHARS: Final = 200


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


@dataclass
class Step:
    name: str
    status: int
    ok: bool
    detail: str = ""


class NoAnswer(Exception):
    """The API could not be reached: the URL is wrong, or nothing listens there."""


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
        try:
            response = self.http.request(method, url, headers=headers, timeout=30.0, retries=False)
        except urllib3.exceptions.HTTPError as error:
            reason = str(error).splitlines()[0] if str(error) else ""
            raise NoAnswer(f"no answer from {url}: {type(error).__name__} {reason}".rstrip()) from None
        try:
            body = json.loads(response.data)
        except ValueError:
            body = response.data.decode(errors="replace")[:QUOTED_CHARS]
        return response.status, body


def _quoted(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS] + "..."


def first_tenant_path(caller: SignedCaller, propagation_wait_s: float) -> list[Step]:
    """A signed DELETE of an id that cannot exist, then its deletion request: the steps, as far as they got."""
    missing = f"smoke_{secrets.token_hex(8)}"
    name = "signed DELETE of an id that cannot exist"
    waited_until = time.monotonic() + propagation_wait_s
    try:
        while True:
            status, body = caller.call("DELETE", f"/parser_runs/{missing}")
            if status != 403 or time.monotonic() > waited_until:
                break
            time.sleep(3)  # the new key is not everywhere yet
    except NoAnswer as error:
        return [Step(name, 0, False, str(error))]
    request_id = body.get("deletionRequestId") if isinstance(body, dict) else None
    deleted_ok = status == 404 and isinstance(request_id, str)
    steps = [Step(name, status, deleted_ok, missing if deleted_ok else f"expected 404, got {_quoted(body)}")]
    if not isinstance(request_id, str):
        return steps
    name = "its deletion request read back"
    try:
        status, body = caller.call("GET", f"/deletions/{request_id}")
    except NoAnswer as error:
        return [*steps, Step(name, 0, False, str(error))]
    counts = body.get("counts", {}) if isinstance(body, dict) else {}
    done = isinstance(body, dict) and body.get("status") == "completed" and counts.get("not_found") == 1
    detail = request_id if done else f"expected completed with 1 not_found, got {_quoted(body)}"
    return [*steps, Step(name, status, status == 200 and done, detail)]


def _remove(admin: tenants_module.TenantAdmin, tenant_id: str) -> Step:
    name = "the temporary tenant removed"
    try:
        admin.remove(tenant_id)
    except ClientError as error:
        reason = aws_error(error)
    except (BotoCoreError, tenants_module.TenantError) as error:
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    else:
        return Step(name, 0, True, tenant_id)
    return Step(name, 0, False, f"{reason}; finish with: extend-deleter tenants remove {tenant_id} --yes")


def cmd_smoke(context: Context) -> int:
    args = context.args
    api_url = args.api_url or context.outputs.get("ApiUrl")
    if not api_url:
        raise CliError("no API: pass --api-url, or --stack-name (its ApiUrl output)", EXIT_BAD_INPUT)
    admin = tenant_admin(context)
    tenant_id = f"smoke-{secrets.token_hex(4)}"
    added = admin.add(tenant_id, ownership="unrestricted", stage=usage_plan_stage(context))
    steps: list[Step] = [Step("a temporary tenant added, with its own API key", 0, True, tenant_id)]
    try:
        if added.api_key_value is None:
            steps.append(Step("an API key for it", 0, False, "the stack's usage plan stage gave no key"))
        else:
            caller = SignedCaller(urllib3.PoolManager(), api_url, added.api_key_value, added.signing_secret)
            steps += first_tenant_path(caller, args.propagation_wait)
    finally:
        steps.append(_remove(admin, tenant_id))
    passed = all(step.ok for step in steps)
    context.emit(
        {"passed": passed, "apiUrl": api_url, "tenantId": tenant_id, "steps": [vars(step) for step in steps]},
        lambda: [
            *(
                f"{'ok  ' if s.ok else 'FAIL'} {s.name}{f' ({s.status})' if s.status else ''}  {s.detail}"
                for s in steps
            ),
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
        type=seconds,
        default=KEY_PROPAGATION_S,
        help=f"seconds a new API key may take to work everywhere ({KEY_PROPAGATION_S:g})",
    )
    smoke.set_defaults(run=cmd_smoke)
