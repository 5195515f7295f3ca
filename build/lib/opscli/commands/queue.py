"""The queue commands: ``enqueue`` ids for deletion, ``status`` of the queue, the ``dlq``'s messages and their
reasons, and ``redrive`` them (``--callbacks``: the completion callbacks' DLQ)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from botocore.exceptions import ClientError

from opscli import enqueue as enqueue_module
from opscli import queues
from opscli.context import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, CliError, Context, aws_error
from opscli.progress import Progress, format_duration

MAX_INVALID_SHOWN: Final = 20
# Template defaults: MaximumConcurrency 2 x ExtendMaxRequestsPerSecondPerInstance 2.
DEFAULT_RATE: Final = 4.0


def _urls(context: Context, *, need_dlq: bool = False, callbacks: bool = False) -> queues.QueueUrls:
    """The deletion queue and its DLQ (or, ``callbacks``, the callback queue and its DLQ)."""
    args = context.args
    if callbacks:
        queue = context.outputs.get("CallbackQueueUrl")
        dead = context.outputs.get("CallbackDeadLetterQueueUrl")
        if not queue or not dead:
            raise CliError(
                "the callback queues come from --stack-name (CallbackQueueUrl, CallbackDeadLetterQueueUrl)", 2
            )
        return queues.QueueUrls(queue, dead)
    queue_url = context.setting(args.queue_url, "--queue-url", "DeletionQueueUrl", "DELETION_QUEUE_URL")
    if not queue_url:
        raise CliError("no queue: pass --queue-url (or set DELETION_QUEUE_URL) or --stack-name", EXIT_BAD_INPUT)
    dlq_url = context.setting(args.dlq_url, "--dlq-url", "DeadLetterQueueUrl", "DEAD_LETTER_QUEUE_URL")
    urls = queues.QueueUrls(queue_url, dlq_url)
    if need_dlq and not urls.dead_letter_queue_url:
        urls.dead_letter_queue_url = queues.dead_letter_queue_of(context.client("sqs"), urls.queue_url)
        if not urls.dead_letter_queue_url:
            raise CliError(f"{urls.queue_url} has no redrive policy: pass --dlq-url", EXIT_BAD_INPUT)
    return urls


# ---------------------------------------------------------------------------------------------------- enqueue


def _open_input(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", EXIT_BAD_INPUT) from None


def _read_valid_ids(context: Context) -> list[str]:
    """The distinct valid ids of the input; invalid ones are listed by line and stop the job unless skipped."""
    args = context.args
    stream = _open_input(args.file)
    try:
        parsed = enqueue_module.read_ids(stream, args.column)
    except enqueue_module.InputError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not UTF-8 text", EXIT_BAD_INPUT) from None
    finally:
        if stream is not sys.stdin:
            stream.close()
    for item in parsed.invalid[:MAX_INVALID_SHOWN]:
        context.note(f"line {item.line}: {item.value!r}: {item.reason}")
    if len(parsed.invalid) > MAX_INVALID_SHOWN:
        context.note(f"... and {len(parsed.invalid) - MAX_INVALID_SHOWN} more invalid lines")
    summary = f"{len(parsed.ids):,} distinct valid ids, {parsed.duplicates:,} duplicates dropped"
    if parsed.invalid and not args.skip_invalid:
        raise CliError(
            f"{len(parsed.invalid):,} invalid ids (listed above); nothing sent. Fix them or pass --skip-invalid",
            EXIT_BAD_INPUT,
        )
    if parsed.invalid:
        summary += f", {len(parsed.invalid):,} invalid skipped"
    context.note(summary)
    if not parsed.ids:
        raise CliError("no valid ids to send", EXIT_BAD_INPUT)
    return parsed.ids


def _open_checkpoint(args: argparse.Namespace, queue_url: str) -> enqueue_module.Checkpoint | None:
    if not args.checkpoint:
        return None
    try:
        return enqueue_module.Checkpoint(Path(args.checkpoint), queue_url)
    except (enqueue_module.InputError, OSError) as error:
        raise CliError(f"checkpoint: {error}", EXIT_BAD_INPUT) from None


def cmd_enqueue(context: Context) -> int:
    args = context.args
    ids = _read_valid_ids(context)
    sqs = context.client("sqs")
    urls = _urls(context)
    queues.attributes(sqs, urls.queue_url, ["QueueArn"])
    checkpoint = _open_checkpoint(args, urls.queue_url)
    already = sum(1 for value in ids if checkpoint is not None and value in checkpoint.done)
    if already:
        context.note(f"resuming: {already:,} ids already queued according to {args.checkpoint}")
    audit = {key: value for key, value in (("requestedBy", args.requested_by), ("reason", args.reason)) if value}
    if args.dry_run:
        context.emit(
            {"dryRun": True, "wouldSend": len(ids) - already, "queueUrl": urls.queue_url},
            lambda: [f"dry run: would send {len(ids) - already:,} ids to {urls.queue_url}"],
        )
        return EXIT_OK
    progress = Progress(len(ids) - already, stream=context.err)
    interrupted = False
    try:
        with progress:
            report = enqueue_module.enqueue(
                sqs,
                urls.queue_url,
                ids,
                audit=audit,
                checkpoint=checkpoint,
                threads=args.threads,
                max_attempts=args.max_attempts,
                backoff_base_s=args.backoff,
                on_batch=lambda succeeded, _failed: progress.advance(len(succeeded)),
            )
    except KeyboardInterrupt:
        interrupted = True
    except enqueue_module.FatalQueueError as error:
        raise CliError(str(error), EXIT_INCOMPLETE) from None
    finally:
        if checkpoint is not None:
            checkpoint.close()
    if interrupted:
        hint = f"; rerun with --checkpoint {args.checkpoint} to resume" if args.checkpoint else ""
        context.note(f"interrupted after {progress.done:,} ids were queued{hint}")
        return EXIT_INTERRUPTED
    context.emit(
        {
            "queued": report.sent,
            "queueUrl": urls.queue_url,
            "skippedFromCheckpoint": already,
            "retriedEntries": report.retried_entries,
            "failed": dict(report.failed),
        },
        lambda: [
            f"queued {report.sent:,} ids to {urls.queue_url}"
            + (f" ({already:,} skipped from the checkpoint)" if already else "")
            + (f"; {report.retried_entries:,} entries retried" if report.retried_entries else "")
        ],
    )
    if report.failed:
        codes = sorted(set(report.failed.values()))
        hint = "; rerun with the same --checkpoint to send only those" if args.checkpoint else ""
        context.note(f"error: {len(report.failed):,} ids were not queued ({', '.join(codes)}){hint}")
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- status


def cmd_status(context: Context) -> int:
    urls = _urls(context, need_dlq=True)
    state = queues.status(context.client("sqs"), urls)
    rate = context.args.rate
    eta = state.eta_s(rate)
    document = {
        "queueUrl": urls.queue_url,
        "waiting": state.waiting,
        "inFlight": state.in_flight,
        "delayed": state.delayed,
        "deadLetterQueueUrl": urls.dead_letter_queue_url,
        "deadLetters": state.dead_letters,
        "etaSeconds": eta,
        "rate": rate,
    }
    context.emit(
        document,
        lambda: [
            f"deletion queue     {urls.queue_url}",
            f"  waiting          {state.waiting:>10,}",
            f"  in flight        {state.in_flight:>10,}",
            f"  delayed          {state.delayed:>10,}",
            f"dead-letter queue  {urls.dead_letter_queue_url}",
            f"  messages         {state.dead_letters or 0:>10,}",
            f"ETA at {rate:g}/s       {format_duration(eta) if eta is not None else '--'}",
        ],
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- dlq


def cmd_dlq(context: Context) -> int:
    urls = _urls(context, need_dlq=True, callbacks=context.args.callbacks)
    assert urls.dead_letter_queue_url is not None
    limit = context.args.limit
    items = queues.peek_dead_letters(context.client("sqs"), urls.dead_letter_queue_url, limit=limit)

    def text() -> list[str]:
        if not items:
            return ["the dead-letter queue is empty"]
        lines = [f"{'parser run id':<36} {'kind':<18} {'receives':>8} {'extend':>6}  reason"]
        lines += [
            f"{item.parser_run_id[:36]:<36} {item.kind[:18]:<18} {item.receive_count:>8} "
            f"{item.extend_status:>6}  {item.reason}"
            for item in items
        ]
        by_kind = ", ".join(f"{kind} {count}" for kind, count in queues.summarize(items).most_common())
        more = " (limit reached; pass --limit for more)" if len(items) >= limit else ""
        return [*lines, f"{len(items)} messages: {by_kind}{more}"]

    context.emit([vars(item) for item in items], text)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- redrive


def cmd_redrive(context: Context) -> int:
    args = context.args
    sqs = context.client("sqs")
    urls = _urls(context, need_dlq=True, callbacks=args.callbacks)
    assert urls.dead_letter_queue_url is not None
    report = None
    if args.method in ("auto", "move-task"):
        try:
            report = queues.start_move_task(sqs, urls.dead_letter_queue_url, urls.queue_url, args.rate)
        except ClientError as error:
            if args.method == "move-task":
                raise CliError(f"StartMessageMoveTask failed: {aws_error(error)}", EXIT_INCOMPLETE) from None
            context.note(f"StartMessageMoveTask unavailable ({queues.error_code(error)}); moving one batch at a time")
    if report is None:
        report = queues.redrive_loop(sqs, urls.dead_letter_queue_url, urls.queue_url, limit=args.limit)
    document = {
        "method": report.method,
        "moved": report.moved,
        "failed": report.failed,
        "taskHandle": report.task_handle,
        "from": urls.dead_letter_queue_url,
        "to": urls.queue_url,
    }
    if report.task_handle is not None:
        context.emit(document, lambda: [f"started SQS message move task {report.task_handle}; follow it with `status`"])
        return EXIT_OK
    context.emit(
        document, lambda: [f"moved {report.moved:,} messages from {urls.dead_letter_queue_url} to {urls.queue_url}"]
    )
    if report.failed:
        context.note(f"error: {report.failed:,} messages could not be sent back; they stay in the DLQ")
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- parsers


def register(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    queue = argparse.ArgumentParser(add_help=False)
    queue.add_argument("--queue-url", help="deletion queue URL (default: the stack's, else $DELETION_QUEUE_URL)")
    queue.add_argument(
        "--dlq-url",
        help="dead-letter queue URL (default: the stack's, else $DEAD_LETTER_QUEUE_URL, else the queue's redrive)",
    )
    parents = [*common, queue]

    enqueue = commands.add_parser("enqueue", parents=parents, help="queue parser run ids for deletion")
    enqueue.add_argument("file", help="file of ids, one per line, or a CSV with --column; '-' reads stdin")
    enqueue.add_argument("--column", help="CSV column holding the ids (the file then needs a header row)")
    enqueue.add_argument("--checkpoint", help="file recording queued ids; rerun with it to resume without duplicates")
    enqueue.add_argument("--skip-invalid", action="store_true", help="send the valid ids even if some are invalid")
    enqueue.add_argument("--threads", type=positive_int, default=8, help="concurrent SendMessageBatch calls (8)")
    enqueue.add_argument("--max-attempts", type=positive_int, default=5, help="attempts per entry (5)")
    enqueue.add_argument("--backoff", type=float, default=0.2, help="first retry delay in seconds (0.2), doubling")
    enqueue.add_argument("--requested-by", help="audit field carried in each message and logged by the function")
    enqueue.add_argument("--reason", help="audit field carried in each message and logged by the function")
    enqueue.add_argument("--dry-run", action="store_true", help="validate and count, send nothing")
    enqueue.set_defaults(run=cmd_enqueue)

    status = commands.add_parser("status", parents=parents, help="queue depth, in flight, DLQ depth and ETA")
    status.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULT_RATE,
        help=f"deletions per second the stack sustains, for the ETA ({DEFAULT_RATE:g})",
    )
    status.set_defaults(run=cmd_status)

    dlq = commands.add_parser("dlq", parents=parents, help="list dead-lettered messages with their reasons")
    dlq.add_argument("--limit", type=positive_int, default=100, help="most messages to show (100)")
    dlq.add_argument("--callbacks", action="store_true", help="the completion callbacks' DLQ (with --stack-name)")
    dlq.set_defaults(run=cmd_dlq)

    redrive = commands.add_parser("redrive", parents=parents, help="move DLQ messages back to their queue")
    redrive.add_argument(
        "--method",
        choices=["auto", "move-task", "loop"],
        default="auto",
        help="StartMessageMoveTask, or a receive-send-delete loop (auto: the task, else the loop)",
    )
    redrive.add_argument("--rate", type=positive_int, help="messages per second for the move task")
    redrive.add_argument("--limit", type=positive_int, help="most messages the loop moves")
    redrive.add_argument(
        "--callbacks", action="store_true", help="parked completion callbacks, back to the callback queue"
    )
    redrive.set_defaults(run=cmd_redrive)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value
