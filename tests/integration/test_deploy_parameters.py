"""``tools/deploy_parameters.py``, the step of ``make deploy`` that writes the parameter overrides ``sam deploy``
gets, run as the Makefile runs it (its own process) against moto's IAM, STS and CloudFormation.

It keeps every override of the config environment, refuses the example's placeholder account, and fills in
``KeyPolicyAdministratorArn`` only when the config leaves it out: the stack's value once it is deployed, else a
CloudFormation service role, else the deploying role with its path.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from devstack.moto_stack import aws_client
from tools.deploy_parameters import DeployConfigError, overrides, principal_arn

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPER = REPO_ROOT / "tools" / "deploy_parameters.py"
EXAMPLE = REPO_ROOT / "docs" / "samconfig.example.toml"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's


def own_config(
    tmp_path: Path, stack_name: str, *, administrator: str | None = None, role_arn: str | None = None
) -> Path:
    """The example config as a deployer makes it theirs: their account and stack name, and optionally a key policy
    administrator or a CloudFormation service role of their own."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("111122223333", ACCOUNT)
    text = text.replace('stack_name = "extend-parser-run-deleter"', f'stack_name = "{stack_name}"')
    if administrator is not None:
        text = text.replace('# "KeyPolicyAdministratorArn=', f'"KeyPolicyAdministratorArn={administrator}", # ')
    if role_arn is not None:
        text = text.replace("# role_arn = ", f'role_arn = "{role_arn}" # ')
    config = tmp_path / "samconfig.prod.toml"
    config.write_text(text, encoding="utf-8")
    return config


def run_helper(config: Path, output: Path, endpoint: str, **credentials: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=credentials.get("AccessKeyId", "testing"),
        AWS_SECRET_ACCESS_KEY=credentials.get("SecretAccessKey", "testing"),
    )
    if "SessionToken" in credentials:
        env["AWS_SESSION_TOKEN"] = credentials["SessionToken"]
    command = [sys.executable, str(HELPER), str(config), "default", str(output)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def written(output: Path) -> dict[str, str]:
    document = json.loads(output.read_text(encoding="utf-8"))
    assert all(isinstance(value, str) for value in document.values())
    return dict(document)


def example_overrides() -> dict[str, str]:
    """The example's overrides, with a deployer's account in place of the placeholder one."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("111122223333", ACCOUNT)
    return overrides({"parameter_overrides": re.findall(r"^  [\"'](\w+=.*?)[\"'],$", text, re.MULTILINE)})


def assumed_role(endpoint: str, path: str) -> tuple[str, dict[str, str]]:
    """A role with a path, as SSO's and many CI roles have, and a session of it."""
    iam = aws_client("iam", endpoint)
    name = f"deploy-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps({"Statement": []}))["Role"][
        "Arn"
    ]
    session = aws_client("sts", endpoint).assume_role(RoleArn=arn, RoleSessionName="make-deploy")
    return arn, session["Credentials"]


def test_on_a_first_deploy_the_deploying_role_with_its_path_is_the_key_policy_administrator(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a config without KeyPolicyAdministratorArn, a stack not deployed yet, and a deployer in a role with a path
    role_arn, credentials = assumed_role(moto_endpoint, "/deployers/team/")
    config, output = own_config(tmp_path, f"first-{uuid.uuid4().hex[:6]}"), tmp_path / "parameters.yaml"

    # When make deploy writes the overrides
    result = run_helper(config, output, moto_endpoint, **credentials)

    # Then the role's own ARN, path included, is filled in, next to every override of the config, unchanged
    assert result.returncode == 0, result.stderr
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/deployers/team/{role_arn.rsplit('/', 1)[1]}"
    assert len(example_overrides()) >= 30
    assert written(output) == {**example_overrides(), "KeyPolicyAdministratorArn": role_arn}
    assert f"KeyPolicyAdministratorArn={role_arn}" in result.stderr


def test_a_deployed_stack_keeps_its_key_policy_administrator_whoever_deploys(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a stack deployed by someone else (its parameter names them), and another deployer now
    stack_name = f"deployed-{uuid.uuid4().hex[:6]}"
    original = f"arn:aws:iam::{ACCOUNT}:role/first-deployer"
    template = {"Parameters": {"KeyPolicyAdministratorArn": {"Type": "String"}}, "Resources": {}}
    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "KeyPolicyAdministratorArn", "ParameterValue": original}],
    )
    _, credentials = assumed_role(moto_endpoint, "/")
    output = tmp_path / "parameters.yaml"

    # When the other deployer runs make deploy
    result = run_helper(own_config(tmp_path, stack_name), output, moto_endpoint, **credentials)

    # Then the stack's value stays: a new one would change the key policy, which only the original may do
    assert result.returncode == 0, result.stderr
    assert written(output)["KeyPolicyAdministratorArn"] == original


def test_a_cloudformation_service_role_is_the_key_policy_administrator(moto_endpoint: str, tmp_path: Path) -> None:
    service_role = f"arn:aws:iam::{ACCOUNT}:role/cfn-deploy"
    config = own_config(tmp_path, f"svc-{uuid.uuid4().hex[:6]}", role_arn=service_role)
    output = tmp_path / "parameters.yaml"

    result = run_helper(config, output, moto_endpoint)

    assert result.returncode == 0, result.stderr
    assert written(output)["KeyPolicyAdministratorArn"] == service_role


def test_a_config_that_names_the_administrator_is_passed_on_without_asking_aws(tmp_path: Path) -> None:
    # Given a config that sets it, and no AWS to ask (nothing listens at the endpoint)
    chosen = f"arn:aws:iam::{ACCOUNT}:user/alice"
    config = own_config(tmp_path, "named", administrator=chosen)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    output = tmp_path / "parameters.yaml"

    result = run_helper(config, output, nowhere)

    assert result.returncode == 0, result.stderr
    assert written(output)["KeyPolicyAdministratorArn"] == chosen
    assert len(written(output)) == len(example_overrides()) + 1


def test_the_example_as_it_is_cannot_be_deployed(tmp_path: Path) -> None:
    # Given the example copied without replacing its placeholder account
    output = tmp_path / "parameters.yaml"

    result = run_helper(EXAMPLE, output, "http://127.0.0.1:9")

    # Then make deploy stops before sam deploy, naming what to change
    assert result.returncode == 2
    assert "ExtendApiKeySecretArn" in result.stderr and "111122223333" in result.stderr
    assert not output.exists()


def test_a_caller_the_key_policy_can_name_is_a_user_or_a_role() -> None:
    looked_up: list[str] = []

    def role_arn_of(name: str) -> str:
        looked_up.append(name)
        return f"arn:aws:iam::{ACCOUNT}:role/with/path/{name}"

    assert (
        principal_arn(f"arn:aws:iam::{ACCOUNT}:user/ops/alice", role_arn_of) == f"arn:aws:iam::{ACCOUNT}:user/ops/alice"
    )
    assert principal_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com", role_arn_of) == (
        f"arn:aws:iam::{ACCOUNT}:role/with/path/Admin"
    )
    assert looked_up == ["Admin"]
    assert principal_arn(f"arn:aws:iam::{ACCOUNT}:root", role_arn_of) == ""
    assert principal_arn(f"arn:aws:sts::{ACCOUNT}:federated-user/bob", role_arn_of) == ""


def test_overrides_are_read_as_sam_reads_them() -> None:
    # both of samconfig's forms: one string of pairs (quotes optional) and a list
    assert overrides({"parameter_overrides": 'A=1 B="" C="x y"'}) == {"A": "1", "B": "", "C": "x y"}
    assert overrides({"parameter_overrides": ["A=1", 'B=""']}) == {"A": "1", "B": ""}
    with pytest.raises(DeployConfigError, match="expected Name=Value"):
        overrides({"parameter_overrides": ["A"]})
    with pytest.raises(DeployConfigError, match="expected Name=Value"):
        overrides({"parameter_overrides": ["file://params.yaml"]})
