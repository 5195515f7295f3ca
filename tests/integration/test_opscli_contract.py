"""The CLI's contract with the operator and with scripts: global options either side of the command, one-line
errors with a documented exit status, and the operator role assumed when asked (against moto's server)."""

from __future__ import annotations

import argparse
import io
import json
import uuid

import pytest

from devstack.moto_stack import aws_client
from opscli.cli import PROG, build_parser, main
from opscli.context import Context
from tests.support.stacks import Tables, create_tables


@pytest.fixture
def registry(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Tables:
    tables = create_tables(moto_endpoint)
    monkeypatch.setenv("TENANTS_TABLE_NAME", tables.tenants_table)
    monkeypatch.setenv("TENANT_SECRET_PREFIX", tables.secret_prefix)
    return tables


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_the_help_names_every_command() -> None:
    usage = build_parser().format_help()
    assert usage.startswith(f"usage: {PROG}")
    for command in ("enqueue", "status", "dlq", "redrive", "tenants", "receipts", "smoke"):
        assert command in usage


def test_global_options_work_before_and_after_the_command(registry: Tables) -> None:
    status, _, err = run("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    assert status == 0, err
    before = run("--json", "tenants", "list")
    after = run("tenants", "list", "--json")
    assert before[0] == after[0] == 0
    assert json.loads(before[1]) == json.loads(after[1]) and json.loads(after[1])[0]["tenantId"] == "acme"
    # without --json the same command prints text, not JSON
    assert run("tenants", "list")[1].startswith("acme ")


def test_an_aws_refusal_is_one_line_with_its_code_and_exit_status_1(moto_endpoint: str) -> None:
    status, out, err = run("tenants", "list", "--table", "no-such-table", "--secret-prefix", "p")
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "ResourceNotFoundException" in err


def test_a_stack_that_does_not_exist_is_bad_input(moto_endpoint: str) -> None:
    status, _, err = run("status", "--stack-name", "no-such-stack")
    assert status == 2 and err.count("\n") == 1 and "no-such-stack" in err and "Traceback" not in err


def test_role_arn_makes_every_call_as_the_assumed_operator_role(moto_endpoint: str) -> None:
    iam = aws_client("iam", moto_endpoint)
    role_name = f"operator-{uuid.uuid4().hex[:8]}"  # IAM is account-wide: one role of its own per run
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    args = argparse.Namespace(profile=None, region="us-east-1", role_arn=role_arn, stack_name=None)
    identity = Context(args, io.StringIO(), io.StringIO()).client("sts").get_caller_identity()
    assert f":assumed-role/{role_name}/extend-deleter-cli" in identity["Arn"]
    plain = Context(argparse.Namespace(**{**vars(args), "role_arn": None}), io.StringIO(), io.StringIO())
    assert "assumed-role" not in plain.client("sts").get_caller_identity()["Arn"]
