"""Adapter for the table that remembers requests already served: Powertools' DynamoDB persistence layer for its
idempotency utility, one per table per container."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from parser_run_deleter.adapters.dynamodb import dynamodb_client


@cache
def persistence_layer(table_name: str, purpose: str) -> DynamoDBPersistenceLayer:
    """One layer per table and purpose: a layer holds the configuration (key prefix, expiry) of the guard that
    last used it, so two guards that nest (a signed request, then its Idempotency-Key) must not share one."""
    # The function's one DynamoDB client: a layer's own session would load DynamoDB's model again on a cold start.
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client())


def reset() -> None:
    """Forget the persistence layers and their DynamoDB clients (tests, and SnapStart restores)."""
    persistence_layer.cache_clear()
