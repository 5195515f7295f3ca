"""Function instances as the parent sees them: a ``Worker`` per instance process, a ``FunctionPool`` per function.

Each concurrent function instance is its own worker process (``devstack.function_instance``), so each has its
own warm module state, as a Lambda execution environment does. A worker imports ``Handler`` from ``CodeUri``
(its working directory, first on ``sys.path``), gets the function's resolved environment and nothing else from
ours, and serves invocations one at a time: an event (JSON) in on stdin, the result or error out on a private
pipe. The handler's stdout and stderr (Powertools JSON logs, EMF metric lines, START/END/REPORT lines) are one
stream, read live into a ``LogSink``. The context's remaining time counts down from the template's
``Timeout``; an invocation still running at the timeout is killed, answers ``Task timed out``, and the next
one gets a fresh (cold) instance.

Not emulated: reserved concurrency (a pool's size is its only limit).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devstack import function_instance
from devstack.logs import LogSink

# How long past its timeout an instance may take to answer before it is counted as timed out and killed.
_WORKER_GRACE_S = 2.0


@dataclass(frozen=True)
class FunctionConfig:
    """What one function's instances run: resolved from the template by ``LocalDeployment``."""

    name: str
    handler: str
    code_uri: Path
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    cold: bool = False
    duration_s: float = 0.0


def worker_environment(config: FunctionConfig) -> dict[str, str]:
    """The process environment of an instance: the function's variables plus what Lambda itself sets."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # For the instance module only: it takes this off sys.path before the handler loads.
        "PYTHONPATH": str(function_instance.REPO_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
        "LAMBDA_TASK_ROOT": str(config.code_uri),
        "_HANDLER": config.handler,
    }
    env.update(config.environment)
    return env


class Worker:
    """One function instance: a subprocess serving invocations one at a time."""

    def __init__(self, config: FunctionConfig, sink: LogSink, index: int) -> None:
        self.config = config
        self.label = f"{config.name}#{index}"
        self.invocations = 0
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                function_instance.__name__,
                "worker",
                "--handler",
                config.handler,
                "--function-name",
                config.name,
                "--timeout",
                str(config.timeout_s),
                "--memory",
                str(config.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=config.code_uri,
            env=worker_environment(config),
            text=True,
            bufsize=1,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(target=self._read_replies, args=(self.process.stdout,), daemon=True).start()
        self._log_thread = threading.Thread(
            target=self._read_logs, args=(self.process.stderr, sink), name=f"logs-{self.label}", daemon=True
        )
        self._log_thread.start()

    def _read_replies(self, stream: IO[str]) -> None:
        for line in stream:
            self._replies.put(line)
        self._replies.put(None)

    def _read_logs(self, stream: IO[str], sink: LogSink) -> None:
        for line in stream:
            sink.feed(self.config.name, line)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Mapping[str, Any]) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        cold = self.invocations == 0
        self.invocations += 1
        request = {"requestId": request_id, "startedAt": started, "event": event}
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self._replies.get(timeout=self.config.timeout_s + _WORKER_GRACE_S)
        except queue.Empty:
            self.kill()
            message = f"Task timed out after {self.config.timeout_s:.2f} seconds"
            return InvocationResult(request_id, False, None, "Sandbox.Timedout", message, cold, self._since(started))
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            self.kill()
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {self.process.poll()}"
            return InvocationResult(request_id, False, None, "Runtime.ExitError", message, cold, self._since(started))
        reply = json.loads(line)
        return InvocationResult(
            request_id,
            bool(reply["ok"]),
            reply.get("result"),
            reply.get("errorType"),
            reply.get("errorMessage"),
            cold,
            self._since(started),
        )

    @staticmethod
    def _since(started: float) -> float:
        return time.monotonic() - started

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait(timeout=5)

    def close(self, timeout_s: float = 5.0) -> None:
        """Shut down: close stdin (the worker exits after its current invocation), then kill if need be."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log_thread.join(timeout=timeout_s)
        for stream in (self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class FunctionPool:
    """Up to ``max_instances`` warm workers of one function; ``invoke`` blocks until one is free."""

    def __init__(self, config: FunctionConfig, sink: LogSink, max_instances: int) -> None:
        self.config = config
        self.sink = sink
        self.max_instances = max_instances
        self._idle: list[Worker] = []
        self._busy = 0
        self._spawned = 0
        self._closed = False
        self._condition = threading.Condition()
        self.stats: Counter[str] = Counter()
        self.peak_concurrency = 0

    def invoke(self, event: Mapping[str, Any]) -> InvocationResult:
        worker = self._acquire()
        try:
            result = worker.invoke(event)
        finally:
            self._release(worker)
        with self._condition:
            self.stats["invocations"] += 1
            self.stats["cold_starts"] += int(result.cold)
            self.stats["errors"] += int(not result.ok)
        return result

    @property
    def busy(self) -> int:
        """Instances running an invocation now (the demo tells a batch at work from one waiting to be redelivered)."""
        with self._condition:
            return self._busy

    def prewarm(self, count: int) -> None:
        """Start ``count`` instances now (their init runs before any event), like provisioned concurrency."""
        with self._condition:
            missing = max(0, min(count, self.max_instances) - self._spawned)
            first = self._spawned + 1
            self._spawned += missing
        workers = [Worker(self.config, self.sink, first + offset) for offset in range(missing)]
        with self._condition:
            self._idle.extend(workers)
            self._condition.notify_all()

    def _acquire(self) -> Worker:
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.config.name} is shut down")
                if self._idle:
                    worker = self._idle.pop()
                    break
                if self._busy < self.max_instances:
                    self._spawned += 1
                    index = self._spawned
                    self._busy += 1
                    try:
                        return Worker(self.config, self.sink, index)
                    except Exception:
                        self._busy -= 1
                        raise
                    finally:
                        self.peak_concurrency = max(self.peak_concurrency, self._busy)
                self._condition.wait()
            self._busy += 1
            self.peak_concurrency = max(self.peak_concurrency, self._busy)
            return worker

    def _release(self, worker: Worker) -> None:
        with self._condition:
            self._busy -= 1
            keep = worker.alive and not self._closed
            if keep:
                self._idle.append(worker)
            self._condition.notify()
        if not keep:
            worker.close()  # a dead instance (timeout, crash) or a shutdown: the next invoke starts a cold one

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.close()
