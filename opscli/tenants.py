"""``tenants``: register the downstream customers who may call the API, and change or remove them.

Each tenant is a registry item (``parser_run_deleter.adapters.tenant_table``, with the function's own rules from
``parser_run_deleter.logic.tenants``) and two secrets in Secrets Manager under the stack's tenant prefix: the one
it signs its requests with, and the one its completion callbacks are signed with (a key of their own, so that a
callback can never pass for a request). Each holds up to two ``whsec_`` secrets during a rotation, is encrypted
with the stack's key, and has a resource policy: only the function that uses it and the operator may read it, only
the operator may change it. A secret is printed once, when it is made; it never goes into the table, an
environment variable or a log. On a deployed stack ``--create-api-key`` also creates the tenant's API Gateway key
and its own usage plan (rate, burst, daily quota), below the stage's limits.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any, Final

from botocore.exceptions import ClientError

from parser_run_deleter.adapters.tenant_table import TenantConflict, TenantTable
from parser_run_deleter.logic.authentication import callback_signing_secret_id, signing_secret_id
from parser_run_deleter.logic.tenants import (
    InvalidTenant,
    Tenant,
    TenantLimits,
    TenantStatus,
    new_tenant,
    tenant_from_item,
    validate_callback_url,
)
from parser_run_deleter.logic.webhook_signature import (
    SigningSecret,
    new_signing_secret,
    rotated,
    signing_secret_value,
)

# How long the replaced secret keeps verifying after a rotation, unless told otherwise.
DEFAULT_OVERLAP_S = 24 * 3600


class TenantError(RuntimeError):
    """The operation cannot be done as asked; the message is one line for the operator."""


@dataclass(frozen=True)
class StageApi:
    """The deployed API a tenant's usage plan is attached to, and the stage's own limits (plans stay below)."""

    rest_api_id: str
    stage: str
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class AddedTenant:
    tenant: Tenant
    signing_secret: str
    callback_signing_secret: str
    api_key_value: str | None = None  # only when the key was created here


# What only the operator may do to a tenant's secret (besides reading it, which the function using it may too).
SECRET_WRITE_ACTIONS: Final = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
)


@dataclass(frozen=True)
class SecretProtection:
    """How a deployed stack's tenant secrets are kept: encrypted with its key, and readable by the one function role
    that uses each kind (and the operator, who may replace it anyway), changeable by the operator alone."""

    kms_key_id: str | None
    operator_role_arn: str
    api_function_role_arn: str
    callback_function_role_arn: str

    def resource_policy(self, reader_role_arn: str) -> str:
        readers = sorted({reader_role_arn, self.operator_role_arn})
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "OnlyItsFunctionAndTheOperatorRead",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": "*",
                        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": readers}},
                    },
                    {
                        "Sid": "OnlyTheOperatorChangesIt",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": list(SECRET_WRITE_ACTIONS),
                        "Resource": "*",
                        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": self.operator_role_arn}},
                    },
                ],
            },
            separators=(",", ":"),
        )


class TenantAdmin:
    def __init__(
        self,
        table: TenantTable,
        secrets: Any,
        secret_prefix: str,
        apigateway: Any | None = None,
        protection: SecretProtection | None = None,
    ) -> None:
        self.table = table
        self.secrets = secrets
        self.secret_prefix = secret_prefix.rstrip("/")
        self.apigateway = apigateway
        self.protection = protection

    def secret_id(self, tenant_id: str) -> str:
        return signing_secret_id(self.secret_prefix, tenant_id)

    def callback_secret_id(self, tenant_id: str) -> str:
        return callback_signing_secret_id(self.secret_prefix, tenant_id)

    # ---- reading

    def get(self, tenant_id: str) -> Tenant:
        item = self.table.tenant(tenant_id)
        if item is None:
            raise TenantError(f"no tenant {tenant_id!r}")
        return tenant_from_item(item)

    def list(self) -> list[Tenant]:
        return sorted((tenant_from_item(item) for item in self.table.tenants()), key=lambda t: t.tenant_id)

    # ---- writing

    def add(
        self,
        tenant_id: str,
        *,
        ownership: str,
        api_key_ids: tuple[str, ...] = (),
        workspace_id: str | None = None,
        metadata_key: str | None = None,
        limits: TenantLimits | None = None,
        stage: StageApi | None = None,
        callback_url: str | None = None,
    ) -> AddedTenant:
        """Register a tenant, create its signing secret, and (with ``stage``) its API key and usage plan."""
        limits = limits or TenantLimits()
        tenant = new_tenant(
            tenant_id,
            ownership=ownership,
            api_key_ids=api_key_ids,
            workspace_id=workspace_id,
            metadata_key=metadata_key,
            limits=limits,
            callback_url=callback_url,
        )
        if not api_key_ids and stage is None:
            raise InvalidTenant("give the tenant's API key id (--api-key-id), or create one (--create-api-key)")
        if stage is not None:
            _check_below_stage(limits, stage)
        if self.table.tenant(tenant_id) is not None:
            raise TenantError(f"tenant {tenant_id!r} exists already")
        api_key_value = None
        if stage is not None:
            key_id, api_key_value, plan_id = self._create_api_key(tenant_id, limits, stage)
            tenant = replace(tenant, api_key_ids=(*tenant.api_key_ids, key_id), usage_plan_id=plan_id)
        secret, callback_secret = new_signing_secret(), new_signing_secret()
        try:
            self._create_secret(self.secret_id(tenant_id), secret, tenant_id, callbacks=False)
            self._create_secret(self.callback_secret_id(tenant_id), callback_secret, tenant_id, callbacks=True)
            self.table.save(tenant_id, tenant.to_values(), create=True, add_api_key_ids=tenant.api_key_ids)
        except Exception as error:
            # Leave nothing behind that could authenticate: not the secrets, nor a key this call made.
            self._delete_secrets(tenant_id)
            if stage is not None:
                self._delete_api_key(tenant)
            if isinstance(error, TenantConflict):
                raise TenantError(
                    f"tenant {tenant_id!r} or one of its API keys is registered already ({error})"
                ) from None
            raise
        return AddedTenant(tenant, secret, callback_secret, api_key_value)

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        tenant = replace(self.get(tenant_id), status=status)
        self.table.save(tenant_id, tenant.to_values(), create=False)
        return tenant

    def set_limits(self, tenant_id: str, **changes: float | int) -> Tenant:
        """Change some of the tenant's limits (``rate_limit``, ``burst_limit``, ``daily_quota``,
        ``max_outstanding``, ``deadline_days``); its usage plan follows when this tool made it."""
        tenant = self.get(tenant_id)
        limits = replace(tenant.limits, **changes)  # type: ignore[arg-type]  # the names are TenantLimits' own
        updated = new_tenant(
            tenant.tenant_id,
            ownership=tenant.ownership.value,
            api_key_ids=tenant.api_key_ids,
            workspace_id=tenant.workspace_id,
            metadata_key=tenant.metadata_key,
            limits=limits,
            status=tenant.status.value,
            usage_plan_id=tenant.usage_plan_id,
            callback_url=tenant.callback_url,
        )
        if tenant.usage_plan_id and self.apigateway is not None:
            self.apigateway.update_usage_plan(
                usagePlanId=tenant.usage_plan_id,
                patchOperations=[
                    {"op": "replace", "path": "/throttle/rateLimit", "value": str(limits.rate_limit)},
                    {"op": "replace", "path": "/throttle/burstLimit", "value": str(limits.burst_limit)},
                    {"op": "replace", "path": "/quota/limit", "value": str(limits.daily_quota)},
                ],
            )
        self.table.save(tenant_id, updated.to_values(), create=False)
        return updated

    def set_callback(self, tenant_id: str, callback_url: str | None) -> tuple[Tenant, str | None]:
        """Where the tenant is told of completed deletion requests (None: nowhere). A tenant registered before
        callbacks had a key of their own gets its callback-signing secret now: returned once, else None."""
        tenant = self.get(tenant_id)
        if callback_url is not None:
            validate_callback_url(callback_url)
        made = None
        if callback_url is not None and not self._secret_exists(self.callback_secret_id(tenant_id)):
            made = new_signing_secret()
            self._create_secret(self.callback_secret_id(tenant_id), made, tenant_id, callbacks=True)
        updated = replace(tenant, callback_url=callback_url)
        self.table.save(tenant_id, updated.to_values(), create=False)
        return updated, made

    def rotate_secret(
        self, tenant_id: str, *, overlap_s: int = DEFAULT_OVERLAP_S, now: int | None = None, callbacks: bool = False
    ) -> str:
        """A new signing secret (``callbacks``: the callback-signing one); the current one keeps verifying for
        ``overlap_s`` seconds, or stops at once with 0. The registry's secret version is bumped after the secret is
        written, so every warm container reads the new value within the tenant cache's time."""
        tenant = self.get(tenant_id)
        secret_id = self.callback_secret_id(tenant_id) if callbacks else self.secret_id(tenant_id)
        current = self.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        secret = new_signing_secret()
        moment = int(time.time()) if now is None else now
        self.secrets.put_secret_value(
            SecretId=secret_id, SecretString=rotated(current, secret, overlap_s=overlap_s, now=moment)
        )
        if callbacks:
            bumped = replace(tenant, callback_secret_version=tenant.callback_secret_version + 1)
        else:
            bumped = replace(tenant, secret_version=tenant.secret_version + 1)
        self.table.save(tenant_id, bumped.to_values(), create=False)
        return secret

    def rotate_api_key(self, tenant_id: str) -> tuple[Tenant, str]:
        """A new API key for the tenant, in its usage plan, in place of the one this tool made (a leaked key): the
        old key stops working at once. The new key's value is returned, to be shown once."""
        tenant = self.get(tenant_id)
        if self.apigateway is None or tenant.usage_plan_id is None:
            raise TenantError(
                f"tenant {tenant_id!r} has no API key made by this tool (--create-api-key): rotate its key where it "
                "was made, then register the new key id"
            )
        key = self.apigateway.create_api_key(name=f"tenant-{tenant_id}", enabled=True, tags={"tenant": tenant_id})
        new_id, value = str(key["id"]), str(key["value"])
        try:
            self.apigateway.create_usage_plan_key(usagePlanId=tenant.usage_plan_id, keyId=new_id, keyType="API_KEY")
            rotated_tenant = replace(tenant, api_key_ids=(new_id,))
            self.table.save(
                tenant_id,
                rotated_tenant.to_values(),
                create=False,
                add_api_key_ids=(new_id,),
                remove_api_key_ids=tenant.api_key_ids,
            )
        except Exception:
            self.apigateway.delete_api_key(apiKey=new_id)  # nothing half-made stays behind
            raise
        for old_id in tenant.api_key_ids:
            with contextlib.suppress(ClientError):  # already gone: the registry no longer names it anyway
                self.apigateway.delete_usage_plan_key(usagePlanId=tenant.usage_plan_id, keyId=old_id)
                self.apigateway.delete_api_key(apiKey=old_id)
        return rotated_tenant, value

    def remove(self, tenant_id: str) -> Tenant:
        """The tenant, its key mappings and its secrets. Its API Gateway key, when this tool created it, is deleted
        with its usage plan."""
        tenant = self.get(tenant_id)
        self.table.remove(tenant_id, tenant.api_key_ids)
        self._delete_secrets(tenant_id)
        if tenant.usage_plan_id and self.apigateway is not None:
            self._delete_api_key(tenant)
        return tenant

    # ---- helpers

    def _create_secret(self, secret_id: str, secret: str, tenant_id: str, *, callbacks: bool) -> None:
        what = "completion callbacks" if callbacks else "requests"
        arguments: dict[str, Any] = {
            "Name": secret_id,
            "SecretString": signing_secret_value((SigningSecret(secret),)),
            "Description": f"Standard Webhooks secrets signing the {what} of tenant {tenant_id} (newest first)",
        }
        protection = self.protection
        if protection is not None and protection.kms_key_id:
            arguments["KmsKeyId"] = protection.kms_key_id
        self.secrets.create_secret(**arguments)
        if protection is not None:
            reader = protection.callback_function_role_arn if callbacks else protection.api_function_role_arn
            self.secrets.put_resource_policy(
                SecretId=secret_id, ResourcePolicy=protection.resource_policy(reader), BlockPublicPolicy=True
            )

    def _secret_exists(self, secret_id: str) -> bool:
        try:
            self.secrets.describe_secret(SecretId=secret_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True

    def _delete_secrets(self, tenant_id: str) -> None:
        for secret_id in (self.secret_id(tenant_id), self.callback_secret_id(tenant_id)):
            try:
                self.secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise

    def _delete_api_key(self, tenant: Tenant) -> None:
        """The usage plan this tool made for the tenant, and the key in it."""
        if self.apigateway is None or tenant.usage_plan_id is None:
            return
        for key_id in tenant.api_key_ids:
            self.apigateway.delete_usage_plan_key(usagePlanId=tenant.usage_plan_id, keyId=key_id)
            self.apigateway.delete_api_key(apiKey=key_id)
        self.apigateway.delete_usage_plan(usagePlanId=tenant.usage_plan_id)

    def _create_api_key(self, tenant_id: str, limits: TenantLimits, stage: StageApi) -> tuple[str, str, str]:
        if self.apigateway is None:
            raise TenantError("creating an API key needs the API Gateway client")
        key = self.apigateway.create_api_key(name=f"tenant-{tenant_id}", enabled=True, tags={"tenant": tenant_id})
        plan = self.apigateway.create_usage_plan(
            name=f"tenant-{tenant_id}",
            description=f"The share of tenant {tenant_id}",
            throttle={"rateLimit": limits.rate_limit, "burstLimit": limits.burst_limit},
            quota={"limit": limits.daily_quota, "period": "DAY"},
            apiStages=[{"apiId": stage.rest_api_id, "stage": stage.stage}],
        )
        self.apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        return str(key["id"]), str(key["value"]), str(plan["id"])


def _check_below_stage(limits: TenantLimits, stage: StageApi) -> None:
    """Every tenant's share stays below the whole stage's, so that one tenant cannot take everyone's capacity."""
    if limits.rate_limit >= stage.rate_limit or limits.burst_limit >= stage.burst_limit:
        raise InvalidTenant(
            f"a tenant's rate and burst ({limits.rate_limit:g}/{limits.burst_limit}) must stay below the stage's "
            f"({stage.rate_limit:g}/{stage.burst_limit})"
        )
