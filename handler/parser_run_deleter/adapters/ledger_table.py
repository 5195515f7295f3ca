"""Adapter for the ledger, one DynamoDB table (single-table design, keys ``pk`` and ``sk``):

- ``REQ#<request id>`` / ``REQUEST``: a deletion request (tenant, trigger, times, audit fields, one ``n_<outcome>``
  counter per outcome, callback state); in the ``byTenant`` index under ``TENANT#<id>`` (or ``OPERATOR``) and
  ``<createdAt>#<request id>``, for receipts;
- ``REQ#<request id>`` / ``RUN#<parser run id>``: one parser run of it (outcome, times, attempts, Extend's status
  and request id, the reason for a failure);
- ``TENANT#<id>`` / ``USAGE``: the tenant's outstanding (queued) runs, kept under its cap by conditional writes.

It implements ``logic.ports.LedgerStore``: logic's records go in and come out, and every attribute name is this
module's. A run's outcome and its request's counters change in idempotent steps (or one transaction), so they
always end up agreeing. Every item expires ``retention_days`` after it was written (``expiresAt``, the table's TTL
attribute).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from parser_run_deleter.adapters.dynamodb import cancellation_codes, from_item, to_item, to_value
from parser_run_deleter.logic.ledger_records import (
    LedgerUnavailable,
    OverCap,
    RequestRecord,
    RequestTrigger,
    RunChanged,
    RunRecord,
)
from parser_run_deleter.logic.outcomes import RUN_OUTCOMES, Outcome
from parser_run_deleter.shared.timestamps import now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

REQUEST_SK: Final = "REQUEST"
USAGE_SK: Final = "USAGE"
RUN_PREFIX: Final = "RUN#"
BY_TENANT_INDEX: Final = "byTenant"
OPERATOR_PARTITION: Final = "OPERATOR"
BATCH_WRITE_LIMIT: Final = 25
# Fields of a run that accumulate rather than being replaced.
_ADDED_RUN_FIELDS: Final = ("attempts", "redrives")


def _request_pk(request_id: str) -> str:
    return "REQ#" + request_id


def _tenant_pk(tenant_id: str) -> str:
    return "TENANT#" + tenant_id


def counter(outcome: str) -> str:
    return "n_" + outcome


# ---------------------------------------------------------------- records <-> items


def run_values(run: RunRecord) -> dict[str, Any]:
    return {
        "parserRunId": run.parser_run_id,
        "outcome": run.outcome.value,
        "attempts": run.attempts,
        "extendStatus": run.extend_status,
        "extendRequestId": run.extend_request_id,
        "reason": run.reason,
        "completedAt": run.completed_at,
        "redrives": run.redrives or None,
        "resource": run.resource,
        "sourceOf": run.source_of,
    }


def run_from_values(values: Mapping[str, Any]) -> RunRecord:
    status = values.get("extendStatus")
    return RunRecord(
        parser_run_id=str(values["parserRunId"]),
        outcome=Outcome(str(values["outcome"])),
        attempts=int(values.get("attempts", 0)),
        extend_status=int(status) if status is not None else None,
        extend_request_id=values.get("extendRequestId"),
        reason=values.get("reason"),
        completed_at=values.get("completedAt"),
        redrives=int(values.get("redrives", 0)),
        resource=values.get("resource"),
        source_of=values.get("sourceOf"),
    )


def request_values(request: RequestRecord) -> dict[str, Any]:
    """The request's own fields (its counters included), as its item holds them."""
    return {
        "tenantId": request.tenant_id,
        "trigger": request.trigger.value,
        "createdAt": request.created_at,
        "updatedAt": request.updated_at or request.created_at,
        "audit": dict(request.audit) or None,
        "dryRun": request.dry_run or None,
        "dueBy": request.due_by,
        "cancelledAt": request.cancelled_at,
        **{counter(outcome.value): n for outcome, n in request.counts.items() if n},
    }


def request_from_values(values: Mapping[str, Any]) -> RequestRecord:
    counts = {outcome: int(values.get(counter(outcome.value), 0)) for outcome in RUN_OUTCOMES}
    return RequestRecord(
        request_id=str(values["requestId"]),
        tenant_id=values.get("tenantId"),
        trigger=RequestTrigger(str(values.get("trigger", RequestTrigger.QUEUE.value))),
        created_at=str(values["createdAt"]),
        audit={str(k): str(v) for k, v in (values.get("audit") or {}).items()},
        counts={outcome: n for outcome, n in counts.items() if n},
        updated_at=values.get("updatedAt"),
        completed_at=values.get("completedAt"),
        callback=_plain(values.get("callback")),
        transitions=int(values.get("transitions", 0)),
        completions=int(values.get("completions", 0)),
        dry_run=bool(values.get("dryRun", False)),
        due_by=values.get("dueBy"),
        cancelled_at=values.get("cancelledAt"),
    )


def _plain(value: Any) -> Any:
    """DynamoDB's numbers come back as Decimal: whole ones as int, so that they serialise as JSON numbers."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# Requests recorded since markers have 128 bits say so: a marker of the old kind is looked for only in older ones.
MARKER_VERSION: Final = 2


def settled_marker(parser_run_id: str) -> str:
    """A fixed-size stand-in for a run id in its request's set of counted runs (ids can be 255 long): 128 bits of
    its SHA-256, so that no one can craft two run ids that share one (and have the second's count skipped)."""
    digest = hashlib.sha256(parser_run_id.encode()).digest()[:16]
    # base64url: 22 characters, where base32 would take 26 (the request item, rewritten on each count, carries one
    # per settled run). Strings, like the old markers, so that both kinds can share an older request's set.
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def legacy_settled_marker(parser_run_id: str) -> str:
    """The 50-bit marker of requests recorded before ``MARKER_VERSION`` 2: still honoured in those requests, so
    that a run counted under it before an upgrade is not counted again after it."""
    digest = hashlib.sha256(parser_run_id.encode()).digest()[:7]
    return base64.b32encode(digest).decode().rstrip("=").lower()[:10]


def _unavailable(what: str, error: Exception) -> LedgerUnavailable:
    # botocore's messages can quote the request: only the error's type, or a transaction's reasons, is kept.
    codes = cancellation_codes(error)
    detail = ", ".join(code or "None" for code in codes) if codes else type(error).__name__
    return LedgerUnavailable(f"cannot {what}: {detail}")


class LedgerTable:
    """``client`` is a DynamoDB client, or a function that makes one when first needed (the composition root's,
    so that an invocation that never writes never builds it)."""

    def __init__(
        self, table_name: str, *, retention_days: int, client: DynamoDBClient | Callable[[], DynamoDBClient]
    ) -> None:
        self.table_name = table_name
        self.retention_s = retention_days * 86_400
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        # A boto3 client is not callable; a function that makes one is.
        return self._client() if callable(self._client) else self._client

    def _expires_at(self) -> int:
        return int(time.time()) + self.retention_s

    def _request_item(self, request_id: str, tenant_id: str | None, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "pk": _request_pk(request_id),
            "sk": REQUEST_SK,
            "requestId": request_id,
            **values,
            "gsi1pk": _tenant_pk(tenant_id) if tenant_id else OPERATOR_PARTITION,
            "gsi1sk": f"{values['createdAt']}#{request_id}",
            "markerVersion": MARKER_VERSION,
            "expiresAt": self._expires_at(),
        }

    def _run_item(self, request_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "pk": _request_pk(request_id),
            "sk": RUN_PREFIX + str(values["parserRunId"]),
            **values,
            "expiresAt": self._expires_at(),
        }

    def _usage_update(self, tenant_id: str, delta: int, cap: int | None = None) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": _tenant_pk(tenant_id)}, "sk": {"S": USAGE_SK}},
            "UpdateExpression": "ADD outstanding :delta",
            "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
        }
        if cap is not None:
            # DynamoDB cannot add in a condition: "outstanding + delta <= cap" is "outstanding <= cap - delta".
            update["ConditionExpression"] = "attribute_not_exists(outstanding) OR outstanding <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(cap - delta)}
        return update

    def _transact(self, writes: list[dict[str, Any]]) -> None:
        items: list[TransactWriteItemTypeDef] = writes  # type: ignore[assignment]  # dicts built to that shape
        self.client.transact_write_items(TransactItems=items)

    # ---------------------------------------------------------------- intake

    def begin(self, request: RequestRecord, *, reserve: int = 0, cap: int | None = None) -> None:
        """Record a request before any of its runs is queued; with ``reserve``, first count that many runs as the
        tenant's outstanding ones, refusing (``OverCap``) to go over ``cap``.

        Two single-item writes, not a transaction: every intake of a tenant touches its usage item, and concurrent
        transactions on one item cancel each other. The reservation comes first and is given back if the request
        cannot be recorded; a crash between them leaves a reservation that ``tenants recount`` repairs."""
        request_id, tenant_id = request.request_id, request.tenant_id
        if cap is not None and reserve > cap:
            raise OverCap(self.outstanding(tenant_id or ""), cap, reserve)
        holder = tenant_id if reserve and tenant_id else None  # whose outstanding runs this request reserves
        if holder is not None:
            try:
                self.client.update_item(**self._usage_update(holder, reserve, cap))
            except self.client.exceptions.ConditionalCheckFailedException:
                raise OverCap(self.outstanding(holder), cap or 0, reserve) from None
            except Exception as error:
                raise _unavailable("reserve the tenant's outstanding runs", error) from None
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(self._request_item(request_id, tenant_id, request_values(request))),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            # The id is new and random: if it is there already, this put is what put it there, on an attempt whose
            # answer was lost (botocore retried it, and the retry met its own condition).
            if self.request(request_id) is None:
                raise _unavailable("record the request", error) from None
        except Exception as error:
            if holder is not None:
                with contextlib.suppress(Exception):  # best effort: recount repairs what this misses
                    self.client.update_item(**self._usage_update(holder, -reserve))
            raise _unavailable("record the request", error) from None

    def record_intake(self, request: RequestRecord, runs: Sequence[RunRecord], *, released: int = 0) -> None:
        """The runs a request took in and its counters; ``released`` runs reserved by ``begin`` but not queued go
        back to the tenant."""
        request_id, tenant_id = request.request_id, request.tenant_id
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.outcome.value] = counts.get(run.outcome.value, 0) + 1
        puts = [{"PutRequest": {"Item": to_item(self._run_item(request_id, run_values(run)))}} for run in runs]
        try:
            for start in range(0, len(puts), BATCH_WRITE_LIMIT):
                self._batch_write(puts[start : start + BATCH_WRITE_LIMIT])
            added = {outcome: n for outcome, n in counts.items() if n}
            if added:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                    UpdateExpression="SET updatedAt = :now ADD "
                    + ", ".join(f"{counter(outcome)} :{outcome}" for outcome in added),
                    ExpressionAttributeValues={
                        ":now": {"S": now_iso()},
                        **{f":{outcome}": {"N": str(n)} for outcome, n in added.items()},
                    },
                )
            if released and tenant_id:
                self.client.update_item(**self._usage_update(tenant_id, -released))
        except LedgerUnavailable:
            raise
        except Exception as error:
            raise _unavailable("record the request's runs", error) from None

    def _batch_write(self, puts: list[dict[str, Any]], tries: int = 6) -> None:
        pending: dict[str, Any] = {self.table_name: puts}
        for attempt in range(tries):
            unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = dict(unprocessed)
            time.sleep(min(0.05 * 2**attempt, 0.8))  # DynamoDB throttled part of the batch: back off, then resend
        raise LedgerUnavailable("cannot record the request's runs: writes still unprocessed after retries")

    def record_single(self, request: RequestRecord, run: RunRecord, *, callback: Mapping[str, Any] | None) -> None:
        """A request of one run whose outcome is known (the synchronous path): the run and its request, completed
        when the run settled (with its callback's state), in one transaction: one round trip, and a request is never
        shown without its run."""
        request_id = request.request_id
        item = self._request_item(request_id, request.tenant_id, request_values(request))
        if run.outcome is not Outcome.QUEUED:
            item["settled"] = {settled_marker(run.parser_run_id)}
        if request.completed_at is not None:
            item |= {"completedAt": request.completed_at, "completions": request.completions}
        if callback is not None:
            item["callback"] = dict(callback)
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table_name, "Item": to_item(self._run_item(request_id, run_values(run)))}},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            self._transact(writes)
        except Exception as error:
            # The request's id is new and random: if it is there already, this write is what put it there, on an
            # attempt whose answer was lost (botocore retried it, and the retry met its own condition).
            if cancellation_codes(error)[1:] == ["ConditionalCheckFailed"] and self.request(request_id) is not None:
                return
            raise _unavailable("record the deletion", error) from None

    # ---------------------------------------------------------------- outcomes

    def transition(
        self,
        request_id: str,
        run: RunRecord,
        before: Outcome | None,
        *,
        tenant_id: str | None,
        outstanding_delta: int,
        create: RequestRecord | None = None,
    ) -> None:
        """Move a run from ``before`` (None: not recorded yet) to its outcome, with its request's counters and the
        tenant's outstanding count, in one transaction. ``RunChanged`` when the run was not in ``before``.
        ``create`` records the request too, field by field, where it is not recorded yet."""
        writes = [
            {"Update": self._run_update(request_id, run_values(run), _value(before))},
            {"Update": self._counters_update(request_id, before, run.outcome, create, run.parser_run_id)},
        ]
        if outstanding_delta and tenant_id:
            writes.append({"Update": self._usage_update(tenant_id, outstanding_delta)})
        try:
            self._transact(writes)
        except Exception as error:
            if cancellation_codes(error)[:1] == ["ConditionalCheckFailed"]:
                raise RunChanged(f"the run is no longer {_value(before) or 'unrecorded'}") from None
            raise _unavailable("record the outcome", error) from None

    def settle(
        self,
        request_id: str,
        run: RunRecord,
        before: Outcome | None,
        *,
        tenant_id: str | None,
        outstanding_delta: int,
        create: RequestRecord | None = None,
    ) -> RequestRecord | None:
        """Move a run from ``before`` (QUEUED, or None: not recorded yet) to its outcome, then count it in its
        request and the tenant's outstanding runs: three writes, no transaction (one item each, so each is atomic,
        and cheap). ``RunChanged`` when the run was not in ``before``. The request as counted, or None when it had
        been counted already. A crash between the writes is repaired by ``count`` on the message's redelivery."""
        try:
            self.client.update_item(**self._run_update(request_id, run_values(run), _value(before)))
        except self.client.exceptions.ConditionalCheckFailedException:
            raise RunChanged(f"the run is no longer {_value(before) or 'unrecorded'}") from None
        except Exception as error:
            raise _unavailable("record the outcome", error) from None
        return self.count(
            request_id,
            run.parser_run_id,
            run.outcome,
            before,
            tenant_id=tenant_id,
            outstanding_delta=outstanding_delta,
            create=create,
        )

    def count(
        self,
        request_id: str,
        parser_run_id: str,
        outcome: Outcome,
        before: Outcome | None,
        *,
        tenant_id: str | None,
        outstanding_delta: int,
        create: RequestRecord | None = None,
    ) -> RequestRecord | None:
        """Count a run's move in its request's counters (once: see ``_counters_update``), then in the tenant's
        outstanding runs; the request as counted, or None when it had been counted already."""
        update = self._counters_update(request_id, before, outcome, create, parser_run_id)
        update["ReturnValues"] = "ALL_NEW"
        try:
            counted = self.client.update_item(**update).get("Attributes", {})
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        except Exception as error:
            raise _unavailable("count the outcome", error) from None
        if outstanding_delta and tenant_id:
            try:
                self.client.update_item(**self._usage_update(tenant_id, outstanding_delta))
            except Exception as error:  # counted, but not released: `extend-deleter tenants recount` repairs it
                raise _unavailable("update the tenant's outstanding runs", error) from None
        return request_from_values(from_item(counted))

    def update_run(self, request_id: str, run: RunRecord, before: Outcome | None) -> None:
        """Move a run from ``before`` to its outcome, alone: its counts follow with its batch's (``count_runs``).
        ``RunChanged`` when the run was not in ``before``."""
        try:
            self.client.update_item(**self._run_update(request_id, run_values(run), _value(before)))
        except self.client.exceptions.ConditionalCheckFailedException:
            raise RunChanged(f"the run is no longer {_value(before) or 'unrecorded'}") from None
        except Exception as error:
            raise _unavailable("record the outcome", error) from None

    def count_runs(self, request_id: str, settled: Sequence[tuple[str, Outcome]]) -> RequestRecord | None:
        """Count runs that settled from queued, all in one write to their request: its counters move by the whole
        group, and their markers join its set. The request as counted; None when any of them was counted already
        (an earlier delivery's), and then nothing changed: the caller counts them one by one."""
        values: dict[str, Any] = {":now": {"S": now_iso()}, ":n": {"N": str(len(settled))}}
        names = {"#updatedAt": "updatedAt", "#markerVersion": "markerVersion"}
        additions = ["transitions :n", f"{counter(Outcome.QUEUED.value)} :minus"]
        values[":minus"] = {"N": str(-len(settled))}
        per_outcome: dict[str, int] = {}
        for _, outcome in settled:
            per_outcome[outcome.value] = per_outcome.get(outcome.value, 0) + 1
        for name, n in per_outcome.items():
            additions.append(f"{counter(name)} :plus_{name}")
            values[f":plus_{name}"] = {"N": str(n)}
        markers = [settled_marker(run_id) for run_id, _ in settled]
        additions.append("settled :marker_set")
        values[":marker_set"] = {"SS": markers}
        values[":marker_version"] = {"N": str(MARKER_VERSION)}
        conditions = []
        for index, (run_id, _) in enumerate(settled):
            values[f":m{index}"] = {"S": markers[index]}
            values[f":l{index}"] = {"S": legacy_settled_marker(run_id)}
            conditions.append(
                f"NOT contains(settled, :m{index}) "
                f"AND (#markerVersion = :marker_version OR NOT contains(settled, :l{index}))"
            )
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                UpdateExpression="SET #updatedAt = :now ADD " + ", ".join(additions),
                ConditionExpression=" AND ".join(f"({condition})" for condition in conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        except Exception as error:
            raise _unavailable("count the outcomes", error) from None
        return request_from_values(from_item(response.get("Attributes", {})))

    def add_outstanding(self, tenant_id: str, delta: int) -> None:
        """Change the tenant's count of outstanding runs by ``delta``, once for a whole batch."""
        try:
            self.client.update_item(**self._usage_update(tenant_id, delta))
        except Exception as error:  # counted, but not released: `extend-deleter tenants recount` repairs it
            raise _unavailable("update the tenant's outstanding runs", error) from None

    def _run_update(self, request_id: str, run: Mapping[str, Any], before: str | None) -> dict[str, Any]:
        replaced = {name: value for name, value in run.items() if value is not None and name not in _ADDED_RUN_FIELDS}
        added = {name: run[name] for name in _ADDED_RUN_FIELDS if run.get(name)}
        names = {f"#{name}": name for name in (*replaced, *added, "expiresAt")}
        values: dict[str, Any] = {f":{name}": to_value(value) for name, value in {**replaced, **added}.items()}
        values[":expiresAt"] = {"N": str(self._expires_at())}
        expression = "SET " + ", ".join([f"#{n} = :{n}" for n in replaced] + ["#expiresAt = :expiresAt"])
        if added:
            expression += " ADD " + ", ".join(f"#{n} :{n}" for n in added)
        if before is None:
            condition = "attribute_not_exists(#outcome)"
        else:
            condition = "#outcome = :before"
            values[":before"] = {"S": before}
        return {
            "TableName": self.table_name,
            "Key": {"pk": {"S": _request_pk(request_id)}, "sk": {"S": RUN_PREFIX + str(run["parserRunId"])}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _counters_update(
        self,
        request_id: str,
        before_outcome: Outcome | None,
        after_outcome: Outcome,
        create: RequestRecord | None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        before, after = _value(before_outcome), after_outcome.value
        values: dict[str, Any] = {":now": {"S": now_iso()}, ":one": {"N": "1"}}
        names: dict[str, str] = {"#updatedAt": "updatedAt"}
        # Every transition counts, a failed attempt too: a request with any is no longer just "accepted".
        additions: list[str] = ["transitions :one"]
        if before != after:
            additions.append(f"{counter(after)} :plus")
            values[":plus"] = {"N": "1"}
            if before is not None:
                additions.append(f"{counter(before)} :minus")
                values[":minus"] = {"N": "-1"}
        assignments = ["#updatedAt = :now"]
        if create is not None and after != "queued":
            # A request recorded on its run's first sight has that one run: settled, the request is complete, in this
            # same write (no completion write needed; it has no tenant to tell).
            names["#completedAt"] = "completedAt"
            assignments.append("#completedAt = if_not_exists(#completedAt, :now)")
        if create is not None:  # recorded on first sight: each field only where it is not there yet
            created = self._request_item(request_id, create.tenant_id, request_values(create))
            for name, value in created.items():
                if name in ("pk", "sk", "updatedAt") or value is None:
                    continue
                names[f"#{name}"] = name
                values[f":c_{name}"] = to_value(value)
                assignments.append(f"#{name} = if_not_exists(#{name}, :c_{name})")
        marker = settled_marker(str(run_id)) if run_id is not None else None
        removals: list[str] = []
        deletions: list[str] = []
        condition: str | None = None
        if marker is not None and after != "queued" and before in (None, "queued"):
            # A settled run is counted once: its marker joins the request's set in the same write, and a write
            # that finds the marker there already changes nothing. That makes a retried count harmless.
            additions.append("settled :marker_set")
            values[":marker_set"] = {"SS": [marker]}
            values[":marker"] = {"S": marker}
            values[":legacy_marker"] = {"S": legacy_settled_marker(str(run_id))}
            values[":marker_version"] = {"N": str(MARKER_VERSION)}
            names["#markerVersion"] = "markerVersion"
            condition = (
                "NOT contains(settled, :marker) "
                "AND (#markerVersion = :marker_version OR NOT contains(settled, :legacy_marker))"
            )
        if before == "dead_lettered":  # a redrive reopens a completed request: it will complete (and tell) again
            removals.append("completedAt")
            if after == "queued" and marker is not None:  # and the run may be counted again once it settles
                deletions.append("settled :marker_set")
                values[":marker_set"] = {"SS": [marker]}
        expression = "SET " + ", ".join(assignments) + " ADD " + ", ".join(additions)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        if deletions:
            expression += " DELETE " + ", ".join(deletions)
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        return update

    def complete(self, request_id: str, completed_at: str, callback: Mapping[str, Any] | None) -> RequestRecord | None:
        """Mark the request completed if none of its runs is queued and it is not marked yet, in one conditional
        write; the request as it now is, or None when it was not this call that completed it."""
        values: dict[str, Any] = {":at": {"S": completed_at}, ":zero": {"N": "0"}, ":one": {"N": "1"}}
        expression = "SET completedAt = :at ADD completions :one"
        if callback is not None:
            expression = "SET completedAt = :at, callback = :callback ADD completions :one"
            values[":callback"] = to_value(dict(callback))
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(completedAt) "
                "AND (attribute_not_exists(n_queued) OR n_queued = :zero)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        except Exception as error:
            raise _unavailable("complete the request", error) from None
        return request_from_values(from_item(response.get("Attributes", {})))

    def set_callback(self, request_id: str, callback: Mapping[str, Any]) -> None:
        """Record the completion callback's delivery state on the request."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                UpdateExpression="SET callback = :callback",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":callback": to_value(dict(callback))},
            )
        except Exception as error:
            raise _unavailable("record the callback", error) from None

    def add_run(self, request_id: str, tenant_id: str | None, run: RunRecord) -> bool:
        """Add a queued run to a request after its intake (a run's source file, included with it): the run, its
        request's queued counter and its tenant's outstanding runs, in one transaction. False when the run is
        recorded already (a redelivery added it), and then nothing changed."""
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(self._run_item(request_id, run_values(run))),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                    "UpdateExpression": f"SET updatedAt = :now ADD {counter(Outcome.QUEUED.value)} :one",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":now": {"S": now_iso()}, ":one": {"N": "1"}},
                }
            },
        ]
        if tenant_id:
            writes.append({"Update": self._usage_update(tenant_id, 1)})
        try:
            self._transact(writes)
        except Exception as error:
            if cancellation_codes(error)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise _unavailable("add the run to its request", error) from None
        return True

    def run(self, request_id: str, parser_run_id: str) -> RunRecord | None:
        """One run of a request, as recorded now (a consistent read)."""
        try:
            found = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": RUN_PREFIX + parser_run_id}},
                ConsistentRead=True,
            ).get("Item")
        except Exception as error:
            raise _unavailable("read the run", error) from None
        return run_from_values(from_item(found)) if found else None

    def mark_cancelled(self, request_id: str, cancelled_at: str) -> None:
        """Note when the request was cancelled; a second cancel keeps the first time."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                UpdateExpression="SET cancelledAt = if_not_exists(cancelledAt, :at), updatedAt = :at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": cancelled_at}},
            )
        except Exception as error:
            raise _unavailable("record the cancellation", error) from None

    def current_outcome(self, request_id: str, parser_run_id: str) -> Outcome | None:
        try:
            found = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": RUN_PREFIX + parser_run_id}},
                ConsistentRead=True,
                ProjectionExpression="outcome",
            ).get("Item")
        except Exception as error:
            raise _unavailable("read the run", error) from None
        return Outcome(str(from_item(found)["outcome"])) if found and "outcome" in found else None

    # ---------------------------------------------------------------- reading

    def request(self, request_id: str) -> RequestRecord | None:
        try:
            found = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": _request_pk(request_id)}, "sk": {"S": REQUEST_SK}},
                ConsistentRead=True,
            ).get("Item")
        except Exception as error:
            raise _unavailable("read the request", error) from None
        return request_from_values(from_item(found)) if found else None

    def runs(self, request_id: str, *, limit: int, after: str | None = None) -> tuple[list[RunRecord], bool]:
        """Up to ``limit`` of the request's runs in id order, starting after the run id ``after``; and whether
        there may be more."""
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :run)",
            "ExpressionAttributeValues": {":pk": {"S": _request_pk(request_id)}, ":run": {"S": RUN_PREFIX}},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if after is not None:
            arguments["ExclusiveStartKey"] = {"pk": {"S": _request_pk(request_id)}, "sk": {"S": RUN_PREFIX + after}}
        try:
            response = self.client.query(**arguments)
        except Exception as error:
            raise _unavailable("read the request's runs", error) from None
        runs = [run_from_values(from_item(item)) for item in response.get("Items", [])]
        return runs, "LastEvaluatedKey" in response

    def outstanding(self, tenant_id: str) -> int:
        try:
            found = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": _tenant_pk(tenant_id)}, "sk": {"S": USAGE_SK}},
                ConsistentRead=True,
            ).get("Item")
        except Exception as error:
            raise _unavailable("read the tenant's usage", error) from None
        return int(from_item(found).get("outstanding", 0)) if found else 0

    def set_outstanding(self, tenant_id: str, value: int) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item({"pk": _tenant_pk(tenant_id), "sk": USAGE_SK, "outstanding": value}),
            )
        except Exception as error:
            raise _unavailable("set the tenant's usage", error) from None

    def set_outstanding_if(self, tenant_id: str, value: int, *, expected: int) -> bool:
        """Set the tenant's count only if it is still ``expected``; False when it had moved."""
        condition = (
            "outstanding = :expected" if expected else "attribute_not_exists(outstanding) OR outstanding = :expected"
        )
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item({"pk": _tenant_pk(tenant_id), "sk": USAGE_SK, "outstanding": value}),
                ConditionExpression=condition,
                ExpressionAttributeValues={":expected": {"N": str(expected)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        except Exception as error:
            raise _unavailable("set the tenant's usage", error) from None
        return True

    def requests_of(self, tenant_id: str | None, *, since: str = "") -> Iterator[RequestRecord]:
        """A tenant's requests (None: operators') made at ``since`` or later, oldest first, each read whole from its
        item: the ``byTenant`` index projects only the fields there were when it was made (a deployed index's
        projection cannot change), and is eventually consistent."""
        values: dict[str, Any] = {":tenant": {"S": _tenant_pk(tenant_id) if tenant_id else OPERATOR_PARTITION}}
        condition = "gsi1pk = :tenant"
        if since:  # DynamoDB refuses an empty key value
            condition += " AND gsi1sk >= :since"
            values[":since"] = {"S": since}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=BY_TENANT_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        try:
            for page in pages:
                for item in page.get("Items", []):
                    indexed = request_from_values(from_item(item))
                    yield self.request(indexed.request_id) or indexed
        except Exception as error:
            raise _unavailable("read the tenant's requests", error) from None

    def all_runs(self, request_id: str) -> Iterator[RunRecord]:
        after: str | None = None
        while True:
            runs, more = self.runs(request_id, limit=500, after=after)
            yield from runs
            if not more or not runs:
                return
            after = runs[-1].parser_run_id


def _value(outcome: Outcome | None) -> str | None:
    return outcome.value if outcome is not None else None
