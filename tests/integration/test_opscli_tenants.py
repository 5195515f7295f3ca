"""``extend-deleter tenants`` against moto's server: add (with and without creating the tenant's API key and usage
plan), list, show, disable, enable, rotate-secret and remove, as scripts call them (``--json``)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest

from devstack.moto_stack import aws_client
from opscli.cli import main
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.adapters.tenant_table import TenantTable
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import RequestTrigger, RunRecord
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.logic.webhook_signature import parse_signing_secrets, signing_secrets
from parser_run_deleter.shared.timestamps import now_iso
from tests.support.secret_guard import register_secret
from tests.support.stacks import Tables, create_tables

STAGE_RATE, STAGE_BURST = 10, 20


@pytest.fixture
def registry(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Tables:
    """A registry, found as the CLI finds it on a workstation: from the variables the template gives the API."""
    tables = create_tables(moto_endpoint)
    monkeypatch.setenv("TENANTS_TABLE_NAME", tables.tenants_table)
    monkeypatch.setenv("TENANT_SECRET_PREFIX", tables.secret_prefix)
    return tables


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    for line in out.getvalue().splitlines():  # whatever it printed is a secret from now on
        if line.startswith("{"):
            for name in ("signingSecret", "callbackSigningSecret", "apiKey"):
                if isinstance(json.loads(line).get(name), str):
                    register_secret(json.loads(line)[name])
    return status, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> Any:
    status, out, err = run(*argv, "--json")
    assert status == 0, err
    return json.loads(out)


def stored_secret(endpoint: str, tables: Tables, tenant_id: str) -> str:
    name = f"{tables.secret_prefix}/{tenant_id}/signing"
    value: str = aws_client("secretsmanager", endpoint).get_secret_value(SecretId=name)["SecretString"]
    return value


def test_add_registers_the_tenant_and_prints_its_signing_secret_once(moto_endpoint: str, registry: Tables) -> None:
    added = run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "workspace",
                     "--workspace-id", "ws_acme")  # fmt: skip
    assert added["tenantId"] == "acme" and added["apiKeyId"] == "k1a2b3c4d5"
    assert added["signingSecret"].startswith("whsec_") and "apiKey" not in added
    # The secret is in Secrets Manager under the prefix, and nowhere in the table
    stored = stored_secret(moto_endpoint, registry, "acme")
    assert parse_signing_secrets(stored) == parse_signing_secrets(added["signingSecret"])
    table = TenantTable(registry.tenants_table, aws_client("dynamodb", moto_endpoint))
    item = table.tenant("acme")
    assert item is not None and added["signingSecret"] not in json.dumps(item, default=str)
    assert item["ownership"] == "workspace" and item["workspaceId"] == "ws_acme"
    # and shown once: show and list never print it
    assert added["signingSecret"] not in run("tenants", "show", "acme")[1] + run("tenants", "list")[1]


def test_the_text_output_tells_the_operator_the_secret_is_shown_once(registry: Tables) -> None:
    status, out, err = run("tenants", "add", "beta", "--api-key-id", "b1c2d3e4f5", "--ownership", "unrestricted")
    assert status == 0
    secret_line = next(line for line in out.splitlines() if line.startswith("signingSecret "))
    register_secret(secret_line.split()[-1])
    assert "shown once" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ownership", "workspace", "--api-key-id", "k9k9k9k9k9"], "workspace"),
        (["--ownership", "metadata", "--api-key-id", "k9k9k9k9k9"], "metadata key"),
        (["--ownership", "workspace", "--workspace-id", "ws_x"], "--api-key-id"),
        (["--ownership", "workspace", "--workspace-id", "ws_x", "--api-key-id", "not a key id"], "key id"),
    ],
)
def test_an_incomplete_definition_is_a_one_line_error_and_registers_nothing(
    moto_endpoint: str, registry: Tables, arguments: list[str], message: str
) -> None:
    status, out, err = run("tenants", "add", "gamma", *arguments)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert run_json("tenants", "list") == []


def test_a_tenant_or_key_registered_already_is_refused_and_leaves_no_secret(
    moto_endpoint: str, registry: Tables
) -> None:
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    status, _, err = run("tenants", "add", "acme", "--api-key-id", "z9y8x7w6v5", "--ownership", "unrestricted")
    assert status == 2 and "exists already" in err
    # another tenant cannot take acme's key
    status, _, err = run("tenants", "add", "thief", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    assert status == 2 and "registered already" in err
    secrets = aws_client("secretsmanager", moto_endpoint)
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId=f"{registry.secret_prefix}/thief/signing")
    assert [tenant["tenantId"] for tenant in run_json("tenants", "list")] == ["acme"]


def test_disable_enable_show_and_list(registry: Tables) -> None:
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "workspace", "--workspace-id", "w1")
    run_json("tenants", "add", "beta", "--api-key-id", "b1c2d3e4f5", "--ownership", "metadata", "--metadata-key", "t")
    assert run_json("tenants", "disable", "acme")["status"] == "disabled"
    listed = {tenant["tenantId"]: tenant for tenant in run_json("tenants", "list")}
    assert listed["acme"]["status"] == "disabled" and listed["beta"]["status"] == "active"
    assert listed["beta"]["ownership"] == "metadata" and listed["beta"]["metadataKey"] == "t"
    assert run_json("tenants", "enable", "acme")["status"] == "active"
    assert run_json("tenants", "show", "acme")["apiKeyIds"] == ["k1a2b3c4d5"]
    status, _, err = run("tenants", "show", "nobody")
    assert status == 2 and "no tenant 'nobody'" in err


def test_rotate_secret_prints_the_new_one_and_keeps_the_old_one_for_the_overlap(
    moto_endpoint: str, registry: Tables
) -> None:
    old = run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    before = int(time.time())
    rotated = run_json("tenants", "rotate-secret", "acme", "--overlap", "600")
    assert rotated["signingSecret"] != old["signingSecret"] and rotated["overlapSeconds"] == 600
    entries = signing_secrets(stored_secret(moto_endpoint, registry, "acme"))
    assert [entry.secret for entry in entries] == [rotated["signingSecret"], old["signingSecret"]]
    assert entries[0].not_after is None
    assert entries[1].not_after is not None and before + 600 <= entries[1].not_after <= int(time.time()) + 600
    # a second rotation keeps two at most: the newest, and the one it replaced
    newest = run_json("tenants", "rotate-secret", "acme")
    entries = signing_secrets(stored_secret(moto_endpoint, registry, "acme"))
    assert [entry.secret for entry in entries] == [newest["signingSecret"], rotated["signingSecret"]]


def test_remove_deletes_the_tenant_its_key_mapping_and_its_secret(moto_endpoint: str, registry: Tables) -> None:
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    # without a terminal to confirm at, and without --yes, nothing is removed
    status, _, err = run("tenants", "remove", "acme")
    assert status == 2 and "--yes" in err and [t["tenantId"] for t in run_json("tenants", "list")] == ["acme"]
    assert run_json("tenants", "remove", "acme", "--yes")["removed"]["tenantId"] == "acme"
    assert run_json("tenants", "list") == []
    table = TenantTable(registry.tenants_table, aws_client("dynamodb", moto_endpoint))
    assert table.tenant("acme") is None and table.tenant_id_for_api_key("k1a2b3c4d5") is None
    secrets = aws_client("secretsmanager", moto_endpoint)
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId=f"{registry.secret_prefix}/acme/signing")
    # the key id is free again
    run_json("tenants", "add", "other", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")


def test_without_a_registry_the_cli_says_how_to_name_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTS_TABLE_NAME", raising=False)
    monkeypatch.delenv("TENANT_SECRET_PREFIX", raising=False)
    status, _, err = run("tenants", "list")
    assert status == 2 and "--stack-name" in err and "TENANTS_TABLE_NAME" in err


# ---------------------------------------------------------------- on a deployed stack: --stack-name


@pytest.fixture
def deployed(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Tables]:
    """A stack whose outputs name the registry and the API, as template.yaml's do (moto's CloudFormation)."""
    monkeypatch.delenv("TENANTS_TABLE_NAME", raising=False)
    monkeypatch.delenv("TENANT_SECRET_PREFIX", raising=False)
    tables = create_tables(moto_endpoint)
    apigateway = aws_client("apigateway", moto_endpoint)
    rest_api_id = apigateway.create_rest_api(name="deleter")["id"]
    outputs = {
        "RestApiId": rest_api_id,
        "StageName": "v1",
        "StageThrottle": f"{STAGE_RATE}/{STAGE_BURST}",
        "TenantsTableName": tables.tenants_table,
        "TenantSecretPrefix": tables.secret_prefix,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    stack_name = f"deleter-{rest_api_id}"
    aws_client("cloudformation", moto_endpoint).create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    return stack_name, rest_api_id, tables


def test_create_api_key_makes_the_tenants_own_key_and_usage_plan_below_the_stages(
    moto_endpoint: str, deployed: tuple[str, str, Tables]
) -> None:
    stack_name, rest_api_id, _ = deployed
    added = run_json("tenants", "add", "acme", "--ownership", "workspace", "--workspace-id", "ws_acme",
                     "--create-api-key", "--rate-limit", "2", "--burst-limit", "4", "--daily-quota", "500",
                     "--stack-name", stack_name)  # fmt: skip
    apigateway = aws_client("apigateway", moto_endpoint)
    key = apigateway.get_api_key(apiKey=added["apiKeyId"], includeValue=True)
    assert key["value"] == added["apiKey"] and key["enabled"] is True
    [plan] = [p for p in apigateway.get_usage_plans()["items"] if p["id"] == added["usagePlanId"]]
    assert plan["throttle"] == {"rateLimit": 2.0, "burstLimit": 4}
    assert plan["quota"]["limit"] == 500 and plan["quota"]["period"] == "DAY"
    assert plan["apiStages"] == [{"apiId": rest_api_id, "stage": "v1"}]
    assert [k["id"] for k in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [added["apiKeyId"]]

    # and removing the tenant removes what was made for it
    run_json("tenants", "remove", "acme", "--yes", "--stack-name", stack_name)
    assert added["usagePlanId"] not in [p["id"] for p in apigateway.get_usage_plans()["items"]]
    with pytest.raises(apigateway.exceptions.NotFoundException):
        apigateway.get_api_key(apiKey=added["apiKeyId"])


def test_rotate_api_key_replaces_a_leaked_key_in_the_tenants_plan_and_the_old_one_stops_at_once(
    moto_endpoint: str, deployed: tuple[str, str, Tables]
) -> None:
    stack_name, _, tables = deployed
    added = run_json("tenants", "add", "acme", "--ownership", "unrestricted", "--create-api-key",
                     "--stack-name", stack_name)  # fmt: skip

    rotated = run_json("tenants", "rotate-api-key", "acme", "--stack-name", stack_name)

    # Then the new key is the tenant's, in its own plan, and shown once; the old key no longer exists
    apigateway = aws_client("apigateway", moto_endpoint)
    assert rotated["apiKeyId"] != added["apiKeyId"] and rotated["apiKeyIds"] == [rotated["apiKeyId"]]
    assert apigateway.get_api_key(apiKey=rotated["apiKeyId"], includeValue=True)["value"] == rotated["apiKey"]
    plan_keys = apigateway.get_usage_plan_keys(usagePlanId=added["usagePlanId"])["items"]
    assert [key["id"] for key in plan_keys] == [rotated["apiKeyId"]]
    with pytest.raises(apigateway.exceptions.NotFoundException):
        apigateway.get_api_key(apiKey=added["apiKeyId"])
    # and the registry maps only the new key to the tenant
    table = TenantTable(tables.tenants_table, aws_client("dynamodb", moto_endpoint))
    assert table.tenant_id_for_api_key(rotated["apiKeyId"]) == "acme"
    assert table.tenant_id_for_api_key(added["apiKeyId"]) is None


def test_rotate_api_key_refuses_a_key_the_cli_did_not_make(registry: Tables) -> None:
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    status, _, err = run("tenants", "rotate-api-key", "acme")
    assert status == 2 and err.count("\n") == 1 and "--create-api-key" in err
    assert run_json("tenants", "show", "acme")["apiKeyIds"] == ["k1a2b3c4d5"]


def test_a_share_not_below_the_stages_is_refused_and_nothing_is_made(
    moto_endpoint: str, deployed: tuple[str, str, Tables]
) -> None:
    stack_name, _, _ = deployed
    plans_before = aws_client("apigateway", moto_endpoint).get_usage_plans()["items"]
    status, _, err = run("tenants", "add", "hog", "--ownership", "unrestricted", "--create-api-key",
                         "--rate-limit", str(STAGE_RATE), "--stack-name", stack_name)  # fmt: skip
    assert status == 2 and "below the stage's" in err
    assert aws_client("apigateway", moto_endpoint).get_usage_plans()["items"] == plans_before
    assert run_json("tenants", "list", "--stack-name", stack_name) == []


def test_an_explicit_flag_wins_over_the_stack_and_the_stack_over_the_environment_and_a_conflict_is_an_error(
    moto_endpoint: str, deployed: tuple[str, str, Tables], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_name, _, tables = deployed
    run_json("tenants", "add", "on-the-stack", "--ownership", "unrestricted", "--api-key-id", "s1t2a3c4k5",
             "--stack-name", stack_name)  # fmt: skip
    other = create_tables(moto_endpoint)

    # An environment variable naming another registry than the stack's: an error naming both, nothing done
    monkeypatch.setenv("TENANTS_TABLE_NAME", other.tenants_table)
    status, _, err = run("tenants", "list", "--stack-name", stack_name)
    assert status == 2
    assert tables.tenants_table in err and other.tenants_table in err and "TENANTS_TABLE_NAME" in err

    # An explicit flag chooses, whatever the stack says
    assert run_json("tenants", "list", "--stack-name", stack_name, "--table", other.tenants_table) == []
    # and with the variable agreeing with the stack, the stack's registry is used
    monkeypatch.setenv("TENANTS_TABLE_NAME", tables.tenants_table)
    assert [t["tenantId"] for t in run_json("tenants", "list", "--stack-name", stack_name)] == ["on-the-stack"]


def test_a_rotation_with_no_overlap_leaves_only_the_new_secret(moto_endpoint: str, registry: Tables) -> None:
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    rotated = run_json("tenants", "rotate-secret", "acme", "--overlap", "0")
    register_secret(rotated["signingSecret"])
    [only] = signing_secrets(stored_secret(moto_endpoint, registry, "acme"))
    assert only.secret == rotated["signingSecret"] and only.not_after is None
    # and the registry's secret version moved, so that warm functions read it again
    item = TenantTable(registry.tenants_table, aws_client("dynamodb", moto_endpoint)).tenant("acme")
    assert item is not None and int(item["signingSecretVersion"]) == 1


def test_add_prints_a_callback_signing_secret_apart_from_the_request_signing_one(
    moto_endpoint: str, registry: Tables
) -> None:
    added = run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted")
    register_secret(added["callbackSigningSecret"])
    assert added["callbackSigningSecret"].startswith("whsec_")
    assert added["callbackSigningSecret"] != added["signingSecret"]
    name = f"{registry.secret_prefix}/acme/callback-signing"
    stored = aws_client("secretsmanager", moto_endpoint).get_secret_value(SecretId=name)["SecretString"]
    assert [entry.secret for entry in signing_secrets(stored)] == [added["callbackSigningSecret"]]


# ---------------------------------------------------------------- the ledger's side: usage and receipts


def _ledger(moto_endpoint: str, tables: Tables) -> Ledger:
    return Ledger(LedgerTable(tables.ledger_table, retention_days=400, client=aws_client("dynamodb", moto_endpoint)))


def _request(ledger: Ledger, tenant_id: str | None, outcomes: dict[str, Outcome]) -> str:
    """A bulk request taken in, whose runs then reached ``outcomes``, recorded as the functions record them."""
    request = ledger.begin(tenant_id, RequestTrigger.API_BULK, {"callerApiKeyId": "k1a2b3c4d5"}, reserve=len(outcomes))
    ledger.take_in(request, [RunRecord(run_id, Outcome.QUEUED) for run_id in outcomes])
    for run_id, outcome in outcomes.items():
        if outcome is not Outcome.QUEUED:
            run = RunRecord(
                run_id,
                outcome,
                attempts=1,
                extend_status=200,
                extend_request_id=f"req_{run_id}",
                completed_at=now_iso(),
            )
            ledger.record_outcome(request.request_id, run, tenant_id=tenant_id)
    return request.request_id


def test_show_gives_the_tenants_outstanding_runs_its_cap_and_its_oldest_work(
    moto_endpoint: str, registry: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_TABLE_NAME", registry.ledger_table)
    run_json("tenants", "add", "acme", "--api-key-id", "k1a2b3c4d5", "--ownership", "unrestricted",
             "--max-outstanding", "50")  # fmt: skip
    ledger = _ledger(moto_endpoint, registry)
    _request(ledger, "acme", {"pr_1": Outcome.DELETED, "pr_2": Outcome.QUEUED, "pr_3": Outcome.QUEUED})
    shown = run_json("tenants", "show", "acme")
    assert (shown["outstanding"], shown["maxOutstanding"]) == (2, 50)
    assert shown["oldestOutstandingSince"].endswith("Z") and 0 <= shown["oldestOutstandingAgeSeconds"] < 600
    # a reservation a crashed intake left behind is repaired by a recount from the requests' own counters
    ledger.begin("acme", RequestTrigger.API_BULK, {}, reserve=7)
    assert run_json("tenants", "show", "acme")["outstanding"] == 9
    assert run_json("tenants", "recount", "acme")["outstanding"] == 2


def test_receipts_stream_every_run_of_the_tenants_requests_as_jsonl_or_csv(
    moto_endpoint: str, registry: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_TABLE_NAME", registry.ledger_table)
    ledger = _ledger(moto_endpoint, registry)
    first = _request(ledger, "acme", {"pr_a": Outcome.DELETED, "pr_b": Outcome.NOT_FOUND})
    second = _request(ledger, "acme", {"pr_c": Outcome.DELETED})
    _request(ledger, "other", {"pr_z": Outcome.DELETED})

    status, out, err = run("receipts", "--tenant", "acme")
    assert status == 0 and "2 requests, 3 runs" in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["deletionRequestId"], line["parserRunId"], line["outcome"]) for line in lines] == [
        (first, "pr_a", "deleted"), (first, "pr_b", "not_found"), (second, "pr_c", "deleted"),
    ]  # fmt: skip
    assert lines[0]["extendRequestId"] == "req_pr_a" and lines[0]["requestedBy"] == "k1a2b3c4d5"
    assert all(line["tenantId"] == "acme" and line["completedAt"] for line in lines)

    status, out, _ = run("receipts", "--tenant", "acme", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and [row["parserRunId"] for row in rows] == ["pr_a", "pr_b", "pr_c"]
    assert rows[0]["outcome"] == "deleted" and rows[0]["reason"] == ""

    # --since a date after today's requests: nothing; a malformed one: a one-line error
    status, out, _ = run("receipts", "--tenant", "acme", "--since", "2999-01-01")
    assert status == 0 and out == ""
    status, _, err = run("receipts", "--tenant", "acme", "--since", "yesterday")
    assert status == 2 and "--since" in err
