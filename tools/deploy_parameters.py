"""The parameter overrides ``make deploy`` passes to ``sam deploy``: a config environment's own, plus
``KeyPolicyAdministratorArn`` when the environment does not set it.

The data key's policy lets only ``KeyPolicyAdministratorArn`` change it, and KMS refuses a policy that would lock
out the principal setting it: so the value must be exactly the deploying identity, which a newcomer should not
have to work out. In order:

1. the environment sets it: kept as it is;
2. the stack exists: the value it was deployed with, so that a deploy by someone else does not change who may
   change the key's policy (a change only that principal could make);
3. the environment names a CloudFormation service role (``role_arn``): that role, which is who calls KMS;
4. otherwise the caller: an IAM user's ARN, or for an assumed role (SSO, a CI role) the role's own ARN, read with
   ``iam:GetRole`` because the path is part of it and the session's ARN omits it. For the account's root user or
   a federated user it stays empty (any principal IAM allows to), with a warning.

Command-line overrides replace the config file's instead of adding to them, so all of them are written to one
file for ``sam deploy --parameter-overrides file://FILE`` (YAML; JSON is YAML too). Values copied from
docs/samconfig.example.toml with its placeholder account are refused before anything is deployed.

Usage: python tools/deploy_parameters.py CONFIG_FILE CONFIG_ENV OUTPUT_FILE (run with the SAM CLI's venv, which
has boto3; the credentials are the deploy's own: the config's profile and region, else the environment's).
"""

from __future__ import annotations

import json
import shlex
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

PARAMETER: Final = "KeyPolicyAdministratorArn"
EXAMPLE_ACCOUNT: Final = "111122223333"


class DeployConfigError(Exception):
    """The config cannot be deployed as it is; the message says what to change."""


def environment(config: dict[str, Any], env: str) -> dict[str, Any]:
    """The settings ``sam deploy`` reads from one config environment: global, then deploy."""
    if env not in config:
        raise DeployConfigError(f"no environment {env!r} in the config (it has {', '.join(sorted(config)) or 'none'})")
    sections = config[env]
    return {**sections.get("global", {}).get("parameters", {}), **sections.get("deploy", {}).get("parameters", {})}


def overrides(settings: dict[str, Any]) -> dict[str, str]:
    """``parameter_overrides`` as SAM reads it (a string of Key=Value pairs, or a list of them), by name."""
    raw = settings.get("parameter_overrides", [])
    entries = [raw] if isinstance(raw, str) else list(raw)
    found: dict[str, str] = {}
    for entry in entries:
        for token in shlex.split(str(entry)):
            name, sep, value = token.partition("=")
            if not sep or not name or name.startswith("file:"):
                raise DeployConfigError(f"parameter_overrides: expected Name=Value, got {token!r}")
            found[name] = value
    placeholders = sorted(name for name, value in found.items() if EXAMPLE_ACCOUNT in value)
    if placeholders:
        raise DeployConfigError(
            f"{', '.join(placeholders)} still name the example account {EXAMPLE_ACCOUNT}: put in your own values"
        )
    return found


def principal_arn(caller_arn: str, role_arn_of: Callable[[str], str]) -> str:
    """The IAM ARN a key policy can name for the caller: a user's own, an assumed role's role (with its path, from
    ``role_arn_of(name)``); empty for the root user or a federated user, which a key policy cannot name so."""
    resource = caller_arn.split(":", 5)[5] if caller_arn.count(":") >= 5 else ""
    if resource.startswith("user/"):
        return caller_arn
    if resource.startswith("assumed-role/"):
        return role_arn_of(resource.split("/")[1])
    return ""


def deployed_value(cloudformation: Any, stack_name: str) -> str | None:
    """The stack's current value of the parameter; None when there is no such stack (or no such parameter)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - only with credentials

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    for parameter in stacks[0].get("Parameters", []):
        if parameter["ParameterKey"] == PARAMETER:
            return str(parameter.get("ResolvedValue", parameter.get("ParameterValue", "")))
    return None


def key_policy_administrator(settings: dict[str, Any], session: Any) -> tuple[str, str]:
    """The value, and where it came from (for the note printed)."""
    stack_name = settings.get("stack_name")
    if stack_name:
        current = deployed_value(session.client("cloudformation"), str(stack_name))
        if current is not None:
            return current, f"stack {stack_name}'s current value"
    if settings.get("role_arn"):
        return str(settings["role_arn"]), "the CloudFormation service role (role_arn)"
    caller = session.client("sts").get_caller_identity()["Arn"]
    iam = session.client("iam")
    found = principal_arn(str(caller), lambda name: str(iam.get_role(RoleName=name)["Role"]["Arn"]))
    return found, f"the deploying identity ({caller})"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("Usage: ")[1])
        return 2
    config_file, env, output = Path(argv[0]), argv[1], Path(argv[2])
    try:
        settings = environment(tomllib.loads(config_file.read_text(encoding="utf-8")), env)
        found = overrides(settings)
    except (OSError, tomllib.TOMLDecodeError, DeployConfigError) as error:
        sys.stderr.write(f"make deploy: {config_file}: {error}\n")
        return 2
    if PARAMETER not in found:
        import boto3  # noqa: PLC0415 - the SAM CLI's venv has it

        session = boto3.Session(profile_name=settings.get("profile"), region_name=settings.get("region"))
        value, origin = key_policy_administrator(settings, session)
        found[PARAMETER] = value
        if value:
            sys.stderr.write(f"make deploy: {PARAMETER}={value}, {origin}\n")
        else:
            sys.stderr.write(
                f"make deploy: warning: {PARAMETER} is empty ({origin}): any principal IAM allows to may change the "
                "data key's policy; set it in the config to name the deploying role or user\n"
            )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
