"""The demo's console output: the console itself, the stack's description, a reply's line, the table of injected
faults, and the summary table. What the summary's lines say is computed in ``summary``."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from devstack.demo.plan import FAULT_EFFECTS, OTHER_CUSTOMER, Plan
from devstack.demo.stack import LOCAL_ENVIRONMENT, LOCAL_PARAMETERS
from devstack.demo.summary import adds_up, ledger_checks, tallies
from devstack.demo.tenant_client import HttpReply
from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment
from devstack.stack_outputs import stack_name


class Console:
    """Demo output: plain lines, and one progress line redrawn on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_plain = 0.0

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str, final: bool = False, news: bool = False) -> None:
        """Redraw the line on a terminal; elsewhere print it every 2 s, and at once when it has ``news``."""
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        elif final or news or time.monotonic() - self._last_plain >= 2.0:
            self._last_plain = time.monotonic()
            self.line(text)


def print_stack(
    console: Console, stack: LocalDeployment, emulator: ExtendEmulator, endpoint: str, log_file: Path
) -> None:
    assert stack.queue_pool is not None
    source = stack.queue_function.sqs
    assert source is not None
    console.line(f"  API Gateway  {stack.api_url}  (each tenant: its own x-api-key, its own signing secret)")
    console.line(f"  moto         {endpoint}")
    console.line(f"  Extend       {emulator.base_url}  (organization-scoped key)")
    console.line(f"  stack        {stack_name(stack)}  (its outputs in moto: extend-deleter --stack-name finds it)")
    console.line("  functions, from template.yaml:")
    for line in _function_lines(stack):
        console.line(f"    {line}")
    console.line(
        f"  local tuning: visibility timeout {stack.visibility_timeout_s} s, "
        + ", ".join(f"{k}={v}" for k, v in {**LOCAL_PARAMETERS, **stack.options.parameter_overrides}.items())
        + ", "
        + ", ".join(f"{k}={v}" for k, v in LOCAL_ENVIRONMENT.items())
    )
    console.line(f"  function logs {log_file}")
    console.line("  tenants (extend-deleter tenants add --create-api-key):")
    for tenant in stack.tenant_admin().list():
        where = f"workspace {tenant.workspace_id}" if tenant.workspace_id else f"metadata[{tenant.metadata_key!r}]"
        console.line(
            f"    {tenant.tenant_id:<8} ownership {tenant.ownership.value:<9} {where:<22} "
            f"API key {', '.join(tenant.api_key_ids)}, usage plan {tenant.limits.rate_limit:g}/s burst "
            f"{tenant.limits.burst_limit}, {tenant.limits.daily_quota}/day"
        )


def _function_lines(stack: LocalDeployment) -> list[str]:
    """One line per function of the template: what triggers it, and the settings the local runtime applies."""
    api = stack.api_function
    routes = ", ".join(f"{route.method.upper()} {route.path}" for route in api.api_routes)
    api_instances = stack.api_pool.max_instances if stack.api_pool else 0
    lines = [
        f"{api.logical_id:<17} API Gateway /{stack.stage}: {routes}; {api_instances} instances, "
        f"Timeout {api.timeout_s:g} s"
    ]
    for spec in stack.template.sqs_functions():
        assert spec.sqs is not None
        pool = (
            stack.queue_pool
            if spec.logical_id == stack.queue_function.logical_id
            else stack.other_pools.get(spec.logical_id)
        )
        source = spec.sqs
        redrive = stack.redrive_targets.get(source.queue_logical_id)
        lines.append(
            f"{spec.logical_id:<17} SQS {source.queue_logical_id}: BatchSize {source.batch_size}, window "
            f"{source.batching_window_s:g} s, MaximumConcurrency {pool.max_instances if pool else '-'}, Timeout "
            f"{spec.timeout_s:g} s" + (f"; maxReceiveCount {redrive[1]}, then {redrive[0]}" if redrive else "")
        )
    for name, (_, rule) in stack.scheduled.items():
        spec = stack.template.functions()[name]
        lines.append(
            f"{name:<17} Schedule {rule}: hourly (the demo runs it once, at its end), Timeout {spec.timeout_s:g} s"
        )
    return lines


def show(console: Console, label: str, reply: HttpReply, note: str = "") -> None:
    body = json.dumps(reply.body) if not isinstance(reply.body, str) else reply.body
    console.line(f"   {label:<52} -> {reply.status} {body}{note}")


def fault_table(plan: Plan) -> list[str]:
    """The faults injected on acme's runs: one row per kind, with how many runs have it and what it does."""
    counts = Counter(plan.faults.values())
    width = max(len(label) for label in FAULT_EFFECTS)
    rows = [f"{'fault injected':<{width}}  {'runs':>4}  what the Extend emulator does, and what becomes of the run"]
    rows += [
        f"{label:<{width}}  {counts[label]:>4}  {effect}" for label, effect in FAULT_EFFECTS.items() if counts[label]
    ]
    return rows


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    single, others = summary.get("single", {}), summary.get("others_runs", {})
    console.line()
    console.line("Summary, per tenant (ids each one asked to delete)")
    console.line(f"  {'':<10}{'deleted':>9}{'not found':>11}{'rejected':>10}{'in DLQ':>8}{'queued':>8}{'total':>7}")
    for tally in tallies(summary):
        console.line(
            f"  {tally.tenant_id:<10}{tally.deleted:>9}{tally.not_found:>11}{tally.rejected:>10}{tally.in_dlq:>8}"
            f"{tally.unaccounted:>8}{tally.total:>7}   of {tally.requested} requested: "
            f"{'adds up' if tally.adds_up else 'DOES NOT ADD UP'}"
        )
    for check in ledger_checks(summary):
        console.line(
            f"  Ledger, {check.tenant_id}: {check.receipts} receipts in {check.requests} requests, "
            f"{'agrees' if check.agrees else 'DISAGREES'} with the emulator and the queues"
        )
    callbacks = summary.get("callbacks", {})
    console.line(
        f"  Completion callbacks: {callbacks.get('verified', 0)} verified of {callbacks.get('completed', 0)} "
        "completed requests"
    )
    replay = single.get("replay", {})
    refusals = single.get("refusals", {})
    console.line("  Isolation:")
    for tenant_id, report in others.items():
        sent = report.get("deletes_sent")
        console.line(
            f"    {tenant_id}: asked for {report['asked']} runs it does not own -> all 'not found'; "
            f"{report['still_there']} still in Extend, {report['deleted_by_extend']} deleted"
            + (f"; DELETEs sent for {OTHER_CUSTOMER}'s runs: {sent}" if sent is not None else "")
        )
    console.line(
        f"    replayed request: {'the first answer' if replay.get('same_answer') else 'A DIFFERENT ANSWER'}, "
        f"{replay.get('extend_deletes')} DELETE reached Extend; other tenant's secret -> "
        f"{refusals.get('other_tenants_secret')}; no API key -> {refusals.get('no_api_key')}"
    )
    dlq = summary.get("dlq", {})
    console.line(f"  DLQ messages {dlq.get('messages', 0)} (parser runs + malformed), by reason:")
    for reason, count in sorted(dlq.get("reasons", {}).items()):
        console.line(f"    {count:>3}  {reason}")
    console.line(f"  still queued {summary.get('still_queued', 0)}")
    beyond = summary.get("beyond", {})
    document, dry, cancel = beyond.get("document", {}), beyond.get("dry_run", {}), beyond.get("cancel", {})
    console.line("  Beyond one parse run:")
    console.line(
        f"    a document: {document.get('status')}, run and file {'gone' if document.get('both_gone') else 'NOT GONE'}"
        f", the file {'after' if document.get('file_deleted_after_run') else 'NOT AFTER'} the run"
    )
    console.line(f"    a dry run: {dry.get('outcomes')}; DELETEs sent {dry.get('deletes_sent')}")
    console.line(
        f"    a cancel halfway: {cancel.get('status')}, deleted {cancel.get('deleted')}, cancelled "
        f"{cancel.get('cancelled')}, DELETEs sent after it {cancel.get('sent_after_cancel')}"
    )
    console.line("  Metrics (EMF totals from the functions' output):")
    for name, value in summary.get("metrics", {}).items():
        console.line(f"    {name:<28}{value:>8g}")
    console.line(
        "  Extend emulator answers: "
        + ", ".join(f"{status} x{count}" for status, count in summary.get("emulator", {}).items())
    )
    invocations = summary.get("invocations", {})
    queue_stats = invocations.get("queue", {})
    console.line(
        f"  Queue function: {queue_stats.get('invocations', 0)} invocations,"
        f" {queue_stats.get('cold_starts', 0)} cold starts, "
        f"peak concurrency {invocations.get('queue_peak_concurrency', 0)}"
    )
    console.line(f"  Time taken: {summary.get('seconds', 0):.1f} s")
    console.line(f"  Everything {'adds up' if adds_up(summary) else 'DOES NOT ADD UP'}.")
