"""``enqueue``: read ids, validate and de-duplicate them, and send them to the deletion queue, resumably.

* Ids are checked with the function's own rule (``parser_run_deleter.shared.parser_run_ids``), and messages
  are written in the function's own format (``parser_run_deleter.logic.queue_messages``), so the CLI sends
  exactly what the function accepts.
* Sending is ``SendMessageBatch`` (10 a call) from several threads. Entries SQS rejects, and whole calls that
  fail, are retried with exponential backoff and jitter; what still fails is reported with SQS's code.
* With ``--checkpoint FILE``, every id SQS acknowledged is appended to the file (flushed after each batch)
  before it counts as done; a rerun with the same file skips them. An id is only re-sent if the process died
  between SQS's answer and that write; deletion is idempotent (a second delete is ``not_found``).
"""

from __future__ import annotations

import csv
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from parser_run_deleter.logic.queue_messages import DeletionRequest
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id

SQS_BATCH_LIMIT = 10
_jitter = random.Random()  # noqa: S311 - retry jitter, not cryptography


class InputError(ValueError):
    """Bad input (file, column, checkpoint): reported as one line, exit status 2."""


class FatalQueueError(RuntimeError):
    """The queue is missing or unusable: stop every sender."""


def validate_id(value: str) -> str | None:
    """None when ``value`` is a valid parser run id, else the reason (the handler's own message)."""
    try:
        validate_parser_run_id(value)
    except InvalidParserRunId as error:
        return str(error)
    return None


@dataclass(frozen=True)
class InvalidLine:
    line: int
    value: str
    reason: str


@dataclass
class ParsedInput:
    ids: list[str] = field(default_factory=list)  # unique, first-seen order
    invalid: list[InvalidLine] = field(default_factory=list)
    duplicates: int = 0
    blank: int = 0


def read_ids(stream: TextIO, column: str | None = None) -> ParsedInput:
    """One id per line, or the named column of a CSV with a header row. Line numbers are 1-based."""
    parsed = ParsedInput()
    seen: set[str] = set()

    def take(line: int, raw: str) -> None:
        value = raw.strip()
        if not value:
            parsed.blank += 1
            return
        reason = validate_id(value)
        if reason is not None:
            parsed.invalid.append(InvalidLine(line, value if len(value) <= 60 else value[:57] + "...", reason))
        elif value in seen:
            parsed.duplicates += 1
        else:
            seen.add(value)
            parsed.ids.append(value)

    if column is None:
        for number, line in enumerate(stream, start=1):
            take(number, line)
        return parsed
    reader = csv.DictReader(stream)
    if reader.fieldnames is None or column not in reader.fieldnames:
        header = ", ".join(reader.fieldnames or []) or "(empty file)"
        raise InputError(f"column {column!r} is not in the CSV header: {header}")
    for row in reader:
        take(reader.line_num, row.get(column) or "")
    return parsed


class Checkpoint:
    """An append-only file of acknowledged ids, bound to one queue URL by its first line."""

    HEADER = "# extend-deleter enqueue checkpoint v1 queue="

    def __init__(self, path: Path, queue_url: str) -> None:
        self.path = path
        self.done: set[str] = set()
        self._lock = threading.Lock()
        if path.exists() and path.stat().st_size > 0:
            with path.open(encoding="utf-8") as existing:
                header = existing.readline().rstrip("\n")
                if not header.startswith(self.HEADER):
                    raise InputError(f"{path} is not an enqueue checkpoint")
                if header[len(self.HEADER) :] != queue_url:
                    raise InputError(f"{path} belongs to another queue: {header[len(self.HEADER) :]}")
                self.done = {line.strip() for line in existing if line.strip()}
            self._file = path.open("a", encoding="utf-8")
        else:
            self._file = path.open("w", encoding="utf-8")
            self._file.write(f"{self.HEADER}{queue_url}\n")
            self._file.flush()

    def record(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._file.write("".join(f"{value}\n" for value in ids))
            self._file.flush()  # in the OS's hands: survives the process being killed

    def close(self) -> None:
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def message_body(parser_run_id: str, audit: dict[str, str]) -> str:
    return DeletionRequest(parser_run_id=parser_run_id, audit=audit).to_message_body()


@dataclass
class SendReport:
    sent: int = 0
    retried_entries: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # id -> last error code


BatchListener = Callable[[list[str], list[tuple[str, str]]], None]


class BatchSender:
    """Sends ``(id, body)`` pairs in batches of 10 from ``threads`` threads, retrying what SQS refuses."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        *,
        threads: int = 8,
        max_attempts: int = 5,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        on_batch: BatchListener | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.threads = threads
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.on_batch = on_batch
        self.report = SendReport()
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def send(self, items: Sequence[tuple[str, str]]) -> SendReport:
        chunks = [items[i : i + SQS_BATCH_LIMIT] for i in range(0, len(items), SQS_BATCH_LIMIT)]
        executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="enqueue")
        try:
            for future in [executor.submit(self._send_chunk, chunk) for chunk in chunks]:
                future.result()
        except BaseException:
            self.stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
        return self.report

    def _backoff(self, attempt: int) -> None:
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        self.stop.wait(_jitter.uniform(delay / 2, delay))

    def _send_chunk(self, chunk: Sequence[tuple[str, str]]) -> None:
        pending = dict(chunk)
        errors: dict[str, str] = {}
        for attempt in range(1, self.max_attempts + 1):
            if self.stop.is_set():
                return
            if attempt > 1:
                with self._lock:
                    self.report.retried_entries += len(pending)
                self._backoff(attempt - 1)
            keys = list(pending)
            entries = [{"Id": str(i), "MessageBody": pending[key]} for i, key in enumerate(keys)]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "ClientError")
                if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                    self.stop.set()
                    raise FatalQueueError(f"queue does not exist: {self.queue_url}") from None
                errors = dict.fromkeys(keys, code)
                self._notify([], [(key, code) for key in keys])
                continue
            except BotoCoreError as error:
                errors = dict.fromkeys(keys, type(error).__name__)
                self._notify([], [(key, type(error).__name__) for key in keys])
                continue
            succeeded = [keys[int(entry["Id"])] for entry in response.get("Successful", [])]
            failed = [
                (keys[int(entry["Id"])], str(entry.get("Code", "Failed"))) for entry in response.get("Failed", [])
            ]
            for key in succeeded:
                pending.pop(key, None)
            errors = dict(failed)
            with self._lock:
                self.report.sent += len(succeeded)
            self._notify(succeeded, failed)
            if not pending:
                return
        with self._lock:
            self.report.failed.update({key: errors.get(key, "Failed") for key in pending})

    def _notify(self, succeeded: list[str], failed: list[tuple[str, str]]) -> None:
        if self.on_batch is not None:
            self.on_batch(succeeded, failed)


def enqueue(
    sqs: Any,
    queue_url: str,
    ids: Sequence[str],
    *,
    audit: dict[str, str] | None = None,
    checkpoint: Checkpoint | None = None,
    threads: int = 8,
    max_attempts: int = 5,
    backoff_base_s: float = 0.2,
    on_batch: BatchListener | None = None,
) -> SendReport:
    """Send ``ids`` not already in ``checkpoint``; acknowledged ones are checkpointed before ``on_batch``."""
    todo = [value for value in ids if checkpoint is None or value not in checkpoint.done]

    def listener(succeeded: list[str], failed: list[tuple[str, str]]) -> None:
        if checkpoint is not None and succeeded:
            checkpoint.record(succeeded)
        if on_batch is not None:
            on_batch(succeeded, failed)

    sender = BatchSender(
        sqs, queue_url, threads=threads, max_attempts=max_attempts, backoff_base_s=backoff_base_s, on_batch=listener
    )
    items = [(value, message_body(value, audit or {})) for value in todo]
    return sender.send(items)


def wait_time(started: float) -> float:
    return time.monotonic() - started
