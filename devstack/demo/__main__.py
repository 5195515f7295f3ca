"""``make run``: the whole system on loopback, no AWS account, then a scripted demo and a summary that adds up.

It starts moto's server (the secrets, the queues and their DLQs, the tables as ``template.yaml`` declares them),
the Extend emulator (seeded, with faults injected, an organization-scoped key), and the local deployment
(``devstack.local_deployment``: the three functions, API, queue and callback, behind the API Gateway front and
their SQS event sources), and publishes its outputs as a stack in moto (``devstack.stack_outputs``), so that
``extend-deleter --stack-name`` finds it. It registers two tenants as an operator would
(``extend-deleter tenants add --create-api-key``):

- ``acme``, ownership ``workspace``: its runs live in its own Extend workspace;
- ``globex``, ownership ``metadata``: its runs share a workspace with another customer's, told apart by a
  ``tenant`` metadata key (API 2026-02-09, which the demo runs with).

Then each tenant calls the API over real HTTP, every request signed with its own secret:

1. single DELETEs: its own run, a missing one, the other tenant's run (404, and the run stays), a request
   without an API key (403), one signed with the other tenant's secret (401), and a replay (the first answer);
2. a bulk ``POST /deletions`` each: acme's few hundred ids, some absent, some invalid, some with injected faults
   (500s, 429 with ``Retry-After``, a connection reset, a few permanent 403s); both with the other's runs mixed in;
3. two malformed messages a buggy producer put straight on the queue;
4. the queue draining through the queue function, with a live progress line (which says when it is waiting for
   SQS to redeliver a message returned for a retry);
5. each tenant following its deletion requests to their end, and the completion callbacks verified;
6. a summary per tenant: deleted / not found / rejected / in the DLQ / still queued, checked against the
   emulator's state; the other customers' runs left in place; the EMF metric totals; and the time taken.

``--serve`` keeps the stack up and prints each tenant's key, secret and ready-to-paste commands instead, with the
runs of a customer not yet registered (``newco``) for the walk-through in docs/local-stack.md.
Local tuning (printed at start): a short visibility timeout and a high per-instance Extend rate, so retries
and redrives happen in seconds; everything else is the template's.
"""

from __future__ import annotations

import argparse
import sys

from devstack.demo.rendering import Console
from devstack.demo.scenario import run_demo
from devstack.demo.serve import serve


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep the stack up and print curl and CLI commands")
    parser.add_argument("--size", type=int, default=300, help="acme's ids in its bulk request (300)")
    parser.add_argument("--visibility-timeout", type=int, default=6, help="local queue visibility timeout, s (6)")
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        help="template parameter override Name=Value (repeatable), e.g. MaxReceiveCount=3",
    )
    parser.add_argument("--drain-timeout", type=float, default=90.0, help="give up draining after this many s")
    parser.add_argument("--summary-json", help="also write the summary as JSON to this file")
    parser.add_argument("--serve-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parameter = dict(args.parameter)
    if args.size < 20:
        parser.error("--size must be at least 20")
    console = Console(sys.stdout)
    try:
        return serve(args, console) if args.serve else run_demo(args, console)
    except KeyboardInterrupt:
        console.line("\ninterrupted: the stack has been shut down")
        return 130


if __name__ == "__main__":
    sys.exit(main())
