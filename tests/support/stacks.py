"""The world an in-process test runs in: loopback servers and the handler's environment, and what it emitted.

Given / When / Then in the tests reads as: the stack is arranged through real servers, the handler is invoked
with a Lambda-shaped event, and what it returned, logged, counted and did to the servers is asserted.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from devstack.extend_emulator import ExtendEmulator
from devstack.lambda_context import LocalLambdaContext
from devstack.logs import metric_totals
from devstack.moto_stack import QueuePair, aws_client, rotate_secret
from devstack.template import DEFAULT_TEMPLATE, TableSpec, Template
from opscli.tenants import AddedTenant, TenantAdmin
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.entrypoints import api_function, callback_function, queue_function
from tests.support.secret_guard import SECRET_VALUES, new_api_key, register_secret


@dataclass(frozen=True)
class Tables:
    """A test's tenant registry, replay store and ledger in moto, and where its tenants' signing secrets go."""

    tenants_table: str
    idempotency_table: str
    secret_prefix: str
    ledger_table: str


def create_tables(endpoint: str) -> Tables:
    """Fresh tables, shaped as the template declares them, and a fresh secret prefix: nothing leaks between tests."""
    dynamodb = aws_client("dynamodb", endpoint)
    suffix = uuid.uuid4().hex[:8]
    names = {}
    for logical_id, spec in _table_specs().items():
        names[logical_id] = f"{logical_id}-{suffix}"
        dynamodb.create_table(**spec.create_arguments(names[logical_id]))
    return Tables(names["TenantsTable"], names["IdempotencyTable"], f"test-{suffix}/tenants", names["LedgerTable"])


@cache
def _table_specs() -> dict[str, TableSpec]:
    return Template.load(DEFAULT_TEMPLATE, {"ExtendApiKeySecretArn": "placeholder"}).tables()


def reset_functions() -> None:
    """What a new container of each function starts with: nothing built, nothing cached (tenants, secrets, clients,
    replay stores); the next invocation builds its services from the environment as it is then."""
    for function in (api_function, queue_function, callback_function):
        function.root.reset()


@dataclass
class Emitted:
    """What the handler printed: Powertools JSON log lines and EMF metric blobs."""

    capsys: pytest.CaptureFixture[str]
    text: str = ""
    documents: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> Emitted:
        out = self.capsys.readouterr().out
        self.text += out
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                self.documents.append(json.loads(line))
        for value in SECRET_VALUES:
            assert value not in self.text, "a secret value was printed"
        return self

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [document for document in self.read().documents if "_aws" not in document]

    @property
    def outcome_logs(self) -> list[dict[str, Any]]:
        return [document for document in self.logs if "outcome" in document]

    def metric_totals(self) -> Counter[str]:
        return metric_totals(self.read().documents)

    def metric_dimensions(self, metric_name: str) -> list[dict[str, Any]]:
        return [
            {key: document.get(key) for dims in directive["Dimensions"] for key in dims}
            for document in self.read().documents
            for directive in document.get("_aws", {}).get("CloudWatchMetrics", [])
            if any(metric["Name"] == metric_name for metric in directive["Metrics"])
        ]


@dataclass
class InProcessStack:
    """One test's world for a handler called in this process: the secret and queues in moto, the Extend
    emulator, and the environment the handler reads (the ``stack`` fixture)."""

    endpoint: str
    extend: ExtendEmulator
    api_key: str
    secret_arn: str
    queues: QueuePair
    monkeypatch: pytest.MonkeyPatch
    workspace_id: str = "ws_test"
    tables: Tables | None = None
    tenant: AddedTenant = field(init=False)

    def tenant_admin(self) -> TenantAdmin:
        assert self.tables is not None
        return TenantAdmin(
            TenantTable(self.tables.tenants_table, aws_client("dynamodb", self.endpoint)),
            aws_client("secretsmanager", self.endpoint),
            self.tables.secret_prefix,
        )

    def register_tenant(self, tenant_id: str, *, ownership: str = "workspace", **definition: Any) -> AddedTenant:
        """Register a tenant as an operator would (``extend-deleter tenants add``); its secrets join the guarded
        ones."""
        added = self.tenant_admin().add(tenant_id, ownership=ownership, **definition)
        for secret in (added.signing_secret, added.callback_signing_secret):
            register_secret(secret)
            register_secret(secret.removeprefix("whsec_"))
        return added

    @contextmanager
    def aws_through(self, url: str) -> Iterator[None]:
        """The handler's AWS calls go to ``url`` (a fault proxy in front of moto) for the block, then to moto again;
        the tenancy caches, which hold clients, are rebuilt at each switch."""
        self.set_env(AWS_ENDPOINT_URL=url)
        reset_functions()
        try:
            yield
        finally:
            self.set_env(AWS_ENDPOINT_URL=self.endpoint)
            reset_functions()

    def set_env(self, **variables: str | None) -> None:
        for name, value in variables.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        reset_functions()

    def sqs(self) -> Any:
        return aws_client("sqs", self.endpoint)

    def rotate_key(self) -> str:
        """Rotate the Extend key: the new one goes into the secret, and Extend refuses the old one."""
        new_key = new_api_key()
        self.extend.add_key(new_key, workspace_id=self.workspace_id)
        rotate_secret(self.endpoint, self.secret_arn, new_key)
        self.extend.revoke_key(self.api_key)
        self.api_key = new_key
        return new_key

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = self.sqs()
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queues.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    @staticmethod
    def context(timeout_s: float = 30.0) -> LocalLambdaContext:
        return LocalLambdaContext(timeout_s=timeout_s)
