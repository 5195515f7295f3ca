"""What template.yaml says of the API and the tables behind it: routes, API keys, gateway responses, invoke permissions,
the tables' encryption and retention, the stage's logs and throttling.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import json
import re

import pytest

from parser_run_deleter.shared.settings import ConfigurationError, load_callback_settings
from tests.support.template import (
    API_FUNCTION,
    ROOT,
    Cfn,
    api_operations,
)


def test_api_serves_exactly_its_four_routes(cfn: Cfn) -> None:
    assert set(api_operations(cfn)) == {
        ("/{resource}/{id}", "delete"),  # every Extend resource type, as Extend's own paths name them
        ("/deletions", "post"),
        ("/deletions/{id}", "get"),  # a deletion request's status, from the ledger
        ("/deletions/{id}/cancel", "post"),
    }


def test_every_api_method_requires_an_api_key(cfn: Cfn) -> None:
    body = cfn.props("DeletionApi")["Body"]
    assert body["components"]["securitySchemes"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    for route, operation in api_operations(cfn).items():
        assert {"api_key": []} in operation.get("security", []), route
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", route


def test_gateway_rejections_answer_in_json(cfn: Cfn) -> None:
    responses = cfn.props("DeletionApi")["Body"]["x-amazon-apigateway-gateway-responses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"  # unknown route or method
    assert responses["INVALID_API_KEY"]["statusCode"] == "403"
    for name in ("MISSING_AUTHENTICATION_TOKEN", "INVALID_API_KEY"):
        assert json.loads(responses[name]["responseTemplates"]["application/json"])["message"]
    for name in ("DEFAULT_4XX", "DEFAULT_5XX"):
        assert responses[name]["responseTemplates"]["application/json"] == '{"message": $context.error.messageString}'


def test_nothing_invokes_a_function_except_this_api_the_queues_and_the_sweepers_rule(cfn: Cfn) -> None:
    assert not cfn.of_type("AWS::Lambda::Url")
    permissions = cfn.of_type("AWS::Lambda::Permission")
    assert permissions
    for name, permission in permissions.items():
        props = permission["Properties"]
        if props["Principal"] == "events.amazonaws.com":  # the sweeper's hourly rule, and it alone
            assert props["SourceArn"] == {"Fn::GetAtt": ["SweeperFunctionHourly", "Arn"]}, name
            assert cfn.function_behind(props["FunctionName"]) == "SweeperFunction"
            continue
        assert props["Principal"] == "apigateway.amazonaws.com", name
        source = json.dumps(props["SourceArn"])
        assert '"DeletionApi"' in source and "execute-api" in source, name
        assert cfn.function_behind(props["FunctionName"]) == API_FUNCTION


def test_the_stack_ships_no_shared_key_or_plan_each_tenant_gets_its_own(cfn: Cfn) -> None:
    # A key and usage plan shared by every caller would let one tenant take everyone's share: each tenant's are
    # made by `extend-deleter tenants add --create-api-key`, below the stage's limits, which the outputs publish for it.
    for kind in ("AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"):
        assert cfn.of_type(kind) == {}, kind
    outputs = cfn.doc["Outputs"]
    assert outputs["RestApiId"]["Value"] == {"Ref": "DeletionApi"}
    assert outputs["StageThrottle"]["Value"] == {"Fn::Sub": "${ApiThrottleRateLimit}/${ApiThrottleBurstLimit}"}
    assert outputs["TenantsTableName"]["Value"] == {"Ref": "TenantsTable"}
    assert outputs["TenantSecretPrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}/tenants"}


@pytest.mark.parametrize("table", ["TenantsTable", "IdempotencyTable", "LedgerTable"])
def test_tables_are_encrypted_with_the_stacks_key_and_billed_on_demand(cfn: Cfn, table: str) -> None:
    props = cfn.props(table)
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {
        "Fn::If": [
            "UseCmk",
            {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "DataKey"}},
            {"SSEEnabled": True},  # DynamoDB's own key, when the stack's is turned off
        ]
    }


def test_the_registry_survives_mistakes_and_replay_records_expire(cfn: Cfn) -> None:
    registry = cfn.resources["TenantsTable"]
    # Kept when the stack is deleted or the table replaced, but not left behind by a failed first deploy: without
    # deletion protection, which would stop CloudFormation removing it on that rollback.
    assert registry["DeletionPolicy"] == "RetainExceptOnCreate" and registry["UpdateReplacePolicy"] == "Retain"
    assert registry["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "DeletionProtectionEnabled" not in registry["Properties"]
    replays = cfn.props("IdempotencyTable")
    # Powertools' idempotency layer: partition key "id", expiry in "expiration"
    assert replays["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert replays["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


INDEXED_OUTCOMES = ("queued", "deleted", "not_found", "failed", "dead_lettered", "rejected")


def test_the_ledger_is_kept_as_audit_evidence_and_expires_by_its_retention(cfn: Cfn) -> None:
    ledger = cfn.resources["LedgerTable"]
    # The evidence that a customer's deletion happened: survives a stack deletion, a replacement, and a table
    # deleted by mistake (point-in-time recovery keeps a system backup of it); a failed first deploy removes it.
    assert ledger["DeletionPolicy"] == "RetainExceptOnCreate" and ledger["UpdateReplacePolicy"] == "Retain"
    props = ledger["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "DeletionProtectionEnabled" not in props
    # Single table (pk, sk); the byTenant index (gsi1pk, gsi1sk) serves a tenant's receipts, whole items.
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "byTenant",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            # the request's own fields, which receipts and usage read, and not its set of counted runs
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": [
                    "requestId",
                    "tenantId",
                    "trigger",
                    "createdAt",
                    "updatedAt",
                    "completedAt",
                    "audit",
                    "transitions",
                    # the counters of the outcomes there were when the index was made: its projection cannot
                    # change on a deployed table (CloudFormation refuses it), so the rest is read from each item
                    *(f"n_{outcome}" for outcome in INDEXED_OUTCOMES),
                ],
            },
        }
    ]
    # Items expire by expiresAt, which the functions set LedgerRetentionDays ahead.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    # The names the code writes and queries are the table's.
    adapter = (ROOT / "handler" / "parser_run_deleter" / "adapters" / "ledger_table.py").read_text(encoding="utf-8")
    for name in ("pk", "sk", "gsi1pk", "gsi1sk", "expiresAt", "byTenant"):
        assert f'"{name}"' in adapter, name


def test_a_failed_first_deploy_leaves_nothing_behind_and_a_deleted_stack_keeps_its_data(cfn: Cfn) -> None:
    # Retain is meant for a stack that existed: on the rollback of a failed first deploy, nothing was stored yet.
    retained = {
        name: resource["DeletionPolicy"]
        for name, resource in cfn.resources.items()
        if resource.get("DeletionPolicy", "Delete") != "Delete" and resource["Type"] != "AWS::Lambda::Version"
    }
    assert retained == {
        "DataKey": "RetainExceptOnCreate",
        "TenantsTable": "RetainExceptOnCreate",
        "LedgerTable": "RetainExceptOnCreate",
        # the account-wide setting made during that deploy would point at a deleted role: kept even then
        "ApiGatewayCloudWatchLogsRole": "Retain",
    }
    # UpdateReplacePolicy has no RetainExceptOnCreate, and needs none: only an existing resource is replaced.
    for name in retained:
        assert cfn.resources[name]["UpdateReplacePolicy"] == "Retain", name
    # and nothing could stop that rollback from deleting them
    for table in cfn.of_type("AWS::DynamoDB::Table").values():
        assert not table["Properties"].get("DeletionProtectionEnabled")


def test_ledger_retention_takes_the_whole_days_the_functions_accept(cfn: Cfn) -> None:
    # The functions refuse to start on anything but a whole number of days from 1 to 3650 (settings.py): the
    # stack refuses it at deploy, rather than deploying functions that fail every invocation.
    parameter = cfn.doc["Parameters"]["LedgerRetentionDays"]
    assert parameter["Type"] == "String"
    accepted = [days for days in range(0, 4000) if re.fullmatch(parameter["AllowedPattern"], str(days))]
    assert accepted == list(range(1, 3651))
    for malformed in ("2.5", "01", "-1", "", "1e3", " 400"):
        assert not re.fullmatch(parameter["AllowedPattern"], malformed), malformed
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    # and the functions' bounds are the same
    callback = {
        "TENANTS_TABLE_NAME": "t",
        "TENANT_SECRET_PREFIX": "p",
        "LEDGER_TABLE_NAME": "l",
        "CALLBACK_QUEUE_URL": "q",
        "MAX_RECEIVE_COUNT": "12",
    }
    for days in ("1", "3650", parameter["Default"]):
        settings = load_callback_settings({**callback, "LEDGER_RETENTION_DAYS": days})
        assert settings.ledger_retention_days == int(days)
    for days in ("0", "3651"):
        with pytest.raises(ConfigurationError, match="LEDGER_RETENTION_DAYS"):
            load_callback_settings({**callback, "LEDGER_RETENTION_DAYS": days})


def test_stage_writes_access_logs_and_throttles(cfn: Cfn) -> None:
    stage = cfn.props("DeletionApiv1Stage")
    log_group = cfn.ref_target(stage["AccessLogSetting"]["DestinationArn"])
    assert log_group == "ApiAccessLogGroup"
    access_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert access_format["apiKeyId"] == "$context.identity.apiKeyId"
    assert "$context.identity.apiKey" not in access_format.values()  # the key itself is never logged
    [settings] = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["DataTraceEnabled"] is False  # would log request bodies
