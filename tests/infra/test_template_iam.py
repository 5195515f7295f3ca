"""What template.yaml says of IAM: each role's grants, the data key's policy, the operator role, the permissions
boundary and the functions' concurrency ceilings.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.template import (
    ALL_QUEUES,
    API_FUNCTION,
    CALLBACK_FUNCTION,
    FUNCTIONS,
    OPERATOR,
    QUEUE_FUNCTION,
    SWEEPER_FUNCTION,
    Cfn,
    as_list,
    event_source_mapping,
    grants,
    statements,
    sub_target,
)

API_GATEWAY_LOGS_POLICY = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}
FUNCTION_ROLES = {
    QUEUE_FUNCTION: "QueueFunctionRole",
    API_FUNCTION: "ApiFunctionRole",
    CALLBACK_FUNCTION: "CallbackFunctionRole",
    SWEEPER_FUNCTION: "SweeperFunctionRole",
}
SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/tenants/"
# Each function reads one kind of tenant secret only: the API function the request-signing ones, the callback
# function the callback-signing ones (so that no callback can pass for a request). Secrets Manager appends six
# characters to a secret's name in its ARN.
TENANT_SIGNING_SECRETS = {"Fn::Sub": SECRETS + "*/signing-??????"}
TENANT_CALLBACK_SECRETS = {"Fn::Sub": SECRETS + "*/callback-signing-??????"}
TENANT_SECRETS = {"Fn::Sub": SECRETS + "*"}


def test_roles_use_no_wildcard_resources_and_no_managed_policies(cfn: Cfn) -> None:
    roles = cfn.of_type("AWS::IAM::Role")
    assert set(roles) == {*FUNCTION_ROLES.values(), "OperatorRole", "ApiGatewayCloudWatchLogsRole"}
    assert roles["OperatorRole"]["Condition"] == "CreateOperatorRole"
    # The stack's one managed policy is the operator's own, attached to the role it creates.
    assert set(cfn.of_type("AWS::IAM::ManagedPolicy")) == {"OperatorPolicy"}
    for name, role in roles.items():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if name == "ApiGatewayCloudWatchLogsRole":
            assert managed == [API_GATEWAY_LOGS_POLICY]
            assert role["Condition"] == "ConfigureApiGatewayAccount"
            continue
        # Not even AWSLambdaBasicExecutionRole: its logs permissions are on every log group.
        assert managed == [], name
        for statement, _ in statements(cfn, name):
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), f"{name}: {action}"
            for resource in as_list(statement["Resource"]):
                assert "*" not in json.dumps(sub_target(resource)) or allowed_wildcard(name, statement, resource), (
                    f"{name}: {resource}"
                )


def allowed_wildcard(role: str, statement: dict[str, Any], resource: Any) -> bool:
    """The few patterns a role may name: one kind of tenant secret, under the stack's own prefix (tenants come and
    go), to read; the operator's API keys and usage plans (made per tenant) and the ledger's index."""
    actions = as_list(statement["Action"])
    if resource == TENANT_SIGNING_SECRETS:
        return role == "ApiFunctionRole" and actions == ["secretsmanager:GetSecretValue"]
    if resource == TENANT_CALLBACK_SECRETS:
        return role == "CallbackFunctionRole" and actions == ["secretsmanager:GetSecretValue"]
    if role != "OperatorRole":
        return False
    operator_patterns = [
        TENANT_SECRETS,
        {"Fn::Sub": "${LedgerTable.Arn}/index/*"},
        *(
            {"Fn::Sub": f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/{path}/*"}
            for path in ("apikeys", "usageplans")
        ),
    ]
    return resource in operator_patterns


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_runs_as_its_own_role_and_writes_only_its_own_log_group(cfn: Cfn, function: str) -> None:
    role = FUNCTION_ROLES[function]
    assert cfn.props(function)["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    log_group = cfn.props(function)["LoggingConfig"]["LogGroup"]
    assert grants(cfn, role)["logs:PutLogEvents"] == [({"Fn::GetAtt": [cfn.ref_target(log_group), "Arn"]}, None)]
    assert grants(cfn, role)["logs:CreateLogStream"] == grants(cfn, role)["logs:PutLogEvents"]
    assert "logs:CreateLogGroup" not in grants(cfn, role)  # the stack creates it, with its retention
    # The function is created only once its permissions are in place.
    depends_on = as_list(cfn.resources[function].get("DependsOn", []))
    assert any(cfn.resources[name]["Type"] == "AWS::IAM::Policy" for name in depends_on)


DATA_KEY = ({"Fn::GetAtt": ["DataKey", "Arn"]}, "UseCmk")
SECRET_KEY = ({"Ref": "ExtendApiKeySecretKmsKeyArn"}, "HasSecretKmsKey")


TENANTS = ({"Fn::GetAtt": ["TenantsTable", "Arn"]}, None)
LEDGER = ({"Fn::GetAtt": ["LedgerTable", "Arn"]}, None)
CALLBACKS = ({"Fn::GetAtt": ["CallbackQueue", "Arn"]}, None)


def test_queue_function_may_read_the_key_poll_its_queue_record_outcomes_and_dead_letter_only(cfn: Cfn) -> None:
    queue, dlq = ({"Fn::GetAtt": ["DeletionQueue", "Arn"]}, None), ({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, None)
    log = ({"Fn::GetAtt": ["QueueFunctionLogGroup", "Arn"]}, None)
    assert grants(cfn, "QueueFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        "secretsmanager:GetSecretValue": [({"Ref": "ExtendApiKeySecretArn"}, None)],
        "kms:Decrypt": [SECRET_KEY, DATA_KEY],
        "kms:GenerateDataKey": [DATA_KEY],
        "dynamodb:GetItem": [TENANTS, LEDGER],  # reloads each message's tenant; reads the run's ledger entry
        # Each outcome, in one transaction: the run, its request's counters, the tenant's outstanding count; and
        # (PutItem) a run's source file added to its request. No DeleteItem or Query: only TTL removes items.
        "dynamodb:UpdateItem": [LEDGER],
        "dynamodb:PutItem": [LEDGER],
        # What the event source mapping needs; the queues' URLs come from the environment, never GetQueueUrl.
        "sqs:ChangeMessageVisibility": [queue],
        "sqs:DeleteMessage": [queue],
        "sqs:GetQueueAttributes": [queue],
        "sqs:ReceiveMessage": [queue],
        # Queues a run's source file (an item of its own), dead-letters with a reason, and queues the callback of
        # the request its outcome completes.
        "sqs:SendMessage": [queue, dlq, CALLBACKS],
    }


def test_the_sweeper_may_list_tenants_sweep_the_ledger_and_queue_callbacks_only(cfn: Cfn) -> None:
    log = ({"Fn::GetAtt": ["SweeperFunctionLogGroup", "Arn"]}, None)
    index = ({"Fn::Sub": "${LedgerTable.Arn}/index/byTenant"}, None)
    assert grants(cfn, "SweeperFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        "dynamodb:Scan": [TENANTS],  # every tenant, once an hour
        "dynamodb:Query": [index, LEDGER],  # each tenant's requests, then each expired request's runs
        "dynamodb:GetItem": [LEDGER],
        "dynamodb:PutItem": [LEDGER],  # a repaired count
        "dynamodb:UpdateItem": [LEDGER],
        "sqs:SendMessage": [CALLBACKS],
        "kms:Decrypt": [DATA_KEY],
        "kms:GenerateDataKey": [DATA_KEY],
    }
    # No Extend key, no tenant secret, no deletion queue: it never calls Extend nor a tenant.
    assert not any(action.startswith("secretsmanager:") for action in grants(cfn, "SweeperFunctionRole"))


def test_api_function_may_read_its_secrets_and_tenants_record_requests_and_enqueue_only(cfn: Cfn) -> None:
    queue = ({"Fn::GetAtt": ["DeletionQueue", "Arn"]}, None)
    log = ({"Fn::GetAtt": ["ApiFunctionLogGroup", "Arn"]}, None)
    replays = ({"Fn::GetAtt": ["IdempotencyTable", "Arn"]}, None)
    assert grants(cfn, "ApiFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        # The Extend key, and the tenants' request-signing secrets under the stack's own prefix: no other secret.
        "secretsmanager:GetSecretValue": [({"Ref": "ExtendApiKeySecretArn"}, None), (TENANT_SIGNING_SECRETS, None)],
        "kms:Decrypt": [SECRET_KEY, DATA_KEY],
        "kms:GenerateDataKey": [DATA_KEY],
        # The registry is read-only to the function: only operators change tenants.
        "dynamodb:GetItem": [TENANTS, LEDGER, replays],
        # Requests and their runs into the ledger, their status and pages of runs out: no Scan, and no
        # DeleteItem there (the ledger is audit evidence; only its TTL removes items).
        "dynamodb:PutItem": [LEDGER, replays],
        "dynamodb:UpdateItem": [LEDGER, replays],
        "dynamodb:BatchWriteItem": [LEDGER],
        "dynamodb:Query": [LEDGER],
        "dynamodb:DeleteItem": [replays],
        # A request completed at once queues its callback; what it cannot finish goes to the deletion queue.
        "sqs:SendMessage": [CALLBACKS, queue],
    }


def test_callback_function_may_poll_its_queue_read_tenants_and_their_secrets_and_record_deliveries_only(
    cfn: Cfn,
) -> None:
    log = ({"Fn::GetAtt": ["CallbackFunctionLogGroup", "Arn"]}, None)
    assert grants(cfn, "CallbackFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        # What the event source mapping needs, and ChangeMessageVisibility for the function's own backoff.
        "sqs:ReceiveMessage": [CALLBACKS],
        "sqs:DeleteMessage": [CALLBACKS],
        "sqs:ChangeMessageVisibility": [CALLBACKS],
        "sqs:GetQueueAttributes": [CALLBACKS],
        # Signs with the tenant's callback-signing secret; never reads the Extend key (it calls tenants, not Extend)
        # nor the secrets tenants sign their requests with.
        "secretsmanager:GetSecretValue": [(TENANT_CALLBACK_SECRETS, None)],
        # The tenant's callback URL from the registry; the request it reports on, and the delivery's state on it.
        "dynamodb:GetItem": [TENANTS, LEDGER],
        "dynamodb:UpdateItem": [LEDGER],
        # Receives from its encrypted queue; sends nothing, so it never encrypts.
        "kms:Decrypt": [DATA_KEY],
    }


@pytest.mark.parametrize("role", ["QueueFunctionRole", "ApiFunctionRole"])
def test_the_secrets_kms_key_is_usable_only_through_secrets_manager(cfn: Cfn, role: str) -> None:
    [statement] = [s for s, condition in statements(cfn, role) if condition == "HasSecretKmsKey"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
    }


@pytest.mark.parametrize("queue", ALL_QUEUES)
def test_queues_use_the_stacks_own_key_by_default(cfn: Cfn, queue: str) -> None:
    assert cfn.props(queue)["KmsMasterKeyId"] == {"Fn::If": ["UseCmk", {"Ref": "DataKey"}, "alias/aws/sqs"]}
    assert cfn.parameter_default("UseCustomerManagedKey") == "true"


def test_only_the_function_roles_and_the_operator_role_may_use_the_data_key(cfn: Cfn) -> None:
    key = cfn.resources["DataKey"]
    assert key["Condition"] == "UseCmk"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements_ = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    crypto = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:*"}
    users = [s for s in statements_.values() if crypto & set(as_list(s["Action"]))]
    [use] = users
    assert use["Principal"]["AWS"] == [
        {"Fn::GetAtt": ["QueueFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["CallbackFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["SweeperFunctionRole", "Arn"]},
        OPERATOR,
    ]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    # The account's administrators manage the key (so it can never become unmanageable) but cannot use it, nor
    # give themselves its use: no grant, no policy change, in their statement.
    admin = statements_["AccountAdministratorsManageTheKey"]
    assert admin["Principal"] == root
    for action in as_list(admin["Action"]):
        assert not action.startswith(("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt"))
        assert action not in {"kms:Create*", "kms:CreateGrant", "kms:Put*", "kms:PutKeyPolicy", "kms:*"}, action
    # A grant only for an AWS service acting for its caller (DynamoDB makes them for the tables)
    grant = statements_["GrantsOnlyForAwsServices"]
    assert grant["Principal"] == root and "kms:CreateGrant" in grant["Action"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # and the policy changed only by the principal named as the deployer, when one is named
    put = statements_["OnlyTheDeployerChangesThePolicy"]
    assert put["Principal"] == root and put["Action"] == "kms:PutKeyPolicy"
    assert put["Condition"] == {
        "Fn::If": [
            "HasKeyPolicyAdministrator",
            {"ArnEquals": {"aws:PrincipalArn": {"Ref": "KeyPolicyAdministratorArn"}}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    granting = [s for s in statements_.values() if {"kms:CreateGrant", "kms:PutKeyPolicy"} & set(as_list(s["Action"]))]
    assert granting == [grant, put]


def test_the_operator_role_exists_by_default_and_names_who_may_assume_it(cfn: Cfn) -> None:
    assert cfn.parameter_default("OperatorRoleArn") == ""
    role = cfn.resources["OperatorRole"]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {
        "AWS": {
            "Fn::If": [
                "HasOperatorTrustedPrincipal",
                {"Ref": "OperatorTrustedPrincipalArn"},
                {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
            ]
        }
    }
    outputs = cfn.doc["Outputs"]
    assert outputs["OperatorRoleArn"]["Value"] == OPERATOR
    assert outputs["ApiFunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}
    assert outputs["CallbackFunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["CallbackFunctionRole", "Arn"]}


def test_every_role_takes_the_permissions_boundary_when_one_is_given(cfn: Cfn) -> None:
    for name, role in cfn.of_type("AWS::IAM::Role").items():
        assert role["Properties"]["PermissionsBoundary"] == {
            "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
        }, name


@pytest.mark.parametrize(
    ("function", "reserved"),
    [(QUEUE_FUNCTION, "MaximumConcurrency"), (API_FUNCTION, "ApiFunctionReservedConcurrency")],
)
def test_each_function_has_a_concurrency_ceiling_by_default(cfn: Cfn, function: str, reserved: str) -> None:
    assert cfn.props(function)["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", {"Ref": reserved}, {"Ref": "AWS::NoValue"}]
    }
    assert cfn.parameter_default("EnableReservedConcurrency") == "true"


def test_the_callback_function_reserves_what_its_event_source_may_run(cfn: Cfn) -> None:
    # Equal to the mapping's MaximumConcurrency, like the queue function's: a throttled delivery would use up
    # one of the receives that space out its retries.
    reserved = event_source_mapping(cfn, "CallbackQueue")["ScalingConfig"]["MaximumConcurrency"]
    assert cfn.props(CALLBACK_FUNCTION)["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", reserved, {"Ref": "AWS::NoValue"}]
    }
