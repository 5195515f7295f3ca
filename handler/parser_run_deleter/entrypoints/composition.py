"""What the three composition roots share: a root that builds its function's services on first use, once per
execution environment, and forgets them in one ``reset()``; and the adapters more than one function builds.

Each entry point module owns one ``Root``: it is the only place where adapters are chosen and wired to logic.
A SnapStart restore (``shared.snapstart``) and a test call ``reset()``; the next invocation builds afresh, from
the environment as it is then.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.extend_client import ExtendClient
from parser_run_deleter.adapters.extend_credentials import SecretCredentialsProvider
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.adapters.secret_store import SecretsManagerSource
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.tenants import TenantDirectory
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ExtendSettings

Services = TypeVar("Services")


class Root(Generic[Services]):
    """``build(clients, environment, closers)`` makes the services; whatever holds state it cannot reuse after a
    restore (connections, schedules) it appends to ``closers``, which ``reset()`` calls."""

    def __init__(self, build: Callable[[AwsClients, Mapping[str, str], list[Callable[[], None]]], Services]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._services: Services | None = None
        self._closers: list[Callable[[], None]] = []
        self.clients = AwsClients()

    def services(self) -> Services:
        with self._lock:
            if self._services is None:
                closers: list[Callable[[], None]] = []
                self._services = self._build(self.clients, os.environ, closers)
                self._closers = closers
            return self._services

    def reset(self) -> None:
        """Forget every service, connection, cached secret and schedule (SnapStart restores, tests)."""
        with self._lock:
            for close in self._closers:
                close()
            self._services, self._closers = None, []
        self.clients.reset()
        SecretsManagerSource.reset()


def secrets_source(clients: AwsClients, max_age_s: int) -> SecretsManagerSource:
    return SecretsManagerSource(clients.secretsmanager, max_age_s=max_age_s)


def extend_client(settings: ExtendSettings, clients: AwsClients, closers: list[Callable[[], None]]) -> ExtendClient:
    """Extend over one keep-alive pool, paced by two rate limiters: Extend limits reads apart from writes, so the
    ownership check's reads have a budget of their own."""
    secrets = secrets_source(clients, settings.secret_max_age_s)
    credentials = SecretCredentialsProvider(
        secrets, settings.extend_api_key_secret_id, max_age_s=settings.secret_max_age_s
    )
    client = ExtendClient(
        settings,
        credentials,
        AdaptiveRateLimiter(settings.max_requests_per_second),
        read_rate_limiter=AdaptiveRateLimiter(settings.max_requests_per_second),
    )
    closers.append(client.close)
    return client


def ledger(table_name: str, retention_days: int, clients: AwsClients) -> Ledger:
    return Ledger(LedgerTable(table_name, retention_days=retention_days, client=clients.dynamodb))


def tenant_directory(table_name: str, cache_s: float, clients: AwsClients) -> TenantDirectory:
    return TenantDirectory(TenantTable(table_name, clients.dynamodb), max_age_s=cache_s)
