"""Adapter for the table that remembers requests already served: Powertools' DynamoDB persistence layer for its
idempotency utility, over a client that knows its own writes."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# An attribute of our own on each record Powertools puts: which put wrote it.
WRITER_ATTRIBUTE: Final = "writtenBy"


class _OwnWritesClient:
    """The DynamoDB client as Powertools sees it, but for one thing: a conditional ``PutItem`` that fails because
    the record is there, and is the one this very call wrote, succeeds.

    That happens when botocore retries a put whose first attempt landed but whose answer was lost (a read timeout):
    the retry meets its own record. Powertools would read it as a twin request still in progress, and the caller
    would get a 409 for a request that nobody else made, and that is then never served. Each put carries a token of
    its own, and DynamoDB hands back the record that failed the condition, so the two cases are told apart exactly.
    """

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **arguments: Any) -> Any:
        token = uuid.uuid4().hex
        arguments["Item"] = {**arguments["Item"], WRITER_ATTRIBUTE: {"S": token}}
        try:
            return self._client.put_item(**arguments)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            answer: dict[str, Any] = dict(error.response)
            found = answer.get("Item", {})  # sent back: Powertools asks for ALL_OLD
            if found.get(WRITER_ATTRIBUTE, {}).get("S") == token:
                return {}
            raise


def persistence_layer(table_name: str, client: DynamoDBClient) -> DynamoDBPersistenceLayer:
    """A layer over the container's one DynamoDB client: a layer's own session would load DynamoDB's model again on
    a cold start. The replay guard takes one per purpose: a layer holds the configuration (key prefix, expiry) of
    the guard that last used it, so two guards that nest (a signed request, then its Idempotency-Key) must not
    share one."""
    own_writes: Any = _OwnWritesClient(client)  # duck-typed: Powertools calls the client's methods by name
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=own_writes)
