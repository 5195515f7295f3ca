"""``make run ARGS=--serve``: the local stack kept up until Ctrl-C, with each tenant's key and secret, the signing
recipe, ready-to-paste curl and operator CLI commands, and each outcome printed as it happens. It seeds the runs of
a customer not yet registered (``newco``) for the walk-through in docs/local-stack.md."""

from __future__ import annotations

import argparse
import contextlib
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from devstack.demo.plan import make_plan
from devstack.demo.rendering import Console, print_stack
from devstack.demo.stack import running_stack, stack_options
from devstack.local_deployment import OPERATOR_PRINCIPAL, REPO_ROOT
from devstack.logs import LogSink
from devstack.moto_stack import REGION
from devstack.stack_outputs import stack_name

SIGNING_RECIPE = REPO_ROOT / "docs" / "tenancy.md"
# A customer that is not a tenant yet, with runs of its own in its own workspace: docs/local-stack.md's walk-through
# registers it. Fixed ids, so that the walk-through can name them as written.
WALKTHROUGH_TENANT = "newco"
WALKTHROUGH_WORKSPACE = "ws_newco"
WALKTHROUGH_RUNS = tuple(f"parser_run_newco_{n}" for n in (1, 2, 3))


def signing_recipe() -> str:
    """The curl + openssl signing recipe, as docs/tenancy.md gives it."""
    found = re.search(r"```sh\n(# sign-request.*?)```", SIGNING_RECIPE.read_text(encoding="utf-8"), re.DOTALL)
    return found.group(1) if found else "(see docs/tenancy.md)"


def serve(args: argparse.Namespace, console: Console) -> int:
    plan = make_plan(20)
    log_file = Path(tempfile.mkstemp(prefix="extend-deleter-functions-", suffix=".log")[1])
    with log_file.open("w", encoding="utf-8") as raw:
        sink = LogSink(raw)
        sink.listeners.append(lambda function, doc: _echo_outcome(console, function, doc))
        with running_stack(stack_options(args), sink, plan) as (stack, emulator, endpoint, clients):
            console.line("The local stack is up. Ctrl-C stops it.")
            print_stack(console, stack, emulator, endpoint, log_file)
            console.line()
            console.line("Each tenant's credentials (shown once, as `extend-deleter tenants add` prints them):")
            for client in clients.values():
                console.line(
                    f"  {client.tenant_id:<7} x-api-key {client.api_key}   signing secret {client.signing_secret}"
                )
            console.line(f"  acme's runs:   {plan.acme_runs[1]} ... ({len(plan.acme_runs)})")
            console.line(f"  globex's runs: {plan.globex_runs[0]} ... ({len(plan.globex_runs)})")
            console.line()
            console.line("Sign and send, as acme (docs/tenancy.md has the recipe):")
            console.line(signing_recipe().rstrip())
            acme = clients["acme"]
            console.line(f"  API={stack.api_url} KEY={acme.api_key} SECRET={acme.signing_secret}")
            path = f"/parser_runs/{plan.acme_runs[1]}"
            console.line(f'  curl -s -X DELETE -H "x-api-key: $KEY" $(sign_request DELETE {path}) "$API{path}"')
            console.line()
            emulator.seed(list(WALKTHROUGH_RUNS), workspace_id=WALKTHROUGH_WORKSPACE)
            console.line(
                "Operator CLI against this stack, in another terminal with extend-deleter on its PATH "
                "(source .venv/bin/activate): paste this line, then the commands below or docs/local-stack.md's "
                "walk-through"
            )
            # moto takes any key; its id names the caller, here the operator role, as on AWS with --role-arn.
            console.line(
                f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={OPERATOR_PRINCIPAL} "
                f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION} "
                f"STACK={stack_name(stack)} API={stack.api_url}"
            )
            cli = 'extend-deleter --stack-name "$STACK"'
            for command in (
                f"{cli} tenants list",
                f"{cli} tenants disable globex",
                f"printf '%s\\n' {' '.join(plan.acme_runs[4:7])} | {cli} enqueue -",
                f"{cli} status",
                f"{cli} dlq",
                f"{cli} smoke",
            ):
                console.line(f"  {command}")
            console.line(
                f"  Not a tenant yet: {WALKTHROUGH_TENANT}, its runs {', '.join(WALKTHROUGH_RUNS)} in workspace "
                f"{WALKTHROUGH_WORKSPACE} (the walk-through registers it)"
            )
            console.line()
            console.line("Outcomes as they happen:")
            stop = threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(1 if args.serve_seconds is None else args.serve_seconds):
                    if args.serve_seconds is not None:
                        break
            console.line("Shutting down ...")
    return 0


def _echo_outcome(console: Console, function: str, doc: dict[str, Any]) -> None:
    if "outcome" in doc and "_aws" not in doc:
        detail = doc.get("reason") or (f"HTTP {doc['status_code']}" if doc.get("status_code") else "")
        console.line(
            f"  [{doc.get('trigger')}] {doc.get('tenant_id', '-'):<8} {doc['outcome']:<9} {doc.get('parser_run_id')}"
            f"  {detail}"
        )
