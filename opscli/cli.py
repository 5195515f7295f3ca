"""``python -m opscli``: the operator's commands for bulk deletions.

Exit status: 0 done; 1 the job ran but something was not done (ids not queued, messages not moved) or a queue
is missing; 2 bad input (file, column, invalid ids, checkpoint); 130 interrupted. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opscli import enqueue as enqueue_module
from opscli import queues
from opscli import receipts as receipts_module
from opscli import tenants as tenants_module
from opscli.progress import Progress, format_duration
from parser_run_deleter.adapters.ledger_table import LedgerTable, LedgerUnavailable
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.tenants import InvalidTenant, Tenant, TenantLimits, TenantStatus
from parser_run_deleter.shared.timestamps import iso, parse_iso

EXIT_OK, EXIT_INCOMPLETE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_INVALID_SHOWN = 20
# Template defaults: MaximumConcurrency 2 x ExtendMaxRequestsPerSecondPerInstance 2.
DEFAULT_RATE = 4.0


class CliError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _client(service: str, args: argparse.Namespace) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(10, getattr(args, "threads", 8) + 2)
    )
    factory: Any = boto3.client  # the service name is a plain str here, not one of the stubs' literals
    return factory(service, region_name=args.region, config=config)


def _urls(args: argparse.Namespace, sqs: Any, *, need_dlq: bool = False) -> queues.QueueUrls:
    outputs = _stack_outputs(args) if args.stack_name else {}
    queue_url = setting(args.queue_url, "--queue-url", outputs, "DeletionQueueUrl", "DELETION_QUEUE_URL")
    if not queue_url:
        raise CliError("no queue: pass --queue-url (or set DELETION_QUEUE_URL) or --stack-name", EXIT_BAD_INPUT)
    dlq_url = setting(args.dlq_url, "--dlq-url", outputs, "DeadLetterQueueUrl", "DEAD_LETTER_QUEUE_URL")
    urls = queues.QueueUrls(queue_url, dlq_url)
    if need_dlq and not urls.dead_letter_queue_url:
        urls.dead_letter_queue_url = queues.dead_letter_queue_of(sqs, urls.queue_url)
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


def _read_valid_ids(args: argparse.Namespace, err: TextIO) -> list[str]:
    """The distinct valid ids of the input; invalid ones are listed by line and stop the job unless skipped."""
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
        err.write(f"line {item.line}: {item.value!r}: {item.reason}\n")
    if len(parsed.invalid) > MAX_INVALID_SHOWN:
        err.write(f"... and {len(parsed.invalid) - MAX_INVALID_SHOWN} more invalid lines\n")
    summary = f"{len(parsed.ids):,} distinct valid ids, {parsed.duplicates:,} duplicates dropped"
    if parsed.invalid and not args.skip_invalid:
        raise CliError(
            f"{len(parsed.invalid):,} invalid ids (listed above); nothing sent. Fix them or pass --skip-invalid",
            EXIT_BAD_INPUT,
        )
    if parsed.invalid:
        summary += f", {len(parsed.invalid):,} invalid skipped"
    err.write(summary + "\n")
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


def cmd_enqueue(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ids = _read_valid_ids(args, err)
    sqs = _client("sqs", args)
    urls = _urls(args, sqs)
    queues.attributes(sqs, urls.queue_url, ["QueueArn"])
    checkpoint = _open_checkpoint(args, urls.queue_url)
    already = sum(1 for value in ids if checkpoint is not None and value in checkpoint.done)
    if already:
        err.write(f"resuming: {already:,} ids already queued according to {args.checkpoint}\n")
    audit = {key: value for key, value in (("requestedBy", args.requested_by), ("reason", args.reason)) if value}
    if args.dry_run:
        out.write(f"dry run: would send {len(ids) - already:,} ids to {urls.queue_url}\n")
        return EXIT_OK
    progress = Progress(len(ids) - already, stream=err)
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
        err.write(f"interrupted after {progress.done:,} ids were queued{hint}\n")
        return EXIT_INTERRUPTED
    out.write(
        f"queued {report.sent:,} ids to {urls.queue_url}"
        + (f" ({already:,} skipped from the checkpoint)" if already else "")
        + (f"; {report.retried_entries:,} entries retried" if report.retried_entries else "")
        + "\n"
    )
    if report.failed:
        codes = sorted(set(report.failed.values()))
        hint = "; rerun with the same --checkpoint to send only those" if args.checkpoint else ""
        err.write(f"error: {len(report.failed):,} ids were not queued ({', '.join(codes)}){hint}\n")
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sqs = _client("sqs", args)
    urls = _urls(args, sqs, need_dlq=True)
    state = queues.status(sqs, urls)
    eta = state.eta_s(args.rate)
    lines = [
        f"deletion queue     {urls.queue_url}",
        f"  waiting          {state.waiting:>10,}",
        f"  in flight        {state.in_flight:>10,}",
        f"  delayed          {state.delayed:>10,}",
        f"dead-letter queue  {urls.dead_letter_queue_url}",
        f"  messages         {state.dead_letters or 0:>10,}",
        f"ETA at {args.rate:g}/s       {format_duration(eta) if eta is not None else '--'}",
    ]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- dlq


def cmd_dlq(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sqs = _client("sqs", args)
    urls = _urls(args, sqs, need_dlq=True)
    assert urls.dead_letter_queue_url is not None
    items = queues.peek_dead_letters(sqs, urls.dead_letter_queue_url, limit=args.limit)
    if not items:
        out.write("the dead-letter queue is empty\n")
        return EXIT_OK
    out.write(f"{'parser run id':<36} {'kind':<18} {'receives':>8} {'extend':>6}  reason\n")
    for item in items:
        out.write(
            f"{item.parser_run_id[:36]:<36} {item.kind[:18]:<18} {item.receive_count:>8} "
            f"{item.extend_status:>6}  {item.reason}\n"
        )
    by_kind = ", ".join(f"{kind} {count}" for kind, count in queues.summarize(items).most_common())
    more = " (limit reached; pass --limit for more)" if len(items) >= args.limit else ""
    out.write(f"{len(items)} messages: {by_kind}{more}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- redrive


def cmd_redrive(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sqs = _client("sqs", args)
    urls = _urls(args, sqs, need_dlq=True)
    assert urls.dead_letter_queue_url is not None
    report = None
    if args.method in ("auto", "move-task"):
        try:
            report = queues.start_move_task(sqs, urls.dead_letter_queue_url, urls.queue_url, args.rate)
        except ClientError as error:
            if args.method == "move-task":
                raise CliError(f"StartMessageMoveTask failed: {queues.error_code(error)}", EXIT_INCOMPLETE) from None
            err.write(
                f"StartMessageMoveTask unavailable ({queues.error_code(error)}); moving messages one batch at a time\n"
            )
    if report is None:
        report = queues.redrive_loop(sqs, urls.dead_letter_queue_url, urls.queue_url, limit=args.limit)
    if report.task_handle is not None:
        out.write(f"started SQS message move task {report.task_handle}; follow it with `status`\n")
        return EXIT_OK
    out.write(f"moved {report.moved:,} messages from {urls.dead_letter_queue_url} to {urls.queue_url}\n")
    if report.failed:
        err.write(f"error: {report.failed:,} messages could not be sent back; they stay in the DLQ\n")
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- tenants


def _stack_outputs(args: argparse.Namespace) -> dict[str, str]:
    try:
        stacks = _client("cloudformation", args).describe_stacks(StackName=args.stack_name)["Stacks"]
    except ClientError as error:
        raise CliError(f"cannot read stack {args.stack_name!r}: {queues.error_code(error)}", EXIT_BAD_INPUT) from None
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


def setting(flag: str | None, flag_name: str, outputs: dict[str, str], output_key: str, env_name: str) -> str | None:
    """One setting, from the first of: the explicit flag, the stack's output, the environment variable. A stack
    output and an environment variable that disagree are an error naming both: acting on the wrong stack is worse
    than stopping."""
    if flag:
        return flag
    from_stack, from_env = outputs.get(output_key), os.environ.get(env_name) or None
    if from_stack and from_env and from_stack != from_env:
        raise CliError(
            f"the stack's output {output_key} ({from_stack}) and ${env_name} ({from_env}) disagree: unset "
            f"{env_name}, or pass {flag_name} to choose",
            EXIT_BAD_INPUT,
        )
    return from_stack or from_env


def _protection(outputs: dict[str, str]) -> tenants_module.SecretProtection | None:
    """How a deployed stack keeps its tenants' secrets, from its outputs; None without a stack (local use)."""
    roles = [outputs.get(key) for key in ("OperatorRoleArn", "ApiFunctionRoleArn", "CallbackFunctionRoleArn")]
    if not all(roles):
        return None
    operator, api, callback = (str(role) for role in roles)
    return tenants_module.SecretProtection(outputs.get("DataKeyArn") or None, operator, api, callback)


def _tenant_admin(args: argparse.Namespace) -> tuple[tenants_module.TenantAdmin, dict[str, str]]:
    outputs = _stack_outputs(args) if args.stack_name else {}
    table_name = setting(args.table, "--table", outputs, "TenantsTableName", "TENANTS_TABLE_NAME")
    prefix = setting(args.secret_prefix, "--secret-prefix", outputs, "TenantSecretPrefix", "TENANT_SECRET_PREFIX")
    if not table_name or not prefix:
        raise CliError(
            "no tenant registry: pass --table and --secret-prefix (or set TENANTS_TABLE_NAME and "
            "TENANT_SECRET_PREFIX), or --stack-name",
            EXIT_BAD_INPUT,
        )
    admin = tenants_module.TenantAdmin(
        TenantTable(table_name, _client("dynamodb", args)),
        _client("secretsmanager", args),
        prefix,
        _client("apigateway", args),
        _protection(outputs),
    )
    return admin, outputs


def _tenant_document(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenantId": tenant.tenant_id,
        "status": tenant.status.value,
        "ownership": tenant.ownership.value,
        "apiKeyIds": list(tenant.api_key_ids),
        "workspaceId": tenant.workspace_id,
        "metadataKey": tenant.metadata_key,
        "rateLimit": tenant.limits.rate_limit,
        "burstLimit": tenant.limits.burst_limit,
        "dailyQuota": tenant.limits.daily_quota,
        "maxOutstanding": tenant.limits.max_outstanding,
        "usagePlanId": tenant.usage_plan_id,
        "callbackUrl": tenant.callback_url,
    }


def _write_tenant(out: TextIO, tenant: Tenant, as_json: bool) -> None:
    document = _tenant_document(tenant)
    if as_json:
        out.write(json.dumps(document) + "\n")
        return
    for name, value in document.items():
        if value not in (None, []):
            out.write(f"{name:<12} {', '.join(value) if isinstance(value, list) else value}\n")


def _stage(args: argparse.Namespace, outputs: dict[str, str]) -> tenants_module.StageApi:
    missing = [name for name in ("RestApiId", "StageName", "StageThrottle") if name not in outputs]
    if missing:
        raise CliError(f"--create-api-key needs --stack-name with the outputs {', '.join(missing)}", EXIT_BAD_INPUT)
    rate, _, burst = outputs["StageThrottle"].partition("/")
    return tenants_module.StageApi(outputs["RestApiId"], outputs["StageName"], float(rate), int(burst))


def _ledger(args: argparse.Namespace, outputs: dict[str, str]) -> Ledger | None:
    """The ledger, named by --ledger-table, $LEDGER_TABLE_NAME or the stack's LedgerTableName output."""
    table_name = setting(
        getattr(args, "ledger_table", None), "--ledger-table", outputs, "LedgerTableName", "LEDGER_TABLE_NAME"
    )
    if not table_name:
        return None
    return Ledger(LedgerTable(table_name, retention_days=400, client=_client("dynamodb", args)))


def _usage(ledger: Ledger | None, tenant: Tenant) -> dict[str, Any]:
    """The tenant's outstanding runs, its cap, and how old its oldest outstanding request is."""
    if ledger is None:
        return {}
    oldest = ledger.oldest_outstanding(tenant.tenant_id)
    return {
        "outstanding": ledger.outstanding(tenant.tenant_id),
        "oldestOutstandingSince": oldest.created_at if oldest else None,
        "oldestOutstandingAgeSeconds": round(time.time() - parse_iso(oldest.created_at)) if oldest else None,
    }


def cmd_tenants(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    admin, outputs = _tenant_admin(args)
    try:
        return _run_tenant_command(args, admin, outputs, out, err)
    except (tenants_module.TenantError, InvalidTenant) as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    except LedgerUnavailable as error:
        raise CliError(str(error), EXIT_INCOMPLETE) from None


def cmd_receipts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    outputs = _stack_outputs(args) if args.stack_name else {}
    ledger = _ledger(args, outputs)
    if ledger is None:
        raise CliError("no ledger: pass --ledger-table (or set LEDGER_TABLE_NAME), or --stack-name", EXIT_BAD_INPUT)
    since = ""
    if args.since:
        try:
            since = iso(parse_iso(args.since if "T" in args.since else args.since + "T00:00:00Z"))
        except ValueError:
            raise CliError(f"--since must be a date (2026-01-31) or an ISO 8601 time, got {args.since!r}", 2) from None
    try:
        receipts_module.export(
            ledger, None if args.operator else args.tenant, out, err, since=since, output_format=args.format
        )
    except LedgerUnavailable as error:
        raise CliError(str(error), EXIT_INCOMPLETE) from None
    except BrokenPipeError:  # the reader stopped early (`| head`): what it read is what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush from failing again
    return EXIT_OK


def _run_tenant_command(
    args: argparse.Namespace, admin: tenants_module.TenantAdmin, outputs: dict[str, str], out: TextIO, err: TextIO
) -> int:
    if args.action == "add":
        return _add_tenant(args, admin, outputs, out, err)
    if args.action == "list":
        listed = admin.list()
        if args.json:
            out.write(json.dumps([_tenant_document(tenant) for tenant in listed]) + "\n")
        else:
            for tenant in listed:
                out.write(
                    f"{tenant.tenant_id:<24} {tenant.status.value:<9} {tenant.ownership.value:<13} "
                    f"{', '.join(tenant.api_key_ids)}\n"
                )
        return EXIT_OK
    if args.action == "set-limits":
        changes = {
            name: value
            for name, value in (
                ("rate_limit", args.rate_limit),
                ("burst_limit", args.burst_limit),
                ("daily_quota", args.daily_quota),
                ("max_outstanding", args.max_outstanding),
            )
            if value is not None
        }
        if not changes:
            raise CliError("set-limits needs at least one of the limits to change", EXIT_BAD_INPUT)
        _write_tenant(out, admin.set_limits(args.tenant_id, **changes), args.json)
        return EXIT_OK
    if args.action == "set-callback":
        tenant, made = admin.set_callback(args.tenant_id, None if args.clear else args.url)
        if args.json:
            out.write(json.dumps({**_tenant_document(tenant), "callbackSigningSecret": made}) + "\n")
        else:
            _write_tenant(out, tenant, False)
            if made is not None:
                out.write(f"callback signing secret {made}\n")
                err.write("the callback signing secret is shown once: hand it to the tenant now\n")
        return EXIT_OK
    if args.action in ("show", "recount"):
        return _show_or_recount(args, admin, outputs, out)
    if args.action in ("disable", "enable"):
        status = TenantStatus.DISABLED if args.action == "disable" else TenantStatus.ACTIVE
        _write_tenant(out, admin.set_status(args.tenant_id, status), args.json)
        return EXIT_OK
    if args.action == "rotate-secret":
        secret = admin.rotate_secret(args.tenant_id, overlap_s=args.overlap, callbacks=args.callbacks)
        name = "callbackSigningSecret" if args.callbacks else "signingSecret"
        if args.json:
            out.write(json.dumps({"tenantId": args.tenant_id, name: secret, "overlapSeconds": args.overlap}) + "\n")
        else:
            out.write(f"{'callback signing' if args.callbacks else 'signing'} secret {secret}\n")
            if args.overlap:
                err.write(f"the previous secret keeps working for {format_duration(args.overlap)}\n")
            else:
                err.write("the previous secret is revoked: warm functions refuse it within TENANT_CACHE_SECONDS\n")
        return EXIT_OK
    removed = admin.remove(args.tenant_id)
    if args.json:
        out.write(json.dumps({"removed": _tenant_document(removed)}) + "\n")
    else:
        out.write(f"removed tenant {removed.tenant_id}\n")
    return EXIT_OK


def _add_tenant(
    args: argparse.Namespace, admin: tenants_module.TenantAdmin, outputs: dict[str, str], out: TextIO, err: TextIO
) -> int:
    limits = TenantLimits(
        rate_limit=args.rate_limit,
        burst_limit=args.burst_limit,
        daily_quota=args.daily_quota,
        max_outstanding=args.max_outstanding,
    )
    added = admin.add(
        args.tenant_id,
        ownership=args.ownership,
        api_key_ids=tuple(args.api_key_id or ()),
        workspace_id=args.workspace_id,
        metadata_key=args.metadata_key,
        limits=limits,
        stage=_stage(args, outputs) if args.create_api_key else None,
        callback_url=args.callback_url,
    )
    if args.json:
        document = _tenant_document(added.tenant)
        document["apiKeyId"] = added.tenant.api_key_ids[-1] if added.tenant.api_key_ids else None
        document["signingSecret"] = added.signing_secret
        document["callbackSigningSecret"] = added.callback_signing_secret
        if added.api_key_value is not None:
            document["apiKey"] = added.api_key_value
        out.write(json.dumps(document) + "\n")
    else:
        _write_tenant(out, added.tenant, False)
        out.write(f"signing secret          {added.signing_secret}\n")
        out.write(f"callback signing secret {added.callback_signing_secret}\n")
        if added.api_key_value is not None:
            out.write(f"api key      {added.api_key_value}\n")
        err.write("the secrets (and API key) are shown once: hand them to the tenant now\n")
    return EXIT_OK


def _show_or_recount(
    args: argparse.Namespace, admin: tenants_module.TenantAdmin, outputs: dict[str, str], out: TextIO
) -> int:
    if args.action == "show":
        tenant = admin.get(args.tenant_id)
        usage = _usage(_ledger(args, outputs), tenant)
        if args.json:
            out.write(json.dumps({**_tenant_document(tenant), **usage}) + "\n")
        else:
            _write_tenant(out, tenant, False)
            for name, value in usage.items():
                out.write(f"{name:<12} {'-' if value is None else value}\n")
        return EXIT_OK
    ledger = _ledger(args, outputs)
    if ledger is None:
        raise CliError("recount needs the ledger: pass --ledger-table, or --stack-name", EXIT_BAD_INPUT)
    admin.get(args.tenant_id)
    outstanding = ledger.recount(args.tenant_id)
    out.write(json.dumps({"tenantId": args.tenant_id, "outstanding": outstanding}) + "\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--queue-url", help="deletion queue URL (default: the stack's, else $DELETION_QUEUE_URL)")
    common.add_argument(
        "--dlq-url",
        help="dead-letter queue URL (default: the stack's, else $DEAD_LETTER_QUEUE_URL, else the queue's redrive)",
    )
    common.add_argument("--stack-name", help="read both URLs from this CloudFormation stack's outputs")
    common.add_argument("--region", default=None, help="AWS region (default: the credential chain's)")

    parser = argparse.ArgumentParser(
        prog="python -m opscli",
        description="Operate bulk Extend parser run deletions through the deletion queue.",
        epilog="Uses boto3's default credentials; set AWS_ENDPOINT_URL to drive the local stack "
        "(make run ARGS=--serve).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    enqueue = commands.add_parser("enqueue", parents=[common], help="queue parser run ids for deletion")
    enqueue.add_argument("file", help="file of ids, one per line, or a CSV with --column; '-' reads stdin")
    enqueue.add_argument("--column", help="CSV column holding the ids (the file then needs a header row)")
    enqueue.add_argument("--checkpoint", help="file recording queued ids; rerun with it to resume without duplicates")
    enqueue.add_argument("--skip-invalid", action="store_true", help="send the valid ids even if some are invalid")
    enqueue.add_argument("--threads", type=_positive_int, default=8, help="concurrent SendMessageBatch calls (8)")
    enqueue.add_argument("--max-attempts", type=_positive_int, default=5, help="attempts per entry (5)")
    enqueue.add_argument("--backoff", type=float, default=0.2, help="first retry delay in seconds (0.2), doubling")
    enqueue.add_argument("--requested-by", help="audit field carried in each message and logged by the function")
    enqueue.add_argument("--reason", help="audit field carried in each message and logged by the function")
    enqueue.add_argument("--dry-run", action="store_true", help="validate and count, send nothing")
    enqueue.set_defaults(run=cmd_enqueue)

    status = commands.add_parser("status", parents=[common], help="queue depth, in flight, DLQ depth and ETA")
    status.add_argument(
        "--rate",
        type=_positive_float,
        default=DEFAULT_RATE,
        help=f"deletions per second the stack sustains, for the ETA ({DEFAULT_RATE:g})",
    )
    status.set_defaults(run=cmd_status)

    dlq = commands.add_parser("dlq", parents=[common], help="list dead-lettered messages with their reasons")
    dlq.add_argument("--limit", type=_positive_int, default=100, help="most messages to show (100)")
    dlq.set_defaults(run=cmd_dlq)

    redrive = commands.add_parser("redrive", parents=[common], help="move DLQ messages back to the deletion queue")
    redrive.add_argument(
        "--method",
        choices=["auto", "move-task", "loop"],
        default="auto",
        help="StartMessageMoveTask, or a receive-send-delete loop (auto: the task, else the loop)",
    )
    redrive.add_argument("--rate", type=_positive_int, help="messages per second for the move task")
    redrive.add_argument("--limit", type=_positive_int, help="most messages the loop moves")
    redrive.set_defaults(run=cmd_redrive)

    _add_tenants_parser(commands)
    return parser


def _add_tenants_parser(commands: Any) -> None:
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--table", help="tenant registry table (default: the stack's, else $TENANTS_TABLE_NAME)")
    registry.add_argument(
        "--secret-prefix", help="tenants' secret name prefix (default: the stack's, else $TENANT_SECRET_PREFIX)"
    )
    registry.add_argument("--stack-name", help="read the table, prefix and API from this stack's outputs")
    registry.add_argument("--region", default=None, help="AWS region (default: the credential chain's)")
    registry.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    registry.add_argument("--ledger-table", help="the ledger, for show and recount (default: as --table)")
    tenants = commands.add_parser("tenants", help="register, list, change and remove tenants")
    actions = tenants.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[registry], help="register a tenant and print its signing secret once")
    add.add_argument("tenant_id")
    add.add_argument("--api-key-id", action="append", help="an API Gateway key id of the tenant (repeatable)")
    add.add_argument(
        "--create-api-key", action="store_true", help="create the key and its usage plan (with --stack-name)"
    )
    add.add_argument("--ownership", required=True, choices=["workspace", "metadata", "unrestricted"])
    add.add_argument("--workspace-id", help="the tenant's Extend workspace (workspace policy)")
    add.add_argument("--metadata-key", help="the run metadata key that names the tenant (metadata policy)")
    add.add_argument("--rate-limit", type=_positive_float, default=1.0, help="requests per second (1)")
    add.add_argument("--burst-limit", type=_positive_int, default=2, help="burst of requests (2)")
    add.add_argument("--daily-quota", type=_positive_int, default=10_000, help="requests per day (10000)")
    add.add_argument("--callback-url", help="https URL told (signed POST) when a deletion request completes")
    add.add_argument(
        "--max-outstanding", type=_positive_int, default=10_000, help="runs queued and not yet settled (10000)"
    )
    for name, text in (
        ("list", "every tenant"),
        ("show", "one tenant"),
        ("disable", "lock a tenant out (within TENANT_CACHE_SECONDS)"),
        ("enable", "let a disabled tenant in again"),
        ("rotate-secret", "a new signing secret; the old one works for --overlap more seconds"),
        ("remove", "delete a tenant, its key mappings and its signing secret"),
        ("recount", "reset a tenant's outstanding count from the ledger (after a crashed intake)"),
        ("set-callback", "set (URL) or clear (--clear) the URL told when a deletion request completes"),
        ("set-limits", "change a tenant's rate, burst, daily quota or cap on outstanding runs"),
    ):
        action = actions.add_parser(name, parents=[registry], help=text)
        if name != "list":
            action.add_argument("tenant_id")
        if name == "set-limits":
            action.add_argument("--rate-limit", type=_positive_float, help="requests per second")
            action.add_argument("--burst-limit", type=_positive_int, help="burst of requests")
            action.add_argument("--daily-quota", type=_positive_int, help="requests per day")
            action.add_argument("--max-outstanding", type=_positive_int, help="runs queued and not yet settled")
        if name == "set-callback":
            target = action.add_mutually_exclusive_group(required=True)
            target.add_argument("url", nargs="?", help="the https callback URL")
            target.add_argument("--clear", action="store_true", help="stop sending completion callbacks")
        if name == "rotate-secret":
            action.add_argument(
                "--overlap",
                type=_non_negative_int,
                default=tenants_module.DEFAULT_OVERLAP_S,
                help="seconds the old secret keeps working (86400); 0 revokes it at once (an emergency)",
            )
            action.add_argument(
                "--callbacks", action="store_true", help="rotate the secret that signs its completion callbacks"
            )
    tenants.set_defaults(run=cmd_tenants)

    receipts = commands.add_parser("receipts", help="export a tenant's deletion receipts from the ledger")
    who = receipts.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant", help="the tenant whose receipts to export")
    who.add_argument("--operator", action="store_true", help="the operators' own deletions (opscli enqueue)")
    receipts.add_argument("--since", help="only requests made on or after this date or time (ISO 8601)")
    receipts.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="jsonl (default) or csv")
    receipts.add_argument("--ledger-table", help="the ledger (default: the stack's, else $LEDGER_TABLE_NAME)")
    receipts.add_argument("--stack-name", help="read the ledger's name from this stack's outputs")
    receipts.add_argument("--region", default=None, help="AWS region (default: the credential chain's)")
    receipts.set_defaults(run=cmd_receipts)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args, out, err)
    except CliError as error:
        err.write(f"error: {error}\n")
        return error.status
    except queues.QueueError as error:
        err.write(f"error: {error}\n")
        return EXIT_INCOMPLETE
    except (ClientError, BotoCoreError) as error:
        err.write(f"error: {type(error).__name__}: {str(error).splitlines()[0]}\n")
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    return status
