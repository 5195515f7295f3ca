"""``tenants``: register the downstream customers who may call the API, and change or remove them; ``receipts``:
a tenant's deletion receipts from the ledger, for an auditor."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from opscli import receipts as receipts_module
from opscli import tenants as tenants_module
from opscli.commands.queue import non_negative_int, positive_float, positive_int
from opscli.context import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_OK, CliError, Context
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.adapters.tenant_table import TenantTable, TenantTableUnavailable
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import LedgerUnavailable
from parser_run_deleter.logic.tenants import InvalidTenant, Tenant, TenantLimits, TenantStatus
from parser_run_deleter.shared.timestamps import iso, parse_iso

LIMIT_NAMES: Final = ("rate_limit", "burst_limit", "daily_quota", "max_outstanding", "deadline_days")


def _protection(outputs: dict[str, str]) -> tenants_module.SecretProtection | None:
    """How a deployed stack keeps its tenants' secrets, from its outputs; None without a stack (local use)."""
    roles = [outputs.get(key) for key in ("OperatorRoleArn", "ApiFunctionRoleArn", "CallbackFunctionRoleArn")]
    if not all(roles):
        return None
    operator, api, callback = (str(role) for role in roles)
    return tenants_module.SecretProtection(outputs.get("DataKeyArn") or None, operator, api, callback)


def tenant_admin(context: Context) -> tenants_module.TenantAdmin:
    args = context.args
    table_name = context.setting(args.table, "--table", "TenantsTableName", "TENANTS_TABLE_NAME")
    prefix = context.setting(args.secret_prefix, "--secret-prefix", "TenantSecretPrefix", "TENANT_SECRET_PREFIX")
    if not table_name or not prefix:
        raise CliError(
            "no tenant registry: pass --table and --secret-prefix (or set TENANTS_TABLE_NAME and "
            "TENANT_SECRET_PREFIX), or --stack-name",
            EXIT_BAD_INPUT,
        )
    return tenants_module.TenantAdmin(
        TenantTable(table_name, context.client("dynamodb")),
        context.client("secretsmanager"),
        prefix,
        context.client("apigateway"),
        _protection(context.outputs),
    )


def _ledger(context: Context) -> Ledger | None:
    """The ledger, named by --ledger-table, the stack's LedgerTableName output or $LEDGER_TABLE_NAME."""
    args = context.args
    table_name = context.setting(
        getattr(args, "ledger_table", None), "--ledger-table", "LedgerTableName", "LEDGER_TABLE_NAME"
    )
    if not table_name:
        return None
    return Ledger(LedgerTable(table_name, retention_days=400, client=context.client("dynamodb")))


def tenant_document(tenant: Tenant) -> dict[str, Any]:
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
        "deadlineDays": tenant.limits.deadline_days,
        "usagePlanId": tenant.usage_plan_id,
        "callbackUrl": tenant.callback_url,
    }


def _lines(document: dict[str, Any]) -> list[str]:
    return [
        f"{name:<23} {', '.join(value) if isinstance(value, list) else value}"
        for name, value in document.items()
        if value not in (None, [])
    ]


def usage_plan_stage(context: Context) -> tenants_module.StageApi:
    outputs = context.outputs
    missing = [name for name in ("RestApiId", "StageName", "StageThrottle") if name not in outputs]
    if missing:
        raise CliError(f"--create-api-key needs --stack-name with the outputs {', '.join(missing)}", EXIT_BAD_INPUT)
    rate, _, burst = outputs["StageThrottle"].partition("/")
    return tenants_module.StageApi(outputs["RestApiId"], outputs["StageName"], float(rate), int(burst))


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


SHOWN_ONCE: Final = "shown once: hand them to the tenant now, over a channel fit for credentials"


# ---------------------------------------------------------------------------------------------------- the actions


def add(context: Context, admin: tenants_module.TenantAdmin) -> int:
    args = context.args
    limits = TenantLimits(
        rate_limit=args.rate_limit,
        burst_limit=args.burst_limit,
        daily_quota=args.daily_quota,
        max_outstanding=args.max_outstanding,
        deadline_days=args.deadline_days,
    )
    added = admin.add(
        args.tenant_id,
        ownership=args.ownership,
        api_key_ids=tuple(args.api_key_id or ()),
        workspace_id=args.workspace_id,
        metadata_key=args.metadata_key,
        limits=limits,
        stage=usage_plan_stage(context) if args.create_api_key else None,
        callback_url=args.callback_url,
    )
    document = tenant_document(added.tenant)
    document["apiKeyId"] = added.tenant.api_key_ids[-1] if added.tenant.api_key_ids else None
    document["signingSecret"] = added.signing_secret
    document["callbackSigningSecret"] = added.callback_signing_secret
    if added.api_key_value is not None:
        document["apiKey"] = added.api_key_value
    context.emit(document, lambda: _lines(document))
    context.note(f"the secrets (and API key) are {SHOWN_ONCE}")
    return EXIT_OK


def list_tenants(context: Context, admin: tenants_module.TenantAdmin) -> int:
    listed = admin.list()
    context.emit(
        [tenant_document(tenant) for tenant in listed],
        lambda: [
            f"{t.tenant_id:<24} {t.status.value:<9} {t.ownership.value:<13} {', '.join(t.api_key_ids)}" for t in listed
        ],
    )
    return EXIT_OK


def show(context: Context, admin: tenants_module.TenantAdmin) -> int:
    tenant = admin.get(context.args.tenant_id)
    document = {**tenant_document(tenant), **_usage(_ledger(context), tenant)}
    context.emit(document, lambda: _lines(document))
    return EXIT_OK


def recount(context: Context, admin: tenants_module.TenantAdmin) -> int:
    ledger = _ledger(context)
    if ledger is None:
        raise CliError("recount needs the ledger: pass --ledger-table, or --stack-name", EXIT_BAD_INPUT)
    admin.get(context.args.tenant_id)
    outstanding = ledger.recount(context.args.tenant_id)
    document = {"tenantId": context.args.tenant_id, "outstanding": outstanding}
    context.emit(document, lambda: [f"{context.args.tenant_id}: {outstanding} runs outstanding"])
    return EXIT_OK


def _status_setter(status: TenantStatus) -> Callable[[Context, tenants_module.TenantAdmin], int]:
    def set_status(context: Context, admin: tenants_module.TenantAdmin) -> int:
        document = tenant_document(admin.set_status(context.args.tenant_id, status))
        context.emit(document, lambda: _lines(document))
        return EXIT_OK

    return set_status


def set_limits(context: Context, admin: tenants_module.TenantAdmin) -> int:
    changes = {name: getattr(context.args, name) for name in LIMIT_NAMES if getattr(context.args, name) is not None}
    if not changes:
        raise CliError("set-limits needs at least one of the limits to change", EXIT_BAD_INPUT)
    document = tenant_document(admin.set_limits(context.args.tenant_id, **changes))
    context.emit(document, lambda: _lines(document))
    return EXIT_OK


def set_callback(context: Context, admin: tenants_module.TenantAdmin) -> int:
    args = context.args
    tenant, made = admin.set_callback(args.tenant_id, None if args.clear else args.url)
    document = {**tenant_document(tenant), "callbackSigningSecret": made}
    context.emit(document, lambda: _lines(document))
    if made is not None:
        context.note(f"the callback signing secret is {SHOWN_ONCE}")
    return EXIT_OK


def rotate_secret(context: Context, admin: tenants_module.TenantAdmin) -> int:
    args = context.args
    secret = admin.rotate_secret(args.tenant_id, overlap_s=args.overlap, callbacks=args.callbacks)
    name = "callbackSigningSecret" if args.callbacks else "signingSecret"
    document = {"tenantId": args.tenant_id, name: secret, "overlapSeconds": args.overlap}
    context.emit(document, lambda: _lines(document))
    if args.overlap:
        context.note(f"the previous secret keeps working for {args.overlap:,} s; the new one is {SHOWN_ONCE}")
    else:
        context.note("the previous secret is revoked: warm functions refuse it within TENANT_CACHE_SECONDS")
    return EXIT_OK


def rotate_api_key(context: Context, admin: tenants_module.TenantAdmin) -> int:
    tenant, value = admin.rotate_api_key(context.args.tenant_id)
    document = {**tenant_document(tenant), "apiKeyId": tenant.api_key_ids[-1], "apiKey": value}
    context.emit(document, lambda: _lines(document))
    context.note(f"the old key no longer works; the new one is {SHOWN_ONCE}")
    return EXIT_OK


def remove(context: Context, admin: tenants_module.TenantAdmin) -> int:
    args = context.args
    if not args.yes:
        _confirm_removal(context, args.tenant_id)
    removed = admin.remove(args.tenant_id)
    context.emit({"removed": tenant_document(removed)}, lambda: [f"removed tenant {removed.tenant_id}"])
    return EXIT_OK


def _confirm_removal(context: Context, tenant_id: str) -> None:
    """Removal cannot be undone (its secrets are deleted at once): the operator types the tenant's id, or passes
    ``--yes``. Without a terminal to ask at, nothing is removed."""
    if not sys.stdin.isatty():
        raise CliError(f"removing {tenant_id!r} cannot be undone: pass --yes to confirm", EXIT_BAD_INPUT)
    context.err.write(f"remove tenant {tenant_id!r}, its key mappings and its secrets, for good? type its id: ")
    context.err.flush()
    if sys.stdin.readline().strip() != tenant_id:
        raise CliError("not removed", EXIT_BAD_INPUT)


ACTIONS: Final[dict[str, Callable[[Context, tenants_module.TenantAdmin], int]]] = {
    "add": add,
    "list": list_tenants,
    "show": show,
    "recount": recount,
    "disable": _status_setter(TenantStatus.DISABLED),
    "enable": _status_setter(TenantStatus.ACTIVE),
    "set-limits": set_limits,
    "set-callback": set_callback,
    "rotate-secret": rotate_secret,
    "rotate-api-key": rotate_api_key,
    "remove": remove,
}


def cmd_tenants(context: Context) -> int:
    admin = tenant_admin(context)
    try:
        return ACTIONS[context.args.action](context, admin)
    except (tenants_module.TenantError, InvalidTenant) as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    except (LedgerUnavailable, TenantTableUnavailable) as error:
        raise CliError(str(error), EXIT_INCOMPLETE) from None


# ---------------------------------------------------------------------------------------------------- receipts


def cmd_receipts(context: Context) -> int:
    args = context.args
    ledger = _ledger(context)
    if ledger is None:
        raise CliError("no ledger: pass --ledger-table (or set LEDGER_TABLE_NAME), or --stack-name", EXIT_BAD_INPUT)
    since = ""
    if args.since:
        try:
            since = iso(parse_iso(args.since if "T" in args.since else args.since + "T00:00:00Z"))
        except ValueError:
            raise CliError(f"--since must be a date (2026-01-31) or an ISO 8601 time, got {args.since!r}", 2) from None
    output_format = "jsonl" if context.as_json else args.format
    try:
        receipts_module.export(
            ledger,
            None if args.operator else args.tenant,
            context.out,
            context.err,
            since=since,
            output_format=output_format,
        )
    except LedgerUnavailable as error:
        raise CliError(str(error), EXIT_INCOMPLETE) from None
    except BrokenPipeError:  # the reader stopped early (`| head`): what it read is what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush from failing again
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- parsers


def register(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--table", help="tenant registry table (default: the stack's, else $TENANTS_TABLE_NAME)")
    registry.add_argument(
        "--secret-prefix", help="tenants' secret name prefix (default: the stack's, else $TENANT_SECRET_PREFIX)"
    )
    registry.add_argument("--ledger-table", help="the ledger, for show and recount (default: as --table)")
    parents = [*common, registry]

    tenants = commands.add_parser("tenants", help="register, list, change and remove tenants")
    actions = tenants.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_parser = actions.add_parser("add", parents=parents, help="register a tenant and print its secrets once")
    add_parser.add_argument("tenant_id")
    add_parser.add_argument("--api-key-id", action="append", help="an API Gateway key id of the tenant (repeatable)")
    add_parser.add_argument(
        "--create-api-key", action="store_true", help="create the key and its usage plan (with --stack-name)"
    )
    add_parser.add_argument("--ownership", required=True, choices=["workspace", "metadata", "unrestricted"])
    add_parser.add_argument("--workspace-id", help="the tenant's Extend workspace (workspace policy)")
    add_parser.add_argument("--metadata-key", help="the run metadata key that names the tenant (metadata policy)")
    add_parser.add_argument("--rate-limit", type=positive_float, default=1.0, help="requests per second (1)")
    add_parser.add_argument("--burst-limit", type=positive_int, default=2, help="burst of requests (2)")
    add_parser.add_argument("--daily-quota", type=positive_int, default=10_000, help="requests per day (10000)")
    add_parser.add_argument("--callback-url", help="https URL told (signed POST) when a deletion request completes")
    add_parser.add_argument(
        "--max-outstanding", type=positive_int, default=10_000, help="runs queued and not yet settled (10000)"
    )
    add_parser.add_argument(
        "--deadline-days", type=positive_int, default=30, help="days each deletion request is due within (30)"
    )
    for name, text in (
        ("list", "every tenant"),
        ("show", "one tenant, with its outstanding runs"),
        ("disable", "lock a tenant out (within TENANT_CACHE_SECONDS): the emergency lever"),
        ("enable", "let a disabled tenant in again"),
        ("rotate-secret", "a new signing secret; the old one works for --overlap more seconds (0: revoked at once)"),
        ("rotate-api-key", "a new API key in place of the one this tool made (the old one stops at once)"),
        ("remove", "delete a tenant, its key mappings and its secrets (asks first, or --yes)"),
        ("recount", "reset a tenant's outstanding count from the ledger (after a crashed intake)"),
        ("set-callback", "set (URL) or clear (--clear) the URL told when a deletion request completes"),
        ("set-limits", "change a tenant's rate, burst, daily quota or cap on outstanding runs"),
    ):
        action = actions.add_parser(name, parents=parents, help=text)
        if name != "list":
            action.add_argument("tenant_id")
        if name == "set-limits":
            action.add_argument("--rate-limit", type=positive_float, help="requests per second")
            action.add_argument("--burst-limit", type=positive_int, help="burst of requests")
            action.add_argument("--daily-quota", type=positive_int, help="requests per day")
            action.add_argument("--max-outstanding", type=positive_int, help="runs queued and not yet settled")
            action.add_argument("--deadline-days", type=positive_int, help="days each deletion request is due within")
        if name == "set-callback":
            target = action.add_mutually_exclusive_group(required=True)
            target.add_argument("url", nargs="?", help="the https callback URL")
            target.add_argument("--clear", action="store_true", help="stop sending completion callbacks")
        if name == "rotate-secret":
            action.add_argument(
                "--overlap",
                type=non_negative_int,
                default=tenants_module.DEFAULT_OVERLAP_S,
                help="seconds the old secret keeps working (86400); 0 revokes it at once (an emergency)",
            )
            action.add_argument(
                "--callbacks", action="store_true", help="rotate the secret that signs its completion callbacks"
            )
        if name == "remove":
            action.add_argument("--yes", action="store_true", help="remove without asking (for scripts)")
    tenants.set_defaults(run=cmd_tenants)

    receipts = commands.add_parser(
        "receipts", parents=common, help="export a tenant's deletion receipts from the ledger"
    )
    who = receipts.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant", help="the tenant whose receipts to export")
    who.add_argument("--operator", action="store_true", help="the operators' own deletions (enqueue)")
    receipts.add_argument("--since", help="only requests made on or after this date or time (ISO 8601)")
    receipts.add_argument(
        "--format",
        choices=["jsonl", "csv", "html"],
        default="jsonl",
        help="jsonl (default; --json means it too), csv, or html (the auditor's report: one self-contained page)",
    )
    receipts.add_argument("--ledger-table", help="the ledger (default: the stack's, else $LEDGER_TABLE_NAME)")
    receipts.set_defaults(run=cmd_receipts)
