"""The one DynamoDB client of a container, and the conversions between DynamoDB's typed items and Python values.

The client is built on first use, so an invocation that never touches a table never pays for it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# On request paths (the registry, the ledger): fail fast, so that a caller gets a 503 rather than a timeout.
_DYNAMODB_CONFIG: Final = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3, "mode": "standard"})
_client_lock: Final = threading.Lock()
_serializer: Final = TypeSerializer()
_deserializer: Final = TypeDeserializer()


@cache
def _cached_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_DYNAMODB_CONFIG)


def dynamodb_client() -> DynamoDBClient:
    # boto3's session is not thread-safe while it builds a client; batch workers may race to the first call.
    with _client_lock:
        return _cached_client()


def reset() -> None:
    """Forget the DynamoDB client and its connections (tests, and SnapStart restores)."""
    with _client_lock:
        _cached_client.cache_clear()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed form of ``values``; None values are left out."""
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def to_value(value: Any) -> Any:
    return _serializer.serialize(value)


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def cancellation_codes(error: Exception) -> list[str]:
    """The per-item reasons of a cancelled transaction ("" where an item was fine)."""
    response = getattr(error, "response", {}) or {}
    return [reason.get("Code", "") or "" for reason in response.get("CancellationReasons", [])]
