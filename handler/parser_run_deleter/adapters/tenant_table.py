"""Adapter for the tenant registry, a DynamoDB table with two kinds of item, both keyed by ``pk``:

- ``TENANT#<tenant id>``: the tenant (status, API key ids, ownership policy, limits, ...);
- ``APIKEY#<API Gateway key id>``: which tenant a key belongs to, so a request's key finds its tenant in one read.

Items go in and out as plain Python values (``logic.ports.TenantRecords``); what they mean is the logic's business
(``logic.tenants``). Writes that add or remove a key are transactions with conditions, so no key ever belongs to two
tenants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from parser_run_deleter.adapters.dynamodb import from_item, to_item
from parser_run_deleter.logic.tenants import RegistryUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TENANT_PREFIX: Final = "TENANT#"
API_KEY_PREFIX: Final = "APIKEY#"


class TenantTableUnavailable(RegistryUnavailable):
    """The registry could not be read or written. Carries the error's type only."""


class TenantConflict(ValueError):
    """A write's condition failed: the tenant exists (or not), or a key belongs to another tenant."""


class TenantTable:
    """``client`` is a DynamoDB client, or a function that makes one when first needed."""

    def __init__(self, table_name: str, client: DynamoDBClient | Callable[[], DynamoDBClient]) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        # A boto3 client is not callable; a function that makes one is.
        return self._client() if callable(self._client) else self._client

    def _get(self, pk: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key={"pk": {"S": pk}}, ConsistentRead=True)
        except Exception as error:  # botocore's messages can quote the request
            raise TenantTableUnavailable(f"cannot read the tenant registry: {type(error).__name__}") from None
        item = response.get("Item")
        return from_item(item) if item else None

    def tenant(self, tenant_id: str) -> dict[str, Any] | None:
        return self._get(TENANT_PREFIX + tenant_id)

    def tenant_id_for_api_key(self, api_key_id: str) -> str | None:
        item = self._get(API_KEY_PREFIX + api_key_id)
        tenant_id = item.get("tenantId") if item else None
        return tenant_id if isinstance(tenant_id, str) else None

    def tenants(self) -> Iterator[dict[str, Any]]:
        """Every tenant item: a scan, for operators and the hourly sweeper, never on a request's path."""
        paginator = self.client.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self.table_name,
                FilterExpression="begins_with(pk, :prefix)",
                ExpressionAttributeValues={":prefix": {"S": TENANT_PREFIX}},
            ):
                for item in page.get("Items", []):
                    yield from_item(item)
        except Exception as error:
            raise TenantTableUnavailable(f"cannot list the tenant registry: {type(error).__name__}") from None

    def save(
        self,
        tenant_id: str,
        values: Mapping[str, Any],
        *,
        create: bool,
        add_api_key_ids: Sequence[str] = (),
        remove_api_key_ids: Sequence[str] = (),
    ) -> None:
        """Write the tenant item (new when ``create``, else it must exist) and its key items, all or nothing."""
        tenant_item = to_item({**values, "pk": TENANT_PREFIX + tenant_id, "tenantId": tenant_id})
        condition = "attribute_not_exists(pk)" if create else "attribute_exists(pk)"
        writes: list[TransactWriteItemTypeDef] = [
            {"Put": {"TableName": self.table_name, "Item": tenant_item, "ConditionExpression": condition}}
        ]
        for key_id in add_api_key_ids:
            writes.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item({"pk": API_KEY_PREFIX + key_id, "tenantId": tenant_id}),
                        # A key already registered must be this tenant's: never take another tenant's key.
                        "ConditionExpression": "attribute_not_exists(pk) OR tenantId = :tenant",
                        "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
                    }
                }
            )
        for key_id in remove_api_key_ids:
            writes.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": API_KEY_PREFIX + key_id}},
                        "ConditionExpression": "tenantId = :tenant",
                        "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
                    }
                }
            )
        self._transact(writes)

    def remove(self, tenant_id: str, api_key_ids: Sequence[str]) -> None:
        writes: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": TENANT_PREFIX + tenant_id}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        ]
        writes += [
            {"Delete": {"TableName": self.table_name, "Key": {"pk": {"S": API_KEY_PREFIX + key_id}}}}
            for key_id in api_key_ids
        ]
        self._transact(writes)

    def _transact(self, writes: list[TransactWriteItemTypeDef]) -> None:
        try:
            self.client.transact_write_items(TransactItems=writes)
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = [reason.get("Code", "") for reason in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise TenantConflict(", ".join(reason or "None" for reason in reasons)) from None
            raise TenantTableUnavailable(f"cannot write the tenant registry: {', '.join(reasons)}") from None
        except Exception as error:
            raise TenantTableUnavailable(f"cannot write the tenant registry: {type(error).__name__}") from None
