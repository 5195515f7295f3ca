"""Lambda's SQS event source on a local queue: poll, batch, invoke, delete what succeeded.

Up to ``ScalingConfig.MaximumConcurrency`` pollers long-poll the queue (``AttributeNames`` and
``MessageAttributeNames`` All), fill a batch up to ``BatchSize`` within ``MaximumBatchingWindowInSeconds``,
build the event as Lambda does (``devstack.events``), invoke, then delete the messages not named in
``batchItemFailures``. Failed messages are left alone: they reappear after the visibility timeout and SQS
(moto) moves them to the DLQ after ``maxReceiveCount``. An invocation error (raised, crashed, timed out) or an
invalid ``batchItemFailures`` keeps the whole batch.

Not emulated: Lambda's poller scale-up curve (the pollers start at the maximum).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from devstack.events import record_from_sqs_message
from devstack.functions import FunctionPool


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
