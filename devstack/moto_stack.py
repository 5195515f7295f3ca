"""moto's server on loopback, holding what the function needs: the Extend key secret and the two queues."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from devstack import aws_call_log

REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class _FirstComeFirstServed:
    """A lock taken in arrival order. ``threading.Lock`` wakes an arbitrary waiter, so under load one caller could
    wait seconds behind later ones, where DynamoDB would have answered each in milliseconds."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._turns.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc_info: object) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


class _DynamoDBOneAtATime:
    """WSGI middleware: DynamoDB requests one at a time, in arrival order. DynamoDB makes each item's update atomic
    (two concurrent ``ADD``s both count); moto's backend does not lock, so two concurrent updates of one item can
    lose one. Only DynamoDB's calls are serialised: they are short, where SQS long polls must not hold anything
    up."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = _FirstComeFirstServed()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


class _LocalMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app: Callable[..., Iterable[bytes]] = _DynamoDBOneAtATime(DomainDispatcherApplication(create_backend_app))
        call_log = os.environ.get(aws_call_log.ENVIRONMENT_VARIABLE)
        if call_log:  # every call, who made it and on what, for tests/iam
            app = aws_call_log.AwsCallLog(app, Path(call_log))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free loopback port; yields its endpoint URL."""
    server = _LocalMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _serve_until_told(connection: Any) -> None:
    server = _LocalMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    connection.send(server.get_host_and_port())
    with contextlib.suppress(EOFError):  # the parent said stop, or is gone
        connection.recv()
    server.stop()


@contextmanager
def moto_server_process() -> Iterator[str]:
    """moto's server in a process of its own; yields its endpoint URL. For a heavy run: the server then has a
    core, a heap and a garbage collector to itself, as AWS's services do, rather than sharing the caller's."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve_until_told, args=(theirs,), daemon=True)
    process.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("moto's server process did not start within 60 s")
        host, port = ours.recv()
        yield f"http://{host}:{port}"
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()


def aws_client(service: str, endpoint_url: str, access_key_id: str = "testing") -> Any:
    """A client of moto's server; ``access_key_id`` says who signs (the local stack gives each principal its own)."""
    factory: Any = boto3.client  # the service name is a plain str here, not one of the stubs' literals
    return factory(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key="testing",
    )


@dataclass(frozen=True)
class QueuePair:
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    max_receive_count: int


def create_queues(
    endpoint_url: str, *, prefix: str | None = None, max_receive_count: int = 3, visibility_timeout_s: int = 30
) -> QueuePair:
    """The deletion queue and its DLQ, with the redrive policy the template declares."""
    sqs = aws_client("sqs", endpoint_url)
    prefix = prefix or f"deletions-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq", Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=prefix,
        Attributes={
            "SqsManagedSseEnabled": "true",
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueuePair(queue_url, queue_arn, dlq_url, dlq_arn, max_receive_count)


def put_secret(endpoint_url: str, value: str, *, name: str | None = None) -> str:
    """Create (or update) a secret; returns its ARN."""
    secrets = aws_client("secretsmanager", endpoint_url)
    name = name or f"extend-api-key-{uuid.uuid4().hex[:8]}"
    try:
        return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])
    except secrets.exceptions.ResourceExistsException:
        return str(secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"])


def rotate_secret(endpoint_url: str, secret_id: str, value: str) -> None:
    aws_client("secretsmanager", endpoint_url).put_secret_value(SecretId=secret_id, SecretString=value)


def apply_local_aws_env(endpoint_url: str, environ: dict[str, str] | None = None) -> None:
    """Point every boto3 client in this process at moto, through the standard variable."""
    target = os.environ if environ is None else environ
    target.update(LOCAL_AWS_ENV)
    target["AWS_ENDPOINT_URL"] = endpoint_url
