"""What every command shares: its AWS session (a profile, a region, the operator role assumed), the stack's outputs,
each setting found in one order, and one way to print.

A setting comes from the first of: the explicit flag, the stack's output (``--stack-name``), the environment
variable. A stack output and a variable that disagree are an error naming both: acting on the wrong stack is worse
than stopping.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

EXIT_OK, EXIT_INCOMPLETE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
SESSION_NAME: Final = "extend-deleter-cli"


class CliError(Exception):
    """The command cannot be done as asked: one line for the operator, and the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def aws_error(error: ClientError) -> str:
    """An AWS error as one line: its code and its message (an AccessDenied names the action and the resource)."""
    details = error.response.get("Error", {})
    code = details.get("Code") or type(error).__name__
    message = (details.get("Message") or "").splitlines()[0] if details.get("Message") else ""
    return f"{code}: {message}" if message else str(code)


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    err: TextIO

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    # ---- AWS

    @cached_property
    def session(self) -> boto3.Session:
        """boto3's session for ``--profile`` and ``--region``; with ``--role-arn``, as that role (the stack's
        ``OperatorRoleArn``), assumed once for the command."""
        session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
        if not self.args.role_arn:
            return session
        credentials = session.client("sts").assume_role(RoleArn=self.args.role_arn, RoleSessionName=SESSION_NAME)[
            "Credentials"
        ]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=session.region_name,
        )

    def client(self, service: str) -> Any:
        threads = getattr(self.args, "threads", 8)
        config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(10, threads + 2))
        return self.session.client(service, config=config)  # type: ignore[call-overload]  # a plain str service

    @cached_property
    def outputs(self) -> dict[str, str]:
        """The stack's outputs, by key; none without ``--stack-name``."""
        if not self.args.stack_name:
            return {}
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.args.stack_name)["Stacks"]
        except ClientError as error:
            raise CliError(f"cannot read stack {self.args.stack_name!r}: {aws_error(error)}", EXIT_BAD_INPUT) from None
        return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}

    def setting(self, flag: str | None, flag_name: str, output_key: str, env_name: str) -> str | None:
        """One setting, from the explicit flag, else the stack's output, else the environment variable."""
        if flag:
            return flag
        from_stack, from_env = self.outputs.get(output_key), os.environ.get(env_name) or None
        if from_stack and from_env and from_stack != from_env:
            raise CliError(
                f"the stack's output {output_key} ({from_stack}) and ${env_name} ({from_env}) disagree: unset "
                f"{env_name}, or pass {flag_name} to choose",
                EXIT_BAD_INPUT,
            )
        return from_stack or from_env

    # ---- printing

    def emit(self, document: Any, text: Callable[[], Iterable[str]]) -> None:
        """``document`` as one line of JSON with ``--json``; otherwise the lines ``text`` makes."""
        if self.as_json:
            self.out.write(json.dumps(document) + "\n")
            return
        for line in text():
            self.out.write(line + "\n")

    def note(self, line: str) -> None:
        """A remark for the operator (progress, a warning): on stderr, so stdout stays the command's data."""
        self.err.write(line + "\n")
