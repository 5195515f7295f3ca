"""One function instance, the process side: import the handler from ``CodeUri``, then serve invocations.

``devstack.functions`` starts it as ``python -m devstack.function_instance worker ...`` with the function's
``CodeUri`` as working directory and the function's environment. Each invocation comes in as a JSON line on
stdin and its result or error goes out on a private pipe (a copy of fd 1); the handler's stdout joins stderr,
so what it prints is one log stream, as in CloudWatch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The folder holding devstack/: on PYTHONPATH for this module only, taken off sys.path before the handler loads.
REPO_ROOT = Path(__file__).resolve().parent.parent


def _worker_main(args: argparse.Namespace) -> int:
    """The instance side: import the handler, then serve invocations from stdin until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent shuts instances down in order on Ctrl-C
    from devstack.lambda_context import LocalLambdaContext  # noqa: PLC0415 - before sys.path is narrowed

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the function's stdout joins stderr: one log stream, as in CloudWatch
    task_root = os.getcwd()
    sys.path[:] = [task_root] + [p for p in sys.path if p not in ("", task_root, str(REPO_ROOT))]
    module_name, _, function_name = args.handler.rpartition(".")
    handler: Callable[[Any, Any], Any] | None = None
    init_error: tuple[str, str] | None = None
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:
        init_error = ("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
        traceback.print_exc()
    while line := sys.stdin.readline():
        request = json.loads(line)
        request_id = request["requestId"]
        context = LocalLambdaContext(
            function_name=args.function_name,
            timeout_s=args.timeout,
            memory_limit_in_mb=args.memory,
            aws_request_id=request_id,
            started_at=request["startedAt"],  # CLOCK_MONOTONIC is system-wide: the parent's start counts
        )
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.monotonic()
        reply: dict[str, Any]
        if handler is None:
            assert init_error is not None
            reply = {"ok": False, "errorType": init_error[0], "errorMessage": init_error[1]}
        else:
            try:
                reply = {"ok": True, "result": handler(request["event"], context)}
            except Exception as error:
                reply = {"ok": False, "errorType": type(error).__name__, "errorMessage": str(error)}
                print(
                    json.dumps(
                        {
                            "errorType": reply["errorType"],
                            "errorMessage": reply["errorMessage"],
                            "requestId": request_id,
                            "stackTrace": traceback.format_exc().splitlines(),
                        }
                    )
                )
        duration_ms = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}")
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tMemory Size: {args.memory} MB", flush=True
        )
        sys.stdout.flush()
        replies.write(json.dumps(reply, default=str) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.function_instance")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="serve one function instance (started by the runtime)")
    worker.add_argument("--handler", required=True)
    worker.add_argument("--function-name", required=True)
    worker.add_argument("--timeout", type=float, required=True)
    worker.add_argument("--memory", type=int, default=128)
    args = parser.parse_args(argv)
    return _worker_main(args)


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
