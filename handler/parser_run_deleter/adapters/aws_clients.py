"""The boto3 clients of one function's container: each built on first use, once, and dropped by ``reset()``.

A composition root owns one ``AwsClients`` and hands its methods to the adapters, so that an invocation that never
touches a service never pays for its client (tens of ms on a cold start), and a SnapStart restore or a test forgets
every connection in one call. All clients come from boto3's default session, whose service models are loaded once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient

# On request paths (the registry, the ledger): fail fast, so that a caller gets a 503 rather than a timeout.
DYNAMODB_CONFIG: Final = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3, "mode": "standard"})
# Short timeouts and one retry: a synchronous API request (8 s budget, then at most 2 x 4 s here) must answer inside
# the API function's 20 s timeout even when SQS hangs (botocore's defaults are 60 s per read, 3 attempts).
SQS_CONFIG: Final = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
# The longest one SQS call can take with the configuration above.
SQS_CALL_WORST_CASE_S: Final = 8.0
# A secret read is waited for only until the invocation's deadline; one left hanging must not keep its reader busy
# for botocore's default minutes.
SECRETS_CONFIG: Final = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


class AwsClients:
    def __init__(self) -> None:
        # boto3's session is not thread-safe while it builds a client; batch workers may race to the first call.
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def _client(self, service: str, config: Config) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                factory: Any = boto3.client  # the service name is a plain str here, not one of the stubs' literals
                client = self._clients[service] = factory(service, config=config)
            return client

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb", DYNAMODB_CONFIG)
        return client

    def sqs(self) -> SQSClient:
        client: SQSClient = self._client("sqs", SQS_CONFIG)
        return client

    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager", SECRETS_CONFIG)
        return client

    def reset(self) -> None:
        """Forget every client and its connections (SnapStart restores, tests)."""
        with self._lock:
            self._clients.clear()
