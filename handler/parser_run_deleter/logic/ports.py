"""What logic needs from the outside world, as small protocols: Extend, the ledger, the tenant registry, the
queues, the secrets and the callback transport. Adapters implement them (the type checker proves each fits), the
composition root of each function hands them to logic, and tests hand logic real adapters against local servers.

The errors a port may raise are logic's too, so that logic never imports an adapter to catch one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from parser_run_deleter.logic.extend_results import DeleteResult, ReadResult
from parser_run_deleter.logic.ledger_records import RequestRecord, RunRecord
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.extend_resources import Resource
from parser_run_deleter.shared.time_budget import Deadline


class SecretUnavailable(RuntimeError):
    """The secret could not be read, or is not a string. Never carries the secret's value."""


class QueueSendError(RuntimeError):
    """SQS did not take the message. Carries no message content."""


class ReceiptsUnconfirmed(RuntimeError):
    """SQS could not be asked about the records' receipt handles now. Carries the error's type only."""


class CallbackRefused(ValueError):
    """The URL may not be called (its scheme, or an address it resolves to); the message says why."""


@dataclass(frozen=True, slots=True)
class DeliveryAnswer:
    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class ExtendItems(Protocol):
    """Extend's deletable items (runs of every type, and files): delete one, or read one for its metadata, status
    and source file, within a deadline; a parse run unless ``resource`` says otherwise. Never raises for Extend's
    answers: every one becomes a result."""

    def delete(
        self, item_id: str, deadline: Deadline, *, resource: Resource | None = None, workspace_id: str | None = None
    ) -> DeleteResult: ...

    def read(
        self, item_id: str, deadline: Deadline, *, resource: Resource | None = None, workspace_id: str | None = None
    ) -> ReadResult: ...


class SecretSource(Protocol):
    """Secret strings, cached by the adapter; ``force_fetch`` reads past the cache. Raises ``SecretUnavailable``."""

    def secret_string(self, secret_id: str, *, force_fetch: bool = False) -> str: ...


class TenantRoster(Protocol):
    """Every tenant's registry item, as plain values (the sweeper's). Raises ``tenants.RegistryUnavailable``."""

    def tenants(self) -> Iterator[Mapping[str, Any]]: ...


class TenantRecords(Protocol):
    """The tenant registry's items, as plain values. Raises ``tenants.RegistryUnavailable``."""

    def tenant(self, tenant_id: str) -> Mapping[str, Any] | None: ...

    def tenant_id_for_api_key(self, api_key_id: str) -> str | None: ...


class MessageQueue(Protocol):
    """One SQS queue, as a producer: ``{key: body}`` in, the keys SQS acknowledged out. No call starts that could
    outlast the deadline; what was not sent is simply not acknowledged."""

    @property
    def worst_case_call_s(self) -> float: ...

    def enqueue(
        self,
        bodies: Mapping[str, str],
        *,
        deadline: Deadline | None = None,
        message_group_id: str | None = None,
        delay_s: int = 0,
    ) -> tuple[str, ...]: ...


class DeadLetterQueue(Protocol):
    """A dead-letter queue: park a message with its reason as attributes; the new message's id. Raises
    ``QueueSendError``."""

    def dead_letter(self, body: str, attributes: Mapping[str, str | int | None]) -> str: ...


class SourceQueue(Protocol):
    """The queue a function consumes, as its consumer: confirm receipt handles, and hold one back."""

    @property
    def url(self) -> str: ...

    def confirm_receipts(self, receipt_handles: Mapping[str, str]) -> set[str]:
        """The keys whose handle SQS confirms as a message now in flight here. Raises ``ReceiptsUnconfirmed``."""
        ...

    def delay_redelivery(self, receipt_handle: str, seconds: int) -> bool:
        """Deliver the returned message again only after ``seconds``; False if SQS refused."""
        ...


class CallbackTransport(Protocol):
    """POST a signed callback to a tenant's URL within a deadline. Raises ``CallbackRefused`` for a URL it may not
    call."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> DeliveryAnswer: ...


class LedgerStore(Protocol):
    """Where deletion requests and their runs are kept, in logic's records. Every method raises
    ``LedgerUnavailable`` when the store cannot be read or written; the conditional ones ``OverCap`` or
    ``RunChanged`` as said."""

    def begin(self, request: RequestRecord, *, reserve: int = 0, cap: int | None = None) -> None: ...

    def record_intake(self, request: RequestRecord, runs: Sequence[RunRecord], *, released: int = 0) -> None: ...

    def record_single(self, request: RequestRecord, run: RunRecord, *, callback: Mapping[str, Any] | None) -> None: ...

    def transition(
        self,
        request_id: str,
        run: RunRecord,
        before: Outcome | None,
        *,
        tenant_id: str | None,
        outstanding_delta: int,
        create: RequestRecord | None = None,
    ) -> None: ...

    def settle(
        self,
        request_id: str,
        run: RunRecord,
        before: Outcome | None,
        *,
        tenant_id: str | None,
        outstanding_delta: int,
        create: RequestRecord | None = None,
    ) -> RequestRecord | None: ...

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
    ) -> RequestRecord | None: ...

    def update_run(self, request_id: str, run: RunRecord, before: Outcome | None) -> None: ...

    def count_runs(self, request_id: str, settled: Sequence[tuple[str, Outcome]]) -> RequestRecord | None: ...

    def add_outstanding(self, tenant_id: str, delta: int) -> None: ...

    def current_outcome(self, request_id: str, parser_run_id: str) -> Outcome | None: ...

    def mark_cancelled(self, request_id: str, cancelled_at: str) -> None: ...

    def add_run(self, request_id: str, tenant_id: str | None, run: RunRecord) -> bool: ...

    def run(self, request_id: str, parser_run_id: str) -> RunRecord | None: ...

    def complete(
        self, request_id: str, completed_at: str, callback: Mapping[str, Any] | None
    ) -> RequestRecord | None: ...

    def set_callback(self, request_id: str, callback: Mapping[str, Any]) -> None: ...

    def request(self, request_id: str) -> RequestRecord | None: ...

    def runs(self, request_id: str, *, limit: int, after: str | None = None) -> tuple[list[RunRecord], bool]: ...

    def all_runs(self, request_id: str) -> Iterator[RunRecord]: ...

    def outstanding(self, tenant_id: str) -> int: ...

    def set_outstanding(self, tenant_id: str, value: int) -> None: ...

    def set_outstanding_if(self, tenant_id: str, value: int, *, expected: int) -> bool: ...

    def requests_of(self, tenant_id: str | None, *, since: str = "") -> Iterator[RequestRecord]: ...
