"""The same calls and refusals with the parameters that harden a deployment: an organization's permissions boundary
on every role the stack creates, an operator role of the organization's own, a customer-managed key on the Extend
key's secret, and the deployer as the only one who may change the data key's policy."""

from __future__ import annotations

from typing import Final

import pytest

from tests.iam.conftest import Recording
from tests.support.iam_calls import BY_SECRETS_MANAGER, IamCall, calls_of
from tests.support.iam_deployment import ACCOUNT, REGION, Deployment, Policy
from tests.support.iam_evaluation import ADMINISTRATOR, DEPLOYER, OUTSIDE_PRINCIPALS, judge, refusals

pytestmark = pytest.mark.slow

BOUNDARY_ARN: Final = f"arn:aws:iam::{ACCOUNT}:policy/organization-boundary"
BROUGHT_OPERATOR_ROLE: Final = f"arn:aws:iam::{ACCOUNT}:role/platform-operators"
EXTEND_SECRET_KEY: Final = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/7e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
# A key's default policy: the account's IAM policies decide who may use it.
DEFAULT_KEY_POLICY: Final = Policy(
    "ExtendKeySecretKey",
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    },
)


def hardened(deployment: Deployment, boundary: Policy) -> Deployment:
    return Deployment(
        deployment.cfn,
        {
            "PermissionsBoundaryArn": BOUNDARY_ARN,
            "OperatorRoleArn": BROUGHT_OPERATOR_ROLE,
            "ExtendApiKeySecretKmsKeyArn": EXTEND_SECRET_KEY,
            "KeyPolicyAdministratorArn": OUTSIDE_PRINCIPALS[DEPLOYER],
        },
        boundary=boundary,
        key_policies={EXTEND_SECRET_KEY: DEFAULT_KEY_POLICY},
    )


def boundary_allowing(actions: list[str]) -> Policy:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return Policy("organization-boundary", {"Version": "2012-10-17", "Statement": [statement]})


def test_hardened_every_call_is_allowed_and_every_refusal_denied(recording: Recording, deployment: Deployment) -> None:
    # Given a deployment with every hardening parameter set, and a boundary allowing what the roles do
    actions = sorted({call.action for call in recording.calls})
    stack = hardened(deployment, boundary_allowing(actions))
    calls = calls_of(recording.logs.values(), stack)
    key_calls = [call for call in calls if call.resource == EXTEND_SECRET_KEY]
    cases = [case.call for case in refusals(stack, calls)]
    cases += [
        IamCall(ADMINISTRATOR, "kms:PutKeyPolicy", str(stack.data_key_arn)),
        IamCall("ApiFunctionRole", "kms:Decrypt", EXTEND_SECRET_KEY),  # not through Secrets Manager
        IamCall("CallbackFunctionRole", "kms:Decrypt", EXTEND_SECRET_KEY, BY_SECRETS_MANAGER).with_context(
            kms__ViaService=f"secretsmanager.{REGION}.amazonaws.com"
        ),
    ]
    deployer = IamCall(DEPLOYER, "kms:PutKeyPolicy", str(stack.data_key_arn))

    # When each is judged
    verdicts = judge([*calls, deployer, *cases], stack)

    # Then every call is allowed (the Extend key's secret decrypted through Secrets Manager, by the two roles that
    # read it), only the deployer changes the key policy, and every refusal is denied
    answers = verdicts[: len(calls)]
    denied = [f"{c.principal} {c.action} {c.resource}" for c, v in zip(calls, answers, strict=True) if not v.allowed]
    assert not denied, denied
    assert {call.principal for call in key_calls} == {"ApiFunctionRole", "QueueFunctionRole"}
    assert verdicts[len(calls)].allowed
    allowed = [
        f"{c.principal} {c.action} {c.resource}"
        for c, v in zip(cases, verdicts[len(calls) + 1 :], strict=True)
        if v.allowed
    ]
    assert not allowed, allowed


def test_the_permissions_boundary_bounds_every_role_the_stack_creates(
    recording: Recording, deployment: Deployment
) -> None:
    # Given a boundary that allows none of what the stack does
    stack = hardened(deployment, boundary_allowing(["s3:GetObject"]))
    calls = calls_of(recording.logs.values(), stack)

    # When every call is judged
    verdicts = judge(calls, stack)

    # Then each function role's call is denied by the boundary; the operator's role, the organization's own, has none
    for call, verdict in zip(calls, verdicts, strict=True):
        bounded = any(denial["policyType"] == "pb" for denial in verdict.denials)
        if call.principal == "OperatorRole":
            assert not bounded, call
        else:
            assert not verdict.allowed and bounded, call
    # and without the parameter no role has one
    assert all(not deployment.boundary_policies(role) for role in deployment.roles)
