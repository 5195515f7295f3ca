"""The benchmark harness: local servers started once, children run in fresh processes, medians and ratios.

Every measured workload runs in a child ``python`` (this interpreter) with ``handler/`` on its path, so the
servers (moto and the Extend emulator, in this process) never share a GIL with the code being measured.
Children report one JSON line on a pipe (``BENCH_FD``); their stdout is the function's log and goes nowhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.extend_emulator import ExtendEmulator
from devstack.moto_stack import LOCAL_AWS_ENV, QueuePair, create_queues, put_secret

ROOT = Path(__file__).resolve().parent.parent
HANDLER_DIR = ROOT / "handler"
CHILDREN_DIR = ROOT / "bench" / "children"
PEER_DIR = ROOT / "bench" / "peer"
WORKSPACE = "ws_bench"


@dataclass
class Result:
    """One benchmark line: a measured figure against its baseline or target, and whether it meets the target."""

    name: str
    what: str
    measured: float
    baseline: float | None
    ratio: float | None
    target: str
    passed: bool
    unit: str = "s"
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        base = "" if self.baseline is None else f" vs {fmt(self.baseline, self.unit)}"
        ratio = "" if self.ratio is None else f"  ratio {self.ratio:.2f}x"
        measured = fmt(self.measured, self.unit)
        return f"{self.name:<4} {self.what:<44} {measured}{base}{ratio}  target {self.target}  {verdict}"


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "B":  # decimal, as the targets are stated: 100 KB = 100,000 bytes
        return f"{value / 1e3:.1f} KB ({value:,.0f} B)" if value < 1e6 else f"{value / 1e6:.2f} MB ({value:,.0f} B)"
    if unit == "MiB":  # memory, as Lambda sizes it
        return f"{value:.1f} MiB"
    return f"{value:.3g} {unit}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class BenchServices:
    """moto (the secret, the queues) and the Extend emulator on loopback, for the whole benchmark run."""

    def __init__(self, moto_endpoint: str, extend: ExtendEmulator) -> None:
        self.endpoint = moto_endpoint
        self.extend = extend
        self.api_key = f"sk_bench_{uuid.uuid4().hex[:16]}"
        extend.add_key(self.api_key, workspace_id=WORKSPACE)
        # The bare key (a workspace-scoped key needs no workspace header): what the floor and the peer read too.
        self.secret_arn = put_secret(moto_endpoint, self.api_key)
        self._queues: QueuePair | None = None
        self._api_env: dict[str, str] | None = None
        self._stack_env: dict[str, str] | None = None

    @property
    def queues(self) -> QueuePair:
        if self._queues is None:
            self._queues = create_queues(self.endpoint, visibility_timeout_s=30)
        return self._queues

    def stack_env(self) -> dict[str, str]:
        """What every function of the stack is given, as the template gives it: the tables (tenants, replay store,
        ledger) and the callback queue. Made once."""
        if self._stack_env is None:
            from devstack.moto_stack import aws_client  # noqa: PLC0415
            from devstack.template import DEFAULT_TEMPLATE, Template  # noqa: PLC0415
            from opscli.tenants import TenantAdmin  # noqa: PLC0415
            from parser_run_deleter.adapters.tenant_table import TenantTable  # noqa: PLC0415

            dynamodb = aws_client("dynamodb", self.endpoint)
            names: dict[str, str] = {}
            for logical_id, spec in Template.load(DEFAULT_TEMPLATE, {"ExtendApiKeySecretArn": "x"}).tables().items():
                names[logical_id] = f"bench-{logical_id}-{uuid.uuid4().hex[:6]}"
                dynamodb.create_table(**spec.create_arguments(names[logical_id]))
            prefix = f"bench-{uuid.uuid4().hex[:6]}/tenants"
            admin = TenantAdmin(
                TenantTable(names["TenantsTable"], dynamodb), aws_client("secretsmanager", self.endpoint), prefix
            )
            added = admin.add("bench", ownership="workspace", workspace_id=WORKSPACE, api_key_ids=("benchkey01",))
            callbacks = aws_client("sqs", self.endpoint).create_queue(
                QueueName=f"bench-callbacks-{uuid.uuid4().hex[:6]}"
            )
            self._stack_env = {
                "TENANTS_TABLE_NAME": names["TenantsTable"],
                "IDEMPOTENCY_TABLE_NAME": names["IdempotencyTable"],
                "LEDGER_TABLE_NAME": names["LedgerTable"],
                "TENANT_SECRET_PREFIX": prefix,
                "CALLBACK_QUEUE_URL": callbacks["QueueUrl"],
                "BENCH_API_KEY_ID": "benchkey01",
                "BENCH_SIGNING_SECRET": added.signing_secret,
            }
        return self._stack_env

    def api_env(self) -> dict[str, str]:
        """The API function's environment, with one registered tenant whose key id and signing secret the child
        signs with."""
        if self._api_env is None:
            self._api_env = self.env(**self.stack_env(), DELETION_QUEUE_URL=self.queues.queue_url)
        return self._api_env

    def queue_env(self, **overrides: str) -> dict[str, str]:
        """A child script's environment for the queue function (see ``queue_variables``)."""
        return self.env(**self.queue_variables(**overrides))

    def queue_variables(self, **overrides: str) -> dict[str, str]:
        """The queue function's variables, as the template gives them: its own queue (whose records' receipt
        handles it confirms), its DLQ, the registry and the ledger (every outcome is recorded, as in production)."""
        variables = {
            **self.stack_env(),
            "DELETION_QUEUE_URL": self.queues.queue_url,
            "DEAD_LETTER_QUEUE_URL": self.queues.dead_letter_queue_url,
            "MAX_RECEIVE_COUNT": str(self.queues.max_receive_count),
            "SOURCE_QUEUE_VISIBILITY_SECONDS": "30",
        }
        return self.function_variables(**(variables | overrides))

    def delivered(self, ids: Sequence[str], batch_size: int) -> list[dict[str, Any]]:
        """SQS events of ``batch_size`` records, one per id, as Lambda's event source hands them over: each message
        sent to the deletion queue and received (so its receipt handle is one SQS issued), and left in flight."""
        from devstack.events import record_from_sqs_message  # noqa: PLC0415
        from devstack.moto_stack import aws_client  # noqa: PLC0415

        sqs = aws_client("sqs", self.endpoint)
        queue_url, queue_arn = self.queues.queue_url, self.queues.queue_arn
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), 10):
            chunk = ids[start : start + 10]
            bodies = {json.dumps({"parserRunId": parser_run_id}) for parser_run_id in chunk}
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(sorted(bodies))]
            sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            while bodies:
                for message in sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, AttributeNames=["All"]
                ).get("Messages", []):
                    bodies.discard(message["Body"])
                    records.append(record_from_sqs_message(message, queue_arn))
        return [{"Records": records[start : start + batch_size]} for start in range(0, len(records), batch_size)]

    def consumed(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Delete the messages behind ``events`` from the queue, as the event source does once they are handled."""
        from devstack.moto_stack import aws_client  # noqa: PLC0415

        sqs = aws_client("sqs", self.endpoint)
        handles = [record["receiptHandle"] for event in events for record in event["Records"]]
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[start : start + 10])]
            sqs.delete_message_batch(QueueUrl=self.queues.queue_url, Entries=entries)

    def new_ids(self, count: int, prefix: str = "pr_bench") -> list[str]:
        ids = [f"{prefix}_{uuid.uuid4().hex[:12]}" for _ in range(count)]
        self.extend.seed(ids, workspace_id=WORKSPACE)
        return ids

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a child script: this process's, with the function's variables and import path."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("EXTEND_", "POWERTOOLS_", "AWS_", "BENCH_", "_X_AMZN", "LAMBDA_"))
        }
        env.update(PYTHONPATH=str(HANDLER_DIR))
        env.update(self.function_variables(**overrides))
        return env

    def function_variables(self, **overrides: str) -> dict[str, str]:
        """The template's variables of a function instance, pointed at the local servers, and nothing else."""
        variables = dict(LOCAL_AWS_ENV)
        variables.update(
            AWS_ENDPOINT_URL=self.endpoint,
            POWERTOOLS_SERVICE_NAME="parser-run-deleter",
            POWERTOOLS_METRICS_NAMESPACE="ExtendParserRunDeleter",
            POWERTOOLS_TRACE_DISABLED="true",
            AWS_LAMBDA_FUNCTION_NAME="ParserRunDeleter",
            EXTEND_API_KEY_SECRET_ID=self.secret_arn,
            EXTEND_API_BASE_URL=self.extend.base_url,
            EXTEND_API_VERSION="2025-04-21",
            EXTEND_MAX_REQUESTS_PER_SECOND="10000",  # the settings maximum: pacing stays out of the way
        )
        variables.update(overrides)
        return variables

    def peer_env(self) -> dict[str, str]:
        """The peer as deployed with Active tracing: Tracer on, X-Ray SDK patching, a sampled trace header."""
        return self.env(
            PYTHONPATH=str(PEER_DIR),
            POWERTOOLS_TRACE_DISABLED="false",
            LAMBDA_TASK_ROOT=str(PEER_DIR),
            _X_AMZN_TRACE_ID=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1",
            AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
            AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",  # nothing listens: UDP datagrams are simply dropped
        )


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in its own process (not a thread of this one): its CPU work, e.g. scanning a queue of
    1,000 messages on every receive, must not slow the emulator or the event source down through the GIL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def bench_services() -> Iterator[BenchServices]:
    with moto_process() as endpoint, ExtendEmulator() as extend:
        yield BenchServices(endpoint, extend)


@dataclass
class ChildRun:
    wall_s: float
    report: dict[str, Any]


def run_child(
    script: str,
    env: Mapping[str, str],
    *,
    ids: Sequence[str] = (),
    args: Sequence[str] = (),
    events: Sequence[Mapping[str, Any]] = (),
    consumed: Callable[[Sequence[Mapping[str, Any]]], None] | None = None,
    timeout: float = 300,
) -> ChildRun:
    """Start ``python children/<script>`` and time it from just before the spawn to its report on the pipe. The
    ``events`` (SQS events made by ``BenchServices.delivered``) reach it in a file named by ``BENCH_EVENTS``."""
    read_fd, write_fd = os.pipe()
    child_env = dict(env, BENCH_FD=str(write_fd), BENCH_IDS=",".join(ids))
    if events:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(list(events), file)
        child_env["BENCH_EVENTS"] = file.name
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(CHILDREN_DIR / script), *args],
        env=child_env,
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline()
        wall = time.perf_counter() - started
    _, stderr = process.communicate(timeout=timeout)
    if events:
        os.unlink(child_env["BENCH_EVENTS"])
        if consumed is not None:
            consumed(events)
    if not line:
        raise RuntimeError(f"{script} reported nothing (exit {process.returncode}):\n{stderr.decode()[-3000:]}")
    return ChildRun(wall_s=wall, report=json.loads(line))


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": sys.version.split()[0],
    }
