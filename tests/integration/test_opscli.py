"""The operator CLI against moto's server: validation, de-duplication, resume, partial-failure retry, status,
the DLQ listing and redrive."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from devstack.moto_stack import QueuePair, aws_client, create_queues
from opscli import enqueue as enqueue_module
from opscli.cli import main
from tests.support.aws_fault_proxy import AwsFaultProxy
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queues(moto_endpoint: str) -> QueuePair:
    return create_queues(moto_endpoint, max_receive_count=3)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def queued_ids(endpoint: str, queue_url: str) -> Counter[str]:
    """Every message body's parserRunId, draining the queue."""
    sqs = aws_client("sqs", endpoint)
    found: Counter[str] = Counter()
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=43200).get(
        "Messages"
    ):
        found.update(json.loads(message["Body"])["parserRunId"] for message in batch)
    return found


def test_invalid_ids_are_reported_with_line_numbers_and_nothing_is_sent(
    moto_endpoint: str, queues: QueuePair, tmp_path: Path
) -> None:
    # Given a file with two invalid ids among valid ones
    ids = tmp_path / "ids.txt"
    ids.write_text("pr_ok_1\n\npr ok 2\npr_ok_3\n" + "x" * 256 + "\n", encoding="utf-8")

    # When it is enqueued
    status, _, err = run("enqueue", str(ids), "--queue-url", queues.queue_url)

    # Then the invalid lines are named with their numbers and reasons, and nothing was queued
    assert status == 2
    assert "line 3: 'pr ok 2': parserRunId may contain only letters" in err
    assert "line 5: " in err and "at most 255 characters" in err
    assert err.strip().splitlines()[-1].startswith("error: 2 invalid ids")
    assert queued_ids(moto_endpoint, queues.queue_url) == Counter()

    # and with --skip-invalid the valid ones are sent
    status, out, _ = run("enqueue", str(ids), "--queue-url", queues.queue_url, "--skip-invalid")
    assert status == 0 and "queued 2 ids" in out
    assert queued_ids(moto_endpoint, queues.queue_url) == Counter({"pr_ok_1": 1, "pr_ok_3": 1})


def test_csv_column_is_deduplicated_and_carries_audit_fields(
    moto_endpoint: str, queues: QueuePair, tmp_path: Path
) -> None:
    # Given a CSV export naming some runs twice
    rows = ["customer,parser_run_id"] + [f"acme,pr_{n % 30}" for n in range(45)]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")

    # When its column is enqueued
    status, out, err = run(
        "enqueue",
        str(export),
        "--column",
        "parser_run_id",
        "--queue-url",
        queues.queue_url,
        "--requested-by",
        "ops@example.com",
        "--reason",
        "ticket-42",
    )

    # Then each distinct id is queued exactly once, with the audit fields in its message
    assert status == 0, err
    assert "30 distinct valid ids, 15 duplicates dropped" in err
    assert "queued 30 ids" in out
    sqs = aws_client("sqs", moto_endpoint)
    message = sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=1)["Messages"][0]
    assert json.loads(message["Body"])["requestedBy"] == "ops@example.com"
    sqs.change_message_visibility(
        QueueUrl=queues.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    assert queued_ids(moto_endpoint, queues.queue_url) == Counter({f"pr_{n}": 1 for n in range(30)})
    # and a missing column is a one-line error
    status, _, err = run("enqueue", str(export), "--column", "id", "--queue-url", queues.queue_url)
    assert status == 2 and err == "error: column 'id' is not in the CSV header: customer, parser_run_id\n"


REFUSED = (400, "com.amazonaws.sqs#InvalidParameterValue", "refused by the test's proxy")


def test_an_interrupted_enqueue_resumes_from_its_checkpoint_without_double_queueing(
    moto_endpoint: str, queues: QueuePair, tmp_path: Path
) -> None:
    # Given a large file being enqueued by the CLI in its own process, one batch at a time
    ids = [f"pr_resume_{n:05d}" for n in range(400)]
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids) + "\n", encoding="utf-8")
    checkpoint = tmp_path / "job.checkpoint"
    command = [
        sys.executable,
        "-m",
        "opscli",
        "enqueue",
        str(source),
        "--queue-url",
        queues.queue_url,
        "--checkpoint",
        str(checkpoint),
        "--threads",
        "1",
    ]
    with AwsFaultProxy(moto_endpoint) as proxy:
        # the fifth batch is held at SQS's door: the CLI is caught mid-way, however fast the machine
        gate = proxy.hold("SendMessageBatch", after=4)
        # the function's package from this tree's handler/ (as the Lambda zip has it), whatever is installed
        search_path = os.pathsep.join([str(REPO_ROOT / "handler"), str(REPO_ROOT)])
        env = {**os.environ, "PYTHONPATH": search_path, "AWS_ENDPOINT_URL": proxy.url}
        first = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        # When it is interrupted (Ctrl-C) part-way, with four batches sent and the fifth in flight, which SQS then
        # refuses (as every later one): nothing more is sent, however soon the CLI notices the interrupt
        wait_until(lambda: proxy.calls["SendMessageBatch"] == 5 or first.poll() is not None, timeout_s=60)
        assert first.poll() is None, first.communicate()[1]
        first.send_signal(signal.SIGINT)
        gate.refuse(REFUSED)
        _, first_err = first.communicate(timeout=30)
    assert first.returncode == 130
    assert "rerun with --checkpoint" in first_err
    done_before = len(checkpoint.read_text().splitlines()) - 1
    assert done_before == 40  # the four batches SQS took, and none of the refused one

    # and run again with the same checkpoint
    second = subprocess.run(
        [*command[:-2], "--threads", "4"],
        check=False,
        cwd=REPO_ROOT,
        env={**env, "AWS_ENDPOINT_URL": moto_endpoint},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it sent only the rest, and every id is in the queue exactly once
    assert second.returncode == 0, second.stderr
    assert f"resuming: {done_before:,} ids already queued" in second.stderr
    assert f"queued {len(ids) - done_before:,} ids" in second.stdout
    found = queued_ids(moto_endpoint, queues.queue_url)
    assert set(found) == set(ids)
    assert max(found.values()) == 1


def test_a_checkpoint_from_another_queue_is_refused(queues: QueuePair, tmp_path: Path) -> None:
    checkpoint = tmp_path / "job.checkpoint"
    checkpoint.write_text(enqueue_module.Checkpoint.HEADER + "http://elsewhere/queue\npr_1\n", encoding="utf-8")
    source = tmp_path / "ids.txt"
    source.write_text("pr_1\n", encoding="utf-8")
    status, _, err = run("enqueue", str(source), "--queue-url", queues.queue_url, "--checkpoint", str(checkpoint))
    assert status == 2 and err.splitlines()[-1].startswith("error: checkpoint: ") and "another queue" in err


def delay_seconds(moto_endpoint: str, queue_url: str, value: int) -> None:
    """moto fails each entry of a batch (SenderFault, per entry) while the queue's delay is above 900 s."""
    aws_client("sqs", moto_endpoint).set_queue_attributes(QueueUrl=queue_url, Attributes={"DelaySeconds": str(value)})


def test_entries_sqs_rejects_are_retried_until_accepted(moto_endpoint: str, queues: QueuePair, tmp_path: Path) -> None:
    # Given a queue that rejects every entry of a batch
    delay_seconds(moto_endpoint, queues.queue_url, 901)
    ids = [f"pr_retry_{n}" for n in range(25)]
    failures: list[tuple[str, str]] = []
    checkpoint = enqueue_module.Checkpoint(tmp_path / "c", queues.queue_url)

    def on_batch(succeeded: list[str], failed: list[tuple[str, str]]) -> None:
        # ... until the first rejection has been seen
        failures.extend(failed)
        if failed:
            delay_seconds(moto_endpoint, queues.queue_url, 0)

    # When the ids are enqueued
    report = enqueue_module.enqueue(
        aws_client("sqs", moto_endpoint),
        queues.queue_url,
        ids,
        checkpoint=checkpoint,
        threads=1,
        backoff_base_s=0.01,
        on_batch=on_batch,
    )
    checkpoint.close()

    # Then the rejected entries were retried, and every id is queued exactly once and checkpointed
    assert failures and all(code == "InvalidParameterValue" for _, code in failures)
    assert report.retried_entries >= len(failures) and report.failed == {}
    assert report.sent == len(ids)
    assert queued_ids(moto_endpoint, queues.queue_url) == Counter(dict.fromkeys(ids, 1))
    assert sorted((tmp_path / "c").read_text().splitlines()[1:]) == sorted(ids)


def test_entries_still_rejected_are_reported_and_left_for_a_rerun(
    moto_endpoint: str, queues: QueuePair, tmp_path: Path
) -> None:
    # Given a queue that keeps rejecting entries
    delay_seconds(moto_endpoint, queues.queue_url, 901)
    source = tmp_path / "ids.txt"
    source.write_text("".join(f"pr_{n}\n" for n in range(12)), encoding="utf-8")
    checkpoint = tmp_path / "c"
    args = ("enqueue", str(source), "--queue-url", queues.queue_url, "--checkpoint", str(checkpoint))

    # When enqueue gives up after its attempts
    status, _, err = run(*args, "--max-attempts", "2", "--backoff", "0.01")

    # Then it exits 1 naming SQS's code, and nothing is checkpointed
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        "error: 12 ids were not queued (InvalidParameterValue); rerun with the same --checkpoint to send only those"
    )
    assert checkpoint.read_text().splitlines()[1:] == []
    # and once the queue is fixed, a rerun sends them all
    delay_seconds(moto_endpoint, queues.queue_url, 0)
    assert run(*args)[0] == 0
    assert queued_ids(moto_endpoint, queues.queue_url) == Counter({f"pr_{n}": 1 for n in range(12)})


def dead_letter(moto_endpoint: str, queue_url: str, body: str, **attributes: str) -> None:
    aws_client("sqs", moto_endpoint).send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    )


def test_status_shows_depths_and_an_eta(moto_endpoint: str, queues: QueuePair) -> None:
    # Given 8 waiting messages, 2 in flight and 1 dead letter
    sqs = aws_client("sqs", moto_endpoint)
    for n in range(10):
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=json.dumps({"parserRunId": f"pr_{n}"}))
    sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=2, VisibilityTimeout=60)
    dead_letter(moto_endpoint, queues.dead_letter_queue_url, "pr_x")

    # When status is asked for with a rate of 2/s, the DLQ found through the redrive policy
    status, out, _ = run("status", "--queue-url", queues.queue_url, "--rate", "2")

    # Then it shows each figure and the time to work through the backlog
    assert status == 0
    lines = dict(
        line.split(None, 1) if not line.startswith(" ") else line.strip().rsplit(None, 1)
        for line in out.splitlines()
        if line.strip() and not line.startswith(("deletion", "dead", "ETA"))
    )
    assert lines == {"waiting": "8", "in flight": "2", "delayed": "0", "messages": "1"}
    assert f"dead-letter queue  {queues.dead_letter_queue_url}" in out
    assert out.splitlines()[-1] == "ETA at 2/s       0:05"


def test_dlq_lists_reasons_and_redrive_moves_them_back(moto_endpoint: str, queues: QueuePair) -> None:
    # Given a message the function dead-lettered with its reason, and one SQS redrove without one
    dead_letter(
        moto_endpoint,
        queues.dead_letter_queue_url,
        '{"parserRunId": "pr_forbidden"}',
        FailureKind="permanent",
        FailureReason="Extend answered 403 FORBIDDEN",
        ApproximateReceiveCount="3",
        ParserRunId="pr_forbidden",
        ExtendStatusCode="403",
    )
    dead_letter(moto_endpoint, queues.dead_letter_queue_url, '{"parserRunId": "pr_crashed"}')

    # When the DLQ is listed
    status, out, _ = run("dlq", "--queue-url", queues.queue_url)

    # Then each message shows its run, kind, receive count and reason, and the listing did not consume them
    assert status == 0
    forbidden = next(line for line in out.splitlines() if line.startswith("pr_forbidden"))
    assert forbidden.split()[:4] == ["pr_forbidden", "permanent", "3", "403"]
    assert forbidden.endswith("Extend answered 403 FORBIDDEN")
    assert "pr_crashed" in out and "no reason recorded" in out
    assert out.splitlines()[-1] == "2 messages: permanent 1, redriven 1"

    # and redrive (the loop: moto has no StartMessageMoveTask) moves both back, without the failure attributes
    status, out, _ = run("redrive", "--queue-url", queues.queue_url, "--method", "loop")
    assert status == 0 and out.startswith("moved 2 messages")
    sqs = aws_client("sqs", moto_endpoint)
    moved = sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    assert sorted(json.loads(m["Body"])["parserRunId"] for m in moved["Messages"]) == ["pr_crashed", "pr_forbidden"]
    assert all("MessageAttributes" not in m for m in moved["Messages"])
    assert run("dlq", "--queue-url", queues.queue_url)[1] == "the dead-letter queue is empty\n"


@pytest.mark.parametrize(
    ("argv", "expected_status", "message"),
    [
        (["status"], 2, "error: no queue: pass --queue-url (or set DELETION_QUEUE_URL) or --stack-name\n"),
        (
            ["status", "--queue-url", "{endpoint}/123456789012/missing"],
            1,
            "error: queue does not exist: {endpoint}/123456789012/missing\n",
        ),
        (
            ["enqueue", "/nonexistent/ids.txt", "--queue-url", "q"],
            2,
            "error: cannot read /nonexistent/ids.txt: No such file or directory\n",
        ),
    ],
)
def test_bad_input_and_missing_queues_are_one_line_errors(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, argv: list[str], expected_status: int, message: str
) -> None:
    monkeypatch.delenv("DELETION_QUEUE_URL", raising=False)
    status, out, err = run(*[arg.format(endpoint=moto_endpoint) for arg in argv])
    assert (status, out, err) == (expected_status, "", message.format(endpoint=moto_endpoint))


def test_redrive_prefers_the_move_task_and_falls_back_where_it_is_missing(
    moto_endpoint: str, queues: QueuePair
) -> None:
    # Given a dead letter, and moto, which does not implement StartMessageMoveTask
    dead_letter(moto_endpoint, queues.dead_letter_queue_url, '{"parserRunId": "pr_1"}')
    # When redrive runs with the default method
    status, out, err = run("redrive", "--queue-url", queues.queue_url)
    # Then it says the task is unavailable and moves the message with the loop instead
    assert status == 0, err
    assert err.startswith("StartMessageMoveTask unavailable")
    assert out.startswith("moved 1 messages")


def test_redrive_callbacks_moves_the_callback_dlq_back_to_the_callback_queue_and_leaves_the_deletion_queues(
    moto_endpoint: str, queues: QueuePair
) -> None:
    # Given a stack whose outputs name its callback queue and callback DLQ, with a parked callback
    callbacks = create_queues(moto_endpoint, max_receive_count=12)
    outputs = {
        "DeletionQueueUrl": queues.queue_url,
        "DeadLetterQueueUrl": queues.dead_letter_queue_url,
        "CallbackQueueUrl": callbacks.queue_url,
        "CallbackDeadLetterQueueUrl": callbacks.dead_letter_queue_url,
    }
    document = {"Resources": {}, "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    stack_name = f"callbacks-{Path(callbacks.queue_url).name}"
    aws_client("cloudformation", moto_endpoint).create_stack(StackName=stack_name, TemplateBody=json.dumps(document))
    dead_letter(moto_endpoint, callbacks.dead_letter_queue_url, '{"deletionRequestId": "dr_parked"}')
    dead_letter(moto_endpoint, queues.dead_letter_queue_url, '{"parserRunId": "pr_stays"}')

    # When the callback DLQ is redriven
    status, out, err = run("redrive", "--callbacks", "--method", "loop", "--stack-name", stack_name, "--json")

    # Then the parked callback is back on the callback queue, and the deletion DLQ is untouched
    assert status == 0, err
    assert json.loads(out)["moved"] == 1
    sqs = aws_client("sqs", moto_endpoint)
    [moved] = sqs.receive_message(QueueUrl=callbacks.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(moved["Body"]) == {"deletionRequestId": "dr_parked"}
    depth = sqs.get_queue_attributes(QueueUrl=queues.dead_letter_queue_url, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "1"
