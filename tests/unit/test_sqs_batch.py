"""The partial batch response contract that replaced Powertools' BatchProcessor on the SQS path."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.events import sqs_event, sqs_record
from parser_run_deleter.intake.sqs_batch import RecordNotDone, SqsRecord, process_partial_batch
from tests.support.stacks import Emitted


@pytest.mark.parametrize("workers", [None, 4])
def test_raised_records_come_back_and_the_others_are_consumed(workers: int | None, emitted: Emitted) -> None:
    event = sqs_event(*(sqs_record(body, message_id=f"m-{body}") for body in ("ok", "not-done", "bug", "ok2")))
    seen: list[str] = []

    def record_handler(record: SqsRecord) -> None:
        seen.append(record.body)
        if record.body == "not-done":
            raise RecordNotDone("retry me")
        if record.body == "bug":
            raise KeyError("sk_should_never_be_logged")

    executor = ThreadPoolExecutor(max_workers=workers) if workers else None
    response = process_partial_batch(event, record_handler, executor=executor)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-not-done"}, {"itemIdentifier": "m-bug"}]}
    assert sorted(seen) == ["bug", "not-done", "ok", "ok2"]
    [line] = [log for log in emitted.logs if log.get("message") == "record handler failed unexpectedly"]
    assert line["error_type"] == "KeyError"
    assert "sk_should_never_be_logged" not in emitted.text


def test_an_all_failed_batch_is_still_a_partial_response() -> None:
    event = sqs_event(sqs_record("a", message_id="m-a"), sqs_record("b", message_id="m-b"))

    def record_handler(record: SqsRecord) -> None:
        raise RecordNotDone("down")

    assert process_partial_batch(event, record_handler) == {
        "batchItemFailures": [{"itemIdentifier": "m-a"}, {"itemIdentifier": "m-b"}]
    }


def test_record_fields_follow_the_lambda_event() -> None:
    record = sqs_record('{"parserRunId": "x"}', message_id="m-1", receive_count=4)
    parsed = SqsRecord.from_event(record)
    assert (parsed.message_id, parsed.body, parsed.approximate_receive_count) == ("m-1", record["body"], 4)
    del record["attributes"]
    assert SqsRecord.from_event(record).approximate_receive_count == 1


def test_a_record_still_running_when_the_wait_ends_comes_back_and_the_batch_is_answered(emitted: Emitted) -> None:
    # Given a batch whose second record's handler hangs (a downstream call that does not answer)
    event = sqs_event(*(sqs_record(body, message_id=f"m-{body}") for body in ("quick", "hangs", "quick2")))
    release = threading.Event()

    def record_handler(record: SqsRecord) -> None:
        if record.body == "hangs":
            release.wait(timeout=30)

    # When the batch may wait 0.2 s for its records
    with ThreadPoolExecutor(max_workers=3) as executor:
        response = process_partial_batch(event, record_handler, executor=executor, wait_s=0.2)
        release.set()

    # Then the batch is answered with the hanging record returned, the others consumed, and the reason logged
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-hangs"}]}
    [line] = [log for log in emitted.logs if "still running" in str(log.get("message"))]
    assert line["message_id"] == "m-hangs"
