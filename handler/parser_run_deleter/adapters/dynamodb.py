"""Conversions between DynamoDB's typed items and Python values, and a cancelled transaction's reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer: Final = TypeSerializer()
_deserializer: Final = TypeDeserializer()


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
