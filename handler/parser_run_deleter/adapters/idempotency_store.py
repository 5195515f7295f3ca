"""Adapter for the table that remembers requests already served: Powertools' DynamoDB persistence layer for its
idempotency utility, one per table per container."""

from __future__ import annotations

from functools import cache
from typing import Final

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.config import Config

# On every signed request's path: fail fast, so that the caller gets a 503 rather than a gateway timeout.
_DYNAMODB_CONFIG: Final = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"})


@cache
def persistence_layer(table_name: str, purpose: str) -> DynamoDBPersistenceLayer:
    """One layer per table and purpose: a layer holds the configuration (key prefix, expiry) of the guard that
    last used it, so two guards that nest (a signed request, then its Idempotency-Key) must not share one."""
    return DynamoDBPersistenceLayer(table_name=table_name, boto_config=_DYNAMODB_CONFIG)


def reset() -> None:
    """Forget the persistence layers and their DynamoDB clients (tests, and SnapStart restores)."""
    persistence_layer.cache_clear()
