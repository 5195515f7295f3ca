"""A local Lambda runtime for the two functions in ``template.yaml``: worker processes, an SQS event source
and an API Gateway (REST, payload 1.0) front, all on loopback.

* **Instances.** Each concurrent function instance is its own worker process (``python -m devstack.runtime
  worker``), so each has its own warm module state, as a Lambda execution environment does. A worker imports
  ``Handler`` from ``CodeUri`` (its working directory, first on ``sys.path``), gets the function's resolved
  environment and nothing else from ours, and serves invocations one at a time: an event (JSON) in on stdin,
  the result or error out on a private pipe. The handler's stdout and stderr (Powertools JSON logs, EMF
  metric lines, START/END/REPORT lines) are one stream, read live into a ``LogSink``. The context's remaining
  time counts down from the template's ``Timeout``; an invocation still running at the timeout is killed,
  answers ``Task timed out``, and the next one gets a fresh (cold) instance.
* **SQS event source.** Up to ``ScalingConfig.MaximumConcurrency`` pollers long-poll the queue
  (``AttributeNames``/``MessageAttributeNames`` All), fill a batch up to ``BatchSize`` within
  ``MaximumBatchingWindowInSeconds``, build the event as Lambda does (``devstack.events``), invoke, then delete
  the messages not named in ``batchItemFailures``. Failed messages are left alone: they reappear after the
  visibility timeout and SQS (moto) moves them to the DLQ after ``maxReceiveCount``. An invocation error
  (raised, crashed, timed out) or an invalid ``batchItemFailures`` keeps the whole batch.
* **HTTP front.** A ``ThreadingHTTPServer`` serving ``/{StageName}/...`` for the template's ``Api`` events:
  unknown routes get the template's 404 gateway response, a missing or wrong ``x-api-key`` gets 403
  ``{"message": "Forbidden"}`` (``ApiKeyRequired``), a function error 502 ``Internal server error``.
* ``LocalStack`` builds the whole thing from the template against moto's server and the Extend emulator.

Not emulated: usage-plan throttling, Lambda's poller scale-up curve (the pollers start at the maximum), and
reserved concurrency.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_ACCOUNT = "123456789012"
_WORKER_GRACE_S = 2.0


# ---------------------------------------------------------------------------------------------------- logs


class LogSink:
    """Collects what the functions print: JSON log lines, EMF metric documents, and plain lines.

    Thread-safe; ``listeners`` are called with each parsed JSON document as it arrives.
    """

    def __init__(self, raw: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.raw = raw
        self.documents: list[dict[str, Any]] = []
        self.lines = 0
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def feed(self, function: str, line: str) -> None:
        text = line.rstrip("\n")
        document: dict[str, Any] | None = None
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
                document = parsed if isinstance(parsed, dict) else None
        with self._lock:
            self.lines += 1
            if self.raw is not None:
                self.raw.write(f"[{function}] {text}\n")
            if document is not None:
                self.documents.append(document)
        if document is not None:
            for listener in list(self.listeners):
                listener(function, document)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.documents)

    def outcome_logs(self) -> list[dict[str, Any]]:
        return [doc for doc in self.snapshot() if "outcome" in doc and "_aws" not in doc]

    def metric_totals(self) -> Counter[str]:
        return metric_totals(self.snapshot())


def metric_totals(documents: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Sum every EMF metric in ``documents`` by name (a value may be a list, as Powertools emits it)."""
    totals: Counter[str] = Counter()
    for document in documents:
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"], 0)
                totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals


# ---------------------------------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class FunctionConfig:
    """What one function's instances run: resolved from the template by ``LocalStack``."""

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


class _WorkerDied(Exception):
    pass


def worker_environment(config: FunctionConfig) -> dict[str, str]:
    """The process environment of an instance: the function's variables plus what Lambda itself sets."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(REPO_ROOT),  # for the worker shim only; removed from sys.path before the handler loads
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
                "devstack.runtime",
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


# ---------------------------------------------------------------------------------------------------- SQS


@dataclass(frozen=True)
class EventSourceSettings:
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    maximum_concurrency: int = 2
    report_batch_item_failures: bool = True
    wait_time_s: int = 1  # long-poll length of an empty receive; short locally so shutdown is quick


class SqsEventSource:
    """Lambda's SQS poller: receive, invoke, delete what succeeded, leave the rest to SQS."""

    def __init__(self, pool: FunctionPool, settings: EventSourceSettings, sqs: Any) -> None:
        self.pool = pool
        self.settings = settings
        self.sqs = sqs
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.in_flight = 0

    def start(self) -> SqsEventSource:
        for index in range(self.settings.maximum_concurrency):
            thread = threading.Thread(target=self._poll, name=f"sqs-poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def signal_stop(self) -> None:
        """Stop polling; invocations already running finish (``stop`` waits for them)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.pool.config.timeout_s + 10)
        self._threads.clear()

    def _count(self, **values: int) -> None:
        with self._lock:
            self.stats.update(values)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive_batch()
            except Exception:  # moto restarting, or shutting down: back off and poll again
                self._count(receive_errors=1)
                if self._stop.wait(0.5):
                    return
                continue
            if messages:
                self._process(messages)

    def _receive(self, limit: int, wait_s: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.settings.queue_url,
            MaxNumberOfMessages=min(10, limit),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_s,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _receive_batch(self) -> list[dict[str, Any]]:
        size = self.settings.batch_size
        messages = self._receive(size, self.settings.wait_time_s)
        if not messages:
            return []
        window_ends = time.monotonic() + self.settings.batching_window_s
        while len(messages) < size and not self._stop.is_set():
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(size - len(messages), 0)
            messages.extend(more)
            if not more:
                self._stop.wait(min(0.1, remaining))
        return messages

    def _process(self, messages: list[dict[str, Any]]) -> None:
        from devstack.events import record_from_sqs_message  # noqa: PLC0415 - imports boto3-free helpers only

        records = [record_from_sqs_message(message, self.settings.queue_arn) for message in messages]
        with self._lock:
            self.in_flight += len(records)
        try:
            result = self.pool.invoke({"Records": records})
        except RuntimeError:  # shut down while waiting for an instance: the messages reappear later
            result = None
        finally:
            with self._lock:
                self.in_flight -= len(records)
        if result is None or not result.ok:
            self._count(invocations=1, invocation_errors=1, messages_kept=len(records))
            return
        failed = self._failed_ids(result.payload, {record["messageId"] for record in records})
        done = [message for message in messages if message["MessageId"] not in failed]
        self._delete(done)
        self._count(invocations=1, messages_deleted=len(done), messages_kept=len(messages) - len(done))

    def _failed_ids(self, payload: Any, batch_ids: set[str]) -> set[str]:
        """Lambda's rules: no report = all succeeded; a malformed report fails the whole batch."""
        if not self.settings.report_batch_item_failures or payload is None:
            return set()
        if not isinstance(payload, dict):
            return batch_ids
        items = payload.get("batchItemFailures")
        if items is None:
            return set()
        if not isinstance(items, list):
            return batch_ids
        failed = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in batch_ids:
                return batch_ids
            failed.add(identifier)
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            with contextlib.suppress(Exception):  # an undeleted message is simply processed again
                self.sqs.delete_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)


# ---------------------------------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Route:
    resource: str  # e.g. /parser_runs/{id}
    method: str
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))

    @classmethod
    def of(cls, resource: str, method: str) -> Route:
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", resource)
        )
        return cls(resource, method.upper(), re.compile(f"^{regex}$"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        found = self.pattern.match(path)
        return None if found is None else {name: unquote(value) for name, value in found.groupdict().items()}


def _request_time(epoch_s: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_s))


def build_rest_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    resource: str,
    path_parameters: Mapping[str, str] | None,
    stage: str,
    source_ip: str,
    api_key: str | None,
    api_key_id: str | None,
    api_id: str = "local",
    request_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (payload 1.0) proxy event, as ``sam local generate-event apigateway aws-proxy``
    shows it: ``path`` without the stage, ``requestContext.path`` with it, last-value ``headers`` next to
    ``multiValueHeaders``, ``null`` for absent query strings and path parameters, base64 for binary bodies."""
    now = time.time()
    header_map: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        header_map[name] = value
        multi_headers.setdefault(name, []).append(value)
    host = next((value for name, value in headers if name.lower() == "host"), "127.0.0.1")
    pairs = parse_qsl(query, keep_blank_values=True)
    query_map = dict(pairs) or None
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    user_agent = next((value for name, value in headers if name.lower() == "user-agent"), None)
    request_id = request_id or str(uuid.uuid4())
    return {
        "body": text,
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "isBase64Encoded": encoded,
        "queryStringParameters": query_map,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "headers": header_map,
        "multiValueHeaders": multi_headers,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "resourceId": resource.strip("/").replace("/", "-")[:10] or "root",
            "stage": stage,
            "requestId": request_id,
            "requestTime": _request_time(now),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "accessKey": None,
                "sourceIp": source_ip,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
                "apiKey": api_key,
                "apiKeyId": api_key_id,
            },
            "path": f"/{stage}{path}",
            "resourcePath": resource,
            "httpMethod": method,
            "apiId": api_id,
            "protocol": "HTTP/1.1",
            "domainName": host.split(":")[0],
            "domainPrefix": host.split(".")[0].split(":")[0],
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii"),
        },
    }


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_answer(status: int, document: Mapping[str, Any], request_id: str) -> HttpAnswer:
    return HttpAnswer(
        status,
        [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        json.dumps(document).encode(),
    )


def proxy_result_to_http(result: InvocationResult, request_id: str) -> HttpAnswer:
    """Map a proxy integration's result to HTTP as API Gateway does (502 when it cannot)."""
    bad = _json_answer(502, {"message": "Internal server error"}, request_id)
    payload = result.payload
    if not result.ok:
        if result.error_type == "Sandbox.Timedout":
            return _json_answer(504, {"message": "Endpoint request timed out"}, request_id)
        return bad
    if not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        return bad
    headers: list[tuple[str, str]] = []
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return bad
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend((name, str(value)) for name, value in single.items() if name.lower() not in seen)
    body = payload.get("body") or ""
    if not isinstance(body, str):
        return bad
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    return HttpAnswer(payload["statusCode"], headers, raw)


class ApiGatewayFront:
    """API Gateway (REST, proxy integration) on loopback for one function's ``Api`` routes."""

    def __init__(
        self,
        pool: FunctionPool,
        routes: Iterable[Route],
        *,
        stage: str,
        api_keys: Mapping[str, str] | None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.pool = pool
        self.routes = list(routes)
        self.stage = stage
        self.api_keys = dict(api_keys) if api_keys is not None else None  # key value -> key id; None: no keys
        self.requests: Counter[int] = Counter()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-apigateway"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                answer = front.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Date", formatdate(usegmt=True))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY ...) is routed too, so it gets the gateway's JSON 404, not a 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    def start(self) -> ApiGatewayFront:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="apigateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpAnswer:
        request_id = str(uuid.uuid4())
        answer = self._answer(method, target, headers=headers, body=body, source_ip=source_ip, request_id=request_id)
        self.requests[answer.status] += 1
        return answer

    def _answer(
        self, method: str, target: str, *, headers: list[tuple[str, str]], body: bytes, source_ip: str, request_id: str
    ) -> HttpAnswer:
        parts = urlsplit(target)
        prefix = f"/{self.stage}"
        if not (parts.path == prefix or parts.path.startswith(prefix + "/")):
            return _json_answer(404, {"message": "Not found"}, request_id)
        path = parts.path[len(prefix) :] or "/"
        for route in self.routes:
            path_parameters = route.match(method, path)
            if path_parameters is not None:
                break
        else:
            # MISSING_AUTHENTICATION_TOKEN, which the template maps to a JSON 404
            return _json_answer(404, {"message": "Not found"}, request_id)
        api_key = next((value for name, value in headers if name.lower() == "x-api-key"), None)
        api_key_id = None
        if self.api_keys is not None:
            api_key_id = self.api_keys.get(api_key or "")
            if api_key_id is None:
                return _json_answer(403, {"message": "Forbidden"}, request_id)
        forwarded = [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(self._server.server_address[1])),
            ("X-Forwarded-Proto", "http"),
        ]
        present = {name.lower() for name, _ in headers}
        event = build_rest_event(
            method=method,
            path=path,
            query=parts.query,
            headers=headers + [(n, v) for n, v in forwarded if n.lower() not in present],
            body=body,
            resource=route.resource,
            path_parameters=path_parameters,
            stage=self.stage,
            source_ip=source_ip,
            api_key=api_key if self.api_keys is not None else None,
            api_key_id=api_key_id,
            request_id=request_id,
        )
        try:
            result = self.pool.invoke(event)
        except RuntimeError:
            return _json_answer(503, {"message": "Service Unavailable"}, request_id)
        return proxy_result_to_http(result, request_id)


# ---------------------------------------------------------------------------------------------------- the stack


@dataclass
class LocalStackOptions:
    template_path: Path = REPO_ROOT / "template.yaml"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Applied to both functions after the template's own variables (local tuning, e.g. backoffs).
    environment_overrides: dict[str, str] = field(default_factory=dict)
    visibility_timeout_s: int | None = None  # None: the template's
    webhook_signing_secret: str | None = None  # whsec_...; None: signing off
    api_keys: dict[str, str] | None = None  # x-api-key value -> key id; None: one generated key
    api_instances: int = 2
    sqs_wait_time_s: int = 1
    # False: the event source is built but polls only after ``event_source.start()``, so a caller can fill the queue
    # first and know how messages will be batched (two pollers could otherwise split a batch between them).
    poll_queue: bool = True
    workspace_id: str = "ws_local"
    stack_name: str = "local"


class LocalStack:
    """The template's queues, secrets and functions, on moto's server and the Extend emulator."""

    def __init__(
        self, moto_endpoint: str, extend_base_url: str, extend_api_key: str, sink: LogSink, options: LocalStackOptions
    ) -> None:
        self.moto_endpoint = moto_endpoint
        self.extend_base_url = extend_base_url
        self.extend_api_key = extend_api_key
        self.sink = sink
        self.options = options
        self.api_keys = options.api_keys or {f"local-{secrets.token_urlsafe(18)}": "local-key-1"}
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.max_receive_count: int | None = None
        self.secret_arns: dict[str, str] = {}
        self._pools: list[FunctionPool] = []
        self.event_source: SqsEventSource | None = None
        self.front: ApiGatewayFront | None = None
        self.queue_pool: FunctionPool | None = None
        self.api_pool: FunctionPool | None = None

    @property
    def api_key(self) -> str:
        return next(iter(self.api_keys))

    def _aws_environment(self) -> dict[str, str]:
        from devstack.moto_stack import LOCAL_AWS_ENV  # noqa: PLC0415

        return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": self.moto_endpoint}

    def start(self) -> LocalStack:
        from devstack.moto_stack import aws_client, put_secret  # noqa: PLC0415 - boto3 only when a stack starts
        from devstack.template import Template  # noqa: PLC0415

        suffix = uuid.uuid4().hex[:6]
        stack = f"{self.options.stack_name}-{suffix}"
        key_secret = json.dumps({"apiKey": self.extend_api_key, "workspaceId": self.options.workspace_id})
        overrides = {
            "ExtendApiKeySecretArn": put_secret(self.moto_endpoint, key_secret, name=f"{stack}/extend-api-key")
        }
        if self.options.webhook_signing_secret:
            overrides["WebhookSigningSecretArn"] = put_secret(
                self.moto_endpoint, self.options.webhook_signing_secret, name=f"{stack}/webhook-signing"
            )
        # The secrets' ARNs by template parameter, e.g. to rotate the Extend key in a test.
        self.secret_arns = dict(overrides)
        overrides.update(self.options.parameter_overrides)
        template = Template.load(self.options.template_path, overrides)
        template.resolver.stack_name = stack
        self.sqs = aws_client("sqs", self.moto_endpoint)
        self._create_queues(template, stack)

        queue_spec = template.queue_function()
        api_spec = template.api_function()
        assert queue_spec.sqs is not None
        queue_config = self._config(queue_spec)
        api_config = self._config(api_spec)
        concurrency = queue_spec.sqs.maximum_concurrency or 5
        self.queue_pool = FunctionPool(queue_config, self.sink, concurrency)
        self.api_pool = FunctionPool(api_config, self.sink, self.options.api_instances)
        self._pools = [self.queue_pool, self.api_pool]
        source = queue_spec.sqs.queue_logical_id
        self.event_source = SqsEventSource(
            self.queue_pool,
            EventSourceSettings(
                queue_url=self.queue_urls[source],
                queue_arn=self.queue_arns[source],
                batch_size=queue_spec.sqs.batch_size,
                batching_window_s=queue_spec.sqs.batching_window_s,
                maximum_concurrency=concurrency,
                report_batch_item_failures=queue_spec.sqs.report_batch_item_failures,
                wait_time_s=self.options.sqs_wait_time_s,
            ),
            aws_client("sqs", self.moto_endpoint),
        )
        if self.options.poll_queue:
            self.event_source.start()
        api = template.api(api_spec.api_logical_id)
        self.front = ApiGatewayFront(
            self.api_pool,
            [Route.of(route.path, route.method) for route in api_spec.api_routes],
            stage=api.stage_name,
            api_keys=self.api_keys if api.api_key_required else None,
        ).start()
        self.queue_function = queue_spec
        self.api_function = api_spec
        self.source_queue = source
        return self

    def _create_queues(self, template: Any, stack: str) -> None:
        specs = template.queues()
        for spec in specs.values():
            attributes = {
                "VisibilityTimeout": str(
                    self.options.visibility_timeout_s
                    if self.options.visibility_timeout_s is not None
                    else spec.visibility_timeout_s
                )
            }
            if spec.message_retention_s is not None:
                attributes["MessageRetentionPeriod"] = str(spec.message_retention_s)
            name = f"{stack}-{spec.logical_id}"
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.queue_urls[spec.logical_id], self.queue_arns[spec.logical_id] = url, arn
            template.resolver.refs[spec.logical_id] = url
            template.resolver.attributes[(spec.logical_id, "Arn")] = arn
            template.resolver.attributes[(spec.logical_id, "QueueName")] = name
            template.resolver.attributes[(spec.logical_id, "QueueUrl")] = url
        for spec in specs.values():
            if spec.dead_letter_logical_id and spec.max_receive_count:
                policy = {
                    "deadLetterTargetArn": self.queue_arns[spec.dead_letter_logical_id],
                    "maxReceiveCount": str(spec.max_receive_count),
                }
                self.sqs.set_queue_attributes(
                    QueueUrl=self.queue_urls[spec.logical_id], Attributes={"RedrivePolicy": json.dumps(policy)}
                )
                self.max_receive_count = spec.max_receive_count
                self.dead_letter_queue = spec.dead_letter_logical_id

    def _config(self, spec: Any) -> FunctionConfig:
        environment = dict(spec.environment)
        environment["EXTEND_API_BASE_URL"] = self.extend_base_url
        environment.update(self.options.environment_overrides)
        environment.update(self._aws_environment())
        return FunctionConfig(
            name=spec.logical_id,
            handler=spec.handler,
            code_uri=spec.code_uri,
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
            environment=environment,
        )

    def prewarm(self) -> None:
        """Start every queue function instance and one API instance before the first event."""
        assert self.queue_pool is not None
        assert self.api_pool is not None
        self.queue_pool.prewarm(self.queue_pool.max_instances)
        self.api_pool.prewarm(1)

    @property
    def visibility_timeout_s(self) -> int:
        found = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"])
        return int(found["Attributes"]["VisibilityTimeout"])

    @property
    def queue_url(self) -> str:
        return self.queue_urls[self.source_queue]

    @property
    def dead_letter_queue_url(self) -> str:
        return self.queue_urls[self.dead_letter_queue]

    @property
    def api_url(self) -> str:
        assert self.front is not None
        return self.front.base_url

    def queue_depths(self) -> dict[str, int]:
        """Visible and in-flight messages in the deletion queue, and visible ones in the DLQ."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        main = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        dead = self.sqs.get_queue_attributes(QueueUrl=self.dead_letter_queue_url, AttributeNames=names)["Attributes"]
        return {
            "visible": int(main["ApproximateNumberOfMessages"]),
            "in_flight": int(main["ApproximateNumberOfMessagesNotVisible"]),
            "dead_letter": int(dead["ApproximateNumberOfMessages"])
            + int(dead["ApproximateNumberOfMessagesNotVisible"]),
        }

    def stop(self) -> None:
        """Stop taking work, let running invocations finish, then stop every instance."""
        if self.front is not None:
            self.front.stop()
        if self.event_source is not None:
            self.event_source.signal_stop()
        for pool in self._pools:
            pool.close()
        if self.event_source is not None:
            self.event_source.stop()
        for pool in self._pools:
            pool.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.runtime")
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
