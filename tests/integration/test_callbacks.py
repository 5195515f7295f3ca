"""Completion callbacks: a tenant with a callback URL is told, once per completion, with a Standard Webhooks
signature made with its own secret; failed deliveries come back after a backoff with the same ``webhook-id``; and
the sender calls no address it should not (SSRF), however the URL is dressed up.

Against moto (the callback queue, the ledger, the registry), the Extend emulator and a real HTTP receiver on
loopback. The DNS cases inject the resolver (what a name resolves to is the input under test), never the HTTP.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import standardwebhooks
import trustme

from devstack.events import sqs_event, sqs_record
from devstack.moto_stack import aws_client
from parser_run_deleter.adapters.callback_sender import checked_target, post
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.adapters.sqs_queues import SqsQueue
from parser_run_deleter.entrypoints import callback_function, queue_function
from parser_run_deleter.logic.callbacks import EVENT_TYPE, IN_FLIGHT_ALLOWANCE_S, MAX_BACKOFF_S, retry_after_s
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ports import CallbackRefused, DeliveryAnswer
from parser_run_deleter.logic.tenants import TenantStatus
from tests.support.api import TENANT_ID, invoke, rest_event
from tests.support.queue_delivery import received_records
from tests.support.secret_guard import register_secret
from tests.support.stacks import Emitted, InProcessStack, reset_functions

WS = "ws_test"


@dataclass
class Receiver:
    """A tenant's endpoint: records every request, and answers with the statuses it is told to, then 204."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    location: str | None = None
    url: str = ""
    on_request: Callable[[], None] | None = None  # runs before each answer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            if state.on_request is not None:
                state.on_request()
            status = state.statuses.pop(0) if state.statuses else 204
            self.send_response(status)
            if state.location and 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/deletions"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def callback_queue(stack: InProcessStack, receiver: Receiver) -> str:
    """A callback queue, the tenant's callback URL on the loopback receiver, and the settings the stack sets."""
    url = str(aws_client("sqs", stack.endpoint).create_queue(QueueName=f"callbacks-{id(stack)}")["QueueUrl"])
    stack.tenant_admin().set_callback(TENANT_ID, receiver.url)
    stack.set_env(CALLBACK_QUEUE_URL=url, CALLBACK_ALLOW_LOOPBACK="true", MAX_RECEIVE_COUNT="3",
                  API_BASE_URL="https://api.example.test/v1")  # fmt: skip
    reset_functions()
    return url


HANDLES: list[str] = []  # receipt handles of the last delivery, to fast-forward a backoff


def deliver_queued(stack: InProcessStack, queue_url: str, *, receive_count: int = 1) -> dict[str, Any]:
    """Hand what is on the callback queue to the callback function, as its event source would."""
    HANDLES.clear()
    sqs = aws_client("sqs", stack.endpoint)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
    assert messages, "nothing was queued for the callback function"
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = []
    for message in messages:
        record = sqs_record(
            message["Body"], message_id=message["MessageId"], receive_count=receive_count, queue_arn=queue_arn
        )
        record["receiptHandle"] = message["ReceiptHandle"]
        records.append(record)
        HANDLES.append(message["ReceiptHandle"])
    result: dict[str, Any] = callback_function.lambda_handler(sqs_event(*records), stack.context())
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return result


def status_of(request_id: str) -> dict[str, Any]:
    answer = invoke(rest_event("GET", f"/deletions/{request_id}"))
    assert answer.status == 200
    body: dict[str, Any] = answer.body
    return body


def test_a_completed_request_is_told_to_its_tenant_with_a_signature_its_library_verifies(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    # Given a tenant with a callback URL, whose synchronous delete completes its request at once
    stack.extend.seed(["pr_cb"], workspace_id=WS)
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_cb"))
    request_id = answer.body["deletionRequestId"]

    # When the callback function delivers what was queued
    assert deliver_queued(stack, callback_queue) == {"batchItemFailures": []}

    # Then the tenant got one POST, which the standardwebhooks library verifies with the tenant's secret
    [delivery] = receiver.received
    assert delivery["path"] == "/hooks/deletions"
    event = standardwebhooks.Webhook(stack.tenant.callback_signing_secret).verify(delivery["body"], delivery["headers"])
    assert event["type"] == EVENT_TYPE
    assert event["data"]["deletionRequestId"] == request_id and event["data"]["status"] == "completed"
    assert event["data"]["counts"]["deleted"] == 1
    assert event["data"]["links"]["status"] == f"https://api.example.test/v1/deletions/{request_id}"
    assert delivery["headers"]["webhook-id"] == f"msg_{request_id}_1"
    # and the status resource says it was delivered
    callback = status_of(request_id)["callback"]
    assert callback["state"] == "delivered" and callback["attempts"] == 1 and callback["lastStatus"] == 204


def test_a_failed_delivery_comes_back_after_its_backoff_with_the_same_webhook_id(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    # Given a tenant endpoint that fails once
    receiver.statuses = [503]
    stack.extend.seed(["pr_retry"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_retry")).body["deletionRequestId"]

    # When the first delivery fails
    first = deliver_queued(stack, callback_queue)

    # Then the message is returned, and hidden for its backoff (a minute), not redelivered at once
    assert len(first["batchItemFailures"]) == 1
    assert status_of(request_id)["callback"]["state"] == "retrying"
    sqs = aws_client("sqs", stack.endpoint)
    assert sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", []) == []
    # and once it is due (made visible here), the retry carries the same webhook-id, and is delivered
    attributes = sqs.get_queue_attributes(
        QueueUrl=callback_queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    _make_visible(stack, callback_queue)
    assert deliver_queued(stack, callback_queue, receive_count=2) == {"batchItemFailures": []}
    assert [d["headers"]["webhook-id"] for d in receiver.received] == [f"msg_{request_id}_1"] * 2
    callback = status_of(request_id)["callback"]
    assert callback["state"] == "delivered" and callback["attempts"] == 2


def _make_visible(stack: InProcessStack, queue_url: str) -> None:
    """Fast-forward a backoff: make the hidden message visible now, as the passing of its backoff would."""
    sqs = aws_client("sqs", stack.endpoint)
    for handle in HANDLES:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)


def test_the_last_failed_attempt_is_recorded_as_failed(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    stack.extend.seed(["pr_last"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_last")).body["deletionRequestId"]
    result = deliver_queued(stack, callback_queue, receive_count=3)  # MAX_RECEIVE_COUNT is 3 here
    assert len(result["batchItemFailures"]) == 1  # SQS's redrive parks it in the callback DLQ
    callback = status_of(request_id)["callback"]
    assert callback["state"] == "failed" and callback["lastStatus"] == 500


@pytest.mark.parametrize("change", ["cleared its callback URL", "disabled", "removed"])
def test_a_tenant_that_no_longer_takes_callbacks_is_not_called(
    stack: InProcessStack, callback_queue: str, receiver: Receiver, change: str
) -> None:
    # Given a completed request whose callback is queued, and then the tenant changed
    stack.extend.seed(["pr_gone"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_gone")).body["deletionRequestId"]
    admin = stack.tenant_admin()
    if change == "cleared its callback URL":
        admin.set_callback(TENANT_ID, None)
    elif change == "disabled":
        admin.set_status(TENANT_ID, TenantStatus.DISABLED)
    else:
        admin.remove(TENANT_ID)
    stack.set_env(TENANT_CACHE_SECONDS="0")
    reset_functions()

    # When the callback function takes the message, then nobody is called, and the record says why
    assert deliver_queued(stack, callback_queue) == {"batchItemFailures": []}
    assert receiver.received == []
    assert status_of_in_ledger(stack, request_id)["state"] == "cancelled"


def status_of_in_ledger(stack: InProcessStack, request_id: str) -> dict[str, Any]:
    """The request's callback state, read from the ledger (its tenant may be gone, and the API with it)."""
    assert stack.tables is not None
    table = LedgerTable(stack.tables.ledger_table, retention_days=1, client=aws_client("dynamodb", stack.endpoint))
    request = Ledger(table).request(request_id)
    assert request is not None and request.callback is not None
    return dict(request.callback)


def test_a_bulk_request_is_told_once_when_its_last_run_settles(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    from tests.integration.test_ledger import consume_queue

    stack.extend.seed(["pr_b1", "pr_b2"], workspace_id=WS)
    body = '{"parserRunIds": ["pr_b1", "pr_b2", "pr_b3"]}'
    request_id = invoke(rest_event("POST", "/deletions", body=body)).body["deletionRequestId"]
    sqs = aws_client("sqs", stack.endpoint)
    assert sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", []) == []  # not yet

    # When one of its three runs settles, the request is not complete: nothing is told, nothing is queued
    [first] = sqs.receive_message(QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=1)["Messages"]
    one = queue_function.lambda_handler(sqs_event(*received_records([first], stack.queues.queue_arn)), stack.context())
    assert one == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=stack.queues.queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", []) == []
    assert status_of(request_id)["status"] == "in_progress" and "callback" not in status_of(request_id)

    # and once the last one settles, it is told once, with the final counts
    assert consume_queue(stack) == {"batchItemFailures": []}
    assert deliver_queued(stack, callback_queue) == {"batchItemFailures": []}
    [delivery] = receiver.received
    event = json.loads(delivery["body"])
    assert event["data"]["deletionRequestId"] == request_id
    assert event["data"]["counts"]["deleted"] == 2 and event["data"]["counts"]["not_found"] == 1


# ---------------------------------------------------------------- the SSRF guard


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.7",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # the instance metadata service
        "169.254.10.10",  # link-local
        "fd00:ec2::254",  # the metadata service over IPv6
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",  # a private IPv4 address dressed as IPv6
        "0.0.0.0",
        "224.0.0.1",
        "127.0.0.1",  # loopback, outside local mode
        "::1",
    ],
)
def test_a_name_that_resolves_to_a_private_address_is_never_called(address: str) -> None:
    with pytest.raises(CallbackRefused, match="may not be called"):
        checked_target("https://hooks.example.com/x", allow_loopback=False, resolver=lambda host, port: [address])


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    resolver = lambda host, port: ["93.184.216.34", "10.1.2.3"]  # noqa: E731
    with pytest.raises(CallbackRefused):
        checked_target("https://hooks.example.com/x", allow_loopback=False, resolver=resolver)


def test_a_public_address_is_called_and_the_request_goes_to_the_checked_address() -> None:
    resolver = lambda host, port: ["93.184.216.34"]  # noqa: E731
    assert checked_target("https://hooks.example.com:8443/x", allow_loopback=False, resolver=resolver) == (
        "https", 8443, "93.184.216.34",
    )  # fmt: skip


@pytest.fixture
def tls_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tenant's https endpoint on loopback, with a certificate for ``hooks.tenant.test`` from a test CA that the
    process trusts (``SSL_CERT_FILE``). The name resolves nowhere: only the address the sender checked reaches it."""
    authority = trustme.CA()
    certificate = authority.issue_cert("hooks.tenant.test")
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"host": self.headers.get("Host"), "body": body})
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with authority.cert_pem.tempfile() as ca_file:
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        try:
            yield f"https://hooks.tenant.test:{server.server_address[1]}/deletions", received
        finally:
            server.shutdown()
            server.server_close()


def test_a_callback_goes_over_tls_to_the_checked_address_with_the_hosts_name(
    tls_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = tls_receiver
    answer = post(url, b'{"a": 1}', {}, timeout_s=5, allow_loopback=True, resolver=lambda host, port: ["127.0.0.1"])
    # delivered over TLS (the certificate verified for the host's name), to the address that was checked
    assert answer == DeliveryAnswer(204)
    assert [(item["host"], item["body"]) for item in received] == [(url.split("/")[2], b'{"a": 1}')]


def test_a_certificate_for_another_name_is_a_failed_delivery(tls_receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = tls_receiver
    elsewhere = url.replace("hooks.tenant.test", "other.tenant.test")
    answer = post(elsewhere, b"{}", {}, timeout_s=5, allow_loopback=True, resolver=lambda host, port: ["127.0.0.1"])
    assert answer.status is None and answer.error is not None and received == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
def test_only_plain_https_urls_are_called(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        checked_target(url, allow_loopback=False, resolver=lambda host, port: ["93.184.216.34"])


def test_localhost_is_refused_by_real_resolution_outside_local_mode() -> None:
    with pytest.raises(CallbackRefused, match="may not be called"):
        checked_target("https://localhost/hook", allow_loopback=False)


def test_a_redirect_is_not_followed_and_counts_as_a_failed_delivery(receiver: Receiver) -> None:
    # Given an endpoint that redirects to the metadata service
    receiver.statuses = [302]
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    answer = post(receiver.url, b"{}", {}, timeout_s=2, allow_loopback=True)
    # Then it is one request, a failure, and nothing followed it
    assert (answer.status, answer.error, answer.delivered) == (302, "redirects are not followed", False)
    assert len(receiver.received) == 1


def test_plain_http_even_in_local_mode_goes_only_to_loopback() -> None:
    with pytest.raises(CallbackRefused, match="loopback"):
        checked_target("http://hooks.example.com/x", allow_loopback=True, resolver=lambda host, port: ["93.184.216.34"])


SQS_VISIBILITY_LIMIT_S = 12 * 3600  # counted from the receive: ChangeMessageVisibility does not restart it
CALLBACK_ATTEMPTS = 12  # the callback queue's maxReceiveCount in template.yaml


def test_the_backoff_doubles_from_a_minute_and_stays_inside_sqss_twelve_hours_from_the_receive() -> None:
    waits = [retry_after_s(attempt, CALLBACK_ATTEMPTS) for attempt in range(1, CALLBACK_ATTEMPTS + 1)]
    # 1, 2, 4 ... 512 minutes, then 11 h 45 min: each wait, plus the time the record was already in flight, stays
    # inside the 12 hours SQS allows from the receive (a 12-hour wait would be refused, and come back in minutes)
    assert waits[:10] == [60 * 2**n for n in range(10)]
    assert waits[10] == MAX_BACKOFF_S == 11 * 3600 + 45 * 60
    assert all(wait + IN_FLIGHT_ALLOWANCE_S <= SQS_VISIBILITY_LIMIT_S for wait in waits)
    # and the last attempt is not held back: SQS's redrive parks it at its next receive
    assert waits[11] == 0
    # so the 12th and last attempt comes 28 h 48 min after the first (docs/ledger.md's table)
    assert sum(waits) == 28 * 3600 + 48 * 60


def test_sqs_takes_the_longest_backoff_on_a_received_message_and_refuses_twelve_hours(
    stack: InProcessStack, callback_queue: str
) -> None:
    # Given a message just received (moto, like SQS, refuses a visibility reaching past 12 hours)
    sqs = aws_client("sqs", stack.endpoint)
    sqs.send_message(QueueUrl=callback_queue, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=callback_queue, VisibilityTimeout=30)["Messages"]

    # When its visibility is set to 12 hours, and then to the longest backoff
    queue = SqsQueue(callback_queue, lambda: sqs)
    twelve_hours = queue.delay_redelivery(message["ReceiptHandle"], SQS_VISIBILITY_LIMIT_S)
    longest_backoff = queue.delay_redelivery(message["ReceiptHandle"], MAX_BACKOFF_S)

    # Then only the backoff is taken, and the message stays hidden
    assert (twelve_hours, longest_backoff) == (False, True)
    assert sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", []) == []


def test_the_attempt_that_waits_longest_is_delayed_by_sqs_not_returned_in_minutes(
    stack: InProcessStack, callback_queue: str, receiver: Receiver, emitted: Emitted
) -> None:
    # Given an endpoint that fails, and a callback on its 11th attempt of 12 (the one with the longest backoff);
    # records are confirmed with no visibility here, so that only the backoff can keep it hidden
    receiver.statuses = [503]
    stack.set_env(MAX_RECEIVE_COUNT=str(CALLBACK_ATTEMPTS), SOURCE_QUEUE_VISIBILITY_SECONDS="0")
    stack.extend.seed(["pr_late"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_late")).body["deletionRequestId"]

    # When it fails again
    result = deliver_queued(stack, callback_queue, receive_count=11)

    # Then it is returned, SQS took its backoff (no "cannot delay" warning), and it is hidden
    assert len(result["batchItemFailures"]) == 1
    warnings = [log for log in emitted.logs if log.get("message") == "cannot delay the callback's next attempt"]
    assert warnings == []
    assert status_of(request_id)["callback"]["state"] == "retrying"
    sqs = aws_client("sqs", stack.endpoint)
    assert sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_delay_sqs_refuses_is_logged_and_the_callback_is_returned_all_the_same(
    stack: InProcessStack, callback_queue: str, receiver: Receiver, emitted: Emitted
) -> None:
    # Given an endpoint that fails, and whose message is deleted from the queue while the attempt is under way, so
    # that SQS refuses the delay that follows
    receiver.statuses = [503]
    sqs = aws_client("sqs", stack.endpoint)
    receiver.on_request = lambda: sqs.delete_message(QueueUrl=callback_queue, ReceiptHandle=HANDLES[0])
    stack.extend.seed(["pr_refused"], workspace_id=WS)
    invoke(rest_event("DELETE", "/parser_runs/pr_refused"))

    # When the delivery fails
    result = deliver_queued(stack, callback_queue)

    # Then the record is returned, and the refused delay is said, with the backoff it asked for
    assert len(result["batchItemFailures"]) == 1
    [warning] = [log for log in emitted.logs if log.get("message") == "cannot delay the callback's next attempt"]
    assert warning["retry_after_s"] == 60


def test_after_the_last_attempt_the_callback_is_not_held_back_so_sqs_parks_it_at_once(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    # Given an endpoint that fails, and a callback on its last attempt (MAX_RECEIVE_COUNT is 3 here)
    receiver.statuses = [500]
    stack.extend.seed(["pr_parked"], workspace_id=WS)
    invoke(rest_event("DELETE", "/parser_runs/pr_parked"))

    # When it fails
    result = deliver_queued(stack, callback_queue, receive_count=3)

    # Then it is visible again at once: SQS's redrive moves it to the callback DLQ at the next receive, not a
    # backoff later
    assert len(result["batchItemFailures"]) == 1
    sqs = aws_client("sqs", stack.endpoint)
    assert len(sqs.receive_message(QueueUrl=callback_queue, WaitTimeSeconds=0).get("Messages", [])) == 1


# ---------------------------------------------------------------- trust boundaries


def test_a_delivered_callback_replayed_against_every_route_is_refused(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    # Given a real callback, as its receiver (or anyone who saw it) holds it: its body and its signed headers
    stack.extend.seed(["pr_cb_replay", "pr_target"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_cb_replay")).body["deletionRequestId"]
    assert deliver_queued(stack, callback_queue) == {"batchItemFailures": []}
    [delivery] = receiver.received
    signed = {name: value for name, value in delivery["headers"].items() if name.lower().startswith("webhook-")}
    body = delivery["body"].decode()

    # When it is sent to the API as a request, on every route, with its body and without one
    attempts = [
        ("POST", "/deletions", body),
        ("DELETE", "/parser_runs/pr_target", None),
        ("DELETE", "/parser_runs/pr_target", body),
        ("GET", f"/deletions/{request_id}", None),
        ("GET", f"/deletions/{request_id}", body),
    ]
    answers = [
        invoke(rest_event(method, path, body=text, headers=dict(signed), sign=False)).status
        for method, path, text in attempts
    ]

    # Then each is refused: its signature is the callbacks' key's, never a request's, and a body where none
    # belongs is refused before that; nothing reached Extend for the target, nothing was queued
    assert answers == [401, 401, 400, 401, 400]
    assert stack.extend.exists("pr_target", workspace_id=WS)
    assert [r.parser_run_id for r in stack.extend.requests] == ["pr_cb_replay"]


def test_callbacks_are_signed_with_a_key_of_their_own_never_the_tenants_request_secret(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    stack.extend.seed(["pr_cb_key"], workspace_id=WS)
    invoke(rest_event("DELETE", "/parser_runs/pr_cb_key"))
    deliver_queued(stack, callback_queue)
    [delivery] = receiver.received
    assert stack.tenant.callback_signing_secret != stack.tenant.signing_secret
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(stack.tenant.signing_secret).verify(delivery["body"], delivery["headers"])
    standardwebhooks.Webhook(stack.tenant.callback_signing_secret).verify(delivery["body"], delivery["headers"])


def test_a_callback_message_naming_another_tenants_request_is_refused_and_sends_nothing(
    stack: InProcessStack, callback_queue: str, receiver: Receiver, emitted: Emitted
) -> None:
    # Given acme's completed request, and a tenant beta whose callback goes to the same kind of endpoint
    stack.extend.seed(["pr_acme_cb"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_acme_cb")).body["deletionRequestId"]
    deliver_queued(stack, callback_queue)
    receiver.received.clear()
    stack.register_tenant("beta", api_key_ids=("b2c3d4e5f6",), workspace_id="ws_beta")
    stack.tenant_admin().set_callback("beta", receiver.url + "/beta")

    # When a callback message names acme's request with beta as its tenant
    forged = json.dumps({"deletionRequestId": request_id, "tenantId": "beta", "sequence": 9})
    aws_client("sqs", stack.endpoint).send_message(QueueUrl=callback_queue, MessageBody=forged)
    result = deliver_queued(stack, callback_queue)

    # Then nobody is told anything, acme's record is untouched, and the refusal is counted
    assert result == {"batchItemFailures": []} and receiver.received == []
    assert status_of(request_id)["callback"]["state"] == "delivered"
    assert emitted.metric_totals()["ForeignRecordRefused"] == 1


def test_an_sqs_shaped_event_handed_to_the_callback_function_directly_sends_nothing(
    stack: InProcessStack, callback_queue: str, receiver: Receiver, emitted: Emitted
) -> None:
    # Given acme's completed request, whose callback was delivered
    stack.extend.seed(["pr_direct_cb"], workspace_id=WS)
    request_id = invoke(rest_event("DELETE", "/parser_runs/pr_direct_cb")).body["deletionRequestId"]
    deliver_queued(stack, callback_queue)
    receiver.received.clear()

    # When someone allowed lambda:InvokeFunction hands the function a callback record SQS never delivered
    arn = aws_client("sqs", stack.endpoint).get_queue_attributes(QueueUrl=callback_queue, AttributeNames=["QueueArn"])
    body = json.dumps({"deletionRequestId": request_id, "tenantId": TENANT_ID, "sequence": 2})
    record = sqs_record(body, message_id="m-forged", queue_arn=arn["Attributes"]["QueueArn"])
    result = callback_function.lambda_handler(sqs_event(record), stack.context())

    # Then nothing is sent, the record is refused (returned, and counted), and the request's record is untouched
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-forged"}]}
    assert receiver.received == []
    assert status_of(request_id)["callback"]["state"] == "delivered"
    assert emitted.metric_totals()["ForeignRecordRefused"] == 1


class MisbehavingEndpoint:
    """A tenant's endpoint on a raw socket, answering in a way meant to hold a sender up or fill its memory: a status
    line and headers dripped a byte at a time (``drip``), or a 200 with a body of 200 MB (``huge``)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.bytes_sent = 0
        self.done = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._server.accept()
        with connection:
            connection.recv(65536)
            try:
                if self.behaviour == "drip":
                    # about 20 s for the headers: long past any sane deadline, short enough to end on its own
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 60 + b"\r\n\r\n":
                        connection.sendall(bytes([byte]))
                        self.bytes_sent += 1
                        time.sleep(0.25)
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 209715200\r\n\r\n")
                    chunk = b"\0" * 65536
                    while self.bytes_sent < 209_715_200:
                        connection.sendall(chunk)
                        self.bytes_sent += len(chunk)
            except OSError:  # the sender hung up
                pass
        self.done.set()

    def close(self) -> None:
        self._server.close()


def test_a_dripping_endpoint_is_a_failed_delivery_at_the_deadline_not_a_hung_function() -> None:
    endpoint = MisbehavingEndpoint("drip")
    try:
        answer = post(endpoint.url, b"{}", {}, timeout_s=1.0, allow_loopback=True)
        # cut at the deadline, long before the endpoint finished its status line: not delivered
        assert answer == DeliveryAnswer(None, "no answer within the deadline")
        assert endpoint.done.wait(30) and endpoint.bytes_sent < 20
    finally:
        endpoint.close()


def test_a_huge_answer_is_never_read_only_its_status() -> None:
    endpoint = MisbehavingEndpoint("huge")
    try:
        answer = post(endpoint.url, b"{}", {}, timeout_s=5.0, allow_loopback=True)
        assert answer == DeliveryAnswer(200)
        # the sender hung up after the headers: the endpoint could push no more than the sockets' buffers hold
        assert endpoint.done.wait(30) and endpoint.bytes_sent < 16 * 1024 * 1024
    finally:
        endpoint.close()


def test_a_dripping_tenant_endpoint_is_retried_with_backoff_never_a_function_error(
    stack: InProcessStack, callback_queue: str
) -> None:
    endpoint = MisbehavingEndpoint("drip")
    try:
        stack.tenant_admin().set_callback(TENANT_ID, endpoint.url)
        stack.set_env(CALLBACK_TIMEOUT_SECONDS="1")
        reset_functions()
        stack.extend.seed(["pr_drip"], workspace_id=WS)
        request_id = invoke(rest_event("DELETE", "/parser_runs/pr_drip")).body["deletionRequestId"]
        result = deliver_queued(stack, callback_queue)
        assert len(result["batchItemFailures"]) == 1  # returned, to come back after its backoff
        callback = status_of(request_id)["callback"]
        assert callback["state"] == "retrying" and callback["lastError"] == "no answer within the deadline"
    finally:
        endpoint.close()


def test_a_callback_is_signed_by_each_current_secret_and_never_by_an_expired_one(
    stack: InProcessStack, callback_queue: str, receiver: Receiver
) -> None:
    admin = stack.tenant_admin()
    old = stack.tenant.callback_signing_secret
    stack.set_env(TENANT_CACHE_SECONDS="0")  # each delivery reads the tenant, and its secret version, afresh
    # Given a rotation still in its overlap, then one whose overlap ended an hour ago
    during = admin.rotate_secret(TENANT_ID, overlap_s=3600, callbacks=True)
    register_secret(during)
    stack.extend.seed(["pr_cb_1", "pr_cb_2"], workspace_id=WS)
    invoke(rest_event("DELETE", "/parser_runs/pr_cb_1"))
    deliver_queued(stack, callback_queue)
    after = admin.rotate_secret(TENANT_ID, overlap_s=3600, callbacks=True, now=int(time.time()) - 3601)
    register_secret(after)
    invoke(rest_event("DELETE", "/parser_runs/pr_cb_2"))
    deliver_queued(stack, callback_queue)

    first, second = receiver.received
    # during the overlap: one signature per current secret, so a receiver holding either verifies it
    assert len(first["headers"]["webhook-signature"].split()) == 2
    for secret in (old, during):
        standardwebhooks.Webhook(secret).verify(first["body"], first["headers"])
    # after it: the expired secret signs nothing any more
    assert len(second["headers"]["webhook-signature"].split()) == 1
    standardwebhooks.Webhook(after).verify(second["body"], second["headers"])
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(during).verify(second["body"], second["headers"])
