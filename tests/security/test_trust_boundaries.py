"""Trust boundaries: a signature authorizes one request only, and only the deletion queue's own records are acted on.

Each test is one finding of the second security review (docs/security.md lists them, with these tests): it failed
before the change that answers it. Against moto (registry, secrets, replay table, ledger, queues) and the Extend
emulator, whose request log proves what reached Extend.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from opscli.tenants import AddedTenant, SecretProtection, TenantAdmin
from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.entrypoints import queue_function
from parser_run_deleter.logic.ledger import Ledger
from parser_run_deleter.logic.ledger_records import request_id_for_message
from parser_run_deleter.shared.settings import ConfigurationError, load_extend_settings
from tests.support.api import API_KEY_ID, TENANT_ID, invoke, queued_messages, rest_event, signature_headers
from tests.support.queue_delivery import delivered
from tests.support.stacks import Emitted, InProcessStack, reset_functions

WS = "ws_test"
METADATA_API = "2026-02-09"
GLOBEX_KEY_ID = "g1l2o3b4e5"


def ledger_of(stack: InProcessStack) -> Ledger:
    from devstack.moto_stack import aws_client

    assert stack.tables is not None
    return Ledger(
        LedgerTable(stack.tables.ledger_table, retention_days=1, client=aws_client("dynamodb", stack.endpoint))
    )


def extend_calls(stack: InProcessStack, parser_run_id: str) -> list[Any]:
    return [request for request in stack.extend.requests if request.parser_run_id == parser_run_id]


def nothing_recorded_or_queued(stack: InProcessStack) -> None:
    assert queued_messages(stack) == []
    assert list(ledger_of(stack).requests_of(TENANT_ID)) == []


# ---------------------------------------------------------------- the signing contract binds the whole request


def test_a_signed_delete_cannot_delete_another_run_with_the_first_request_line_as_its_body(
    stack: InProcessStack,
) -> None:
    # Given a tenant's signed DELETE of one run, captured (signing contract v1 signed "DELETE /parser_runs/X")
    stack.extend.seed(["pr_x", "pr_y"], workspace_id=WS)
    captured = signature_headers(stack.tenant.signing_secret, None, method="DELETE", path="/parser_runs/pr_x")

    # When it is replayed as a DELETE of another run, whose body is the string the first one signed
    forged = rest_event(
        "DELETE", "/parser_runs/pr_y", body="DELETE /parser_runs/pr_x", headers=dict(captured), sign=False
    )
    answer = invoke(forged)

    # Then it is refused, and neither run reached Extend
    assert answer.status == 400 and answer.body == {"message": "a DELETE request takes no body"}
    assert stack.extend.requests == []
    assert stack.extend.exists("pr_y", workspace_id=WS) and stack.extend.exists("pr_x", workspace_id=WS)
    nothing_recorded_or_queued(stack)


@pytest.mark.parametrize(
    ("method", "path"), [("DELETE", "/parser_runs/pr_y"), ("GET", "/deletions/dr_00000000000000000000000000")]
)
def test_a_body_signed_for_post_deletions_cannot_drive_another_route(
    stack: InProcessStack, method: str, path: str
) -> None:
    # Given a signed bulk request, captured: its headers and its body
    stack.extend.seed(["pr_y"], workspace_id=WS)
    body = json.dumps({"parserRunIds": ["pr_y"]})
    captured = signature_headers(stack.tenant.signing_secret, body, method="POST", path="/deletions")

    # When its signature is sent on another route: with its body, and without
    with_body = invoke(rest_event(method, path, body=body, headers=dict(captured), sign=False))
    without = invoke(rest_event(method, path, headers=dict(captured), sign=False))

    # Then each is refused (a body where none belongs; a signature over another request line), and nothing ran
    assert (with_body.status, without.status) == (400, 401)
    assert stack.extend.requests == [] and stack.extend.exists("pr_y", workspace_id=WS)
    nothing_recorded_or_queued(stack)


def test_the_signed_payload_is_the_request_line_then_a_line_feed_and_the_body(stack: InProcessStack) -> None:
    # signing contract v2, spelled out by hand: what any Standard Webhooks library signs as the message
    stack.extend.seed(["pr_v2"], workspace_id=WS)
    body = '{"parserRunIds": ["pr_v2"]}'
    delete = signature_headers(stack.tenant.signing_secret, None, method="DELETE", path="/parser_runs/pr_v2")
    post = signature_headers(stack.tenant.signing_secret, body, method="POST", path="/deletions")
    assert invoke(rest_event("DELETE", "/parser_runs/pr_v2", headers=delete, sign=False)).status == 200
    assert invoke(rest_event("POST", "/deletions", body=body, headers=post, sign=False)).status == 202
    # and the body alone, signed as v1 signed it, no longer verifies
    v1 = signature_headers(stack.tenant.signing_secret, None, method="POST", path="/deletions")
    v1["webhook-signature"] = signature_headers(
        stack.tenant.signing_secret, None, method="", path="", webhook_id=v1["webhook-id"]
    )["webhook-signature"]
    assert invoke(rest_event("POST", "/deletions", body=body, headers=v1, sign=False)).status == 401


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/parser_runs/pr_b"), ("GET", "/deletions/dr_x")])
def test_a_delete_or_get_with_a_body_is_refused_before_anything_is_looked_up(
    stack: InProcessStack, method: str, path: str
) -> None:
    # Given a registry that cannot be read: any lookup would answer 503
    stack.set_env(TENANTS_TABLE_NAME="no-such-table")
    stack.extend.seed(["pr_b"], workspace_id=WS)

    # When a DELETE or GET arrives with a body, signed or not
    answers = [invoke(rest_event(method, path, body="{}", sign=signed)) for signed in (True, False)]

    # Then it is refused for its body (400), before the tenant, the signature or anything downstream is looked at
    assert [answer.status for answer in answers] == [400, 400]
    assert stack.extend.requests == [] and stack.extend.exists("pr_b", workspace_id=WS)


def test_the_same_webhook_id_with_another_method_route_or_body_gets_422_never_the_first_answer(
    stack: InProcessStack,
) -> None:
    # Given a tenant's DELETE served with one webhook-id
    stack.extend.seed(["pr_first", "pr_other"], workspace_id=WS)
    first = invoke(rest_event("DELETE", "/parser_runs/pr_first", headers={"webhook-id": "msg_once"}))
    assert first.status == 200

    # When requests of another route, id or method come signed with the same webhook-id
    others = [
        invoke(rest_event("DELETE", "/parser_runs/pr_other", headers={"webhook-id": "msg_once"})),
        invoke(
            rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_other"]}', headers={"webhook-id": "msg_once"})
        ),
        invoke(rest_event("GET", f"/deletions/{first.body['deletionRequestId']}", headers={"webhook-id": "msg_once"})),
    ]

    # Then each is a conflict, never served the first request's answer, and nothing more reached Extend
    assert [answer.status for answer in others] == [422, 422, 422]
    assert all("idempotent-replayed" not in answer.headers for answer in others)
    assert extend_calls(stack, "pr_other") == [] and queued_messages(stack) == []


# ---------------------------------------------------------------- only the deletion queue's own records


def forged_batch(*bodies: str) -> dict[str, Any]:
    """What a principal allowed lambda:InvokeFunction can hand the queue function: records SQS never delivered."""
    return sqs_event(*(sqs_record(body, message_id=f"m-forged-{n}") for n, body in enumerate(bodies)))


def test_an_sqs_shaped_event_handed_to_the_queue_function_directly_deletes_nothing(
    stack: InProcessStack, emitted: Emitted
) -> None:
    # Given runs in any workspace, and a principal that may invoke the queue function
    stack.extend.seed(["pr_victim"], workspace_id="ws_someone_else")
    stack.extend.seed(["pr_tenants"], workspace_id=WS)

    # When it hands the function SQS-shaped records: an operator's (organization-wide) and a tenant's
    event = forged_batch(
        json.dumps({"parserRunId": "pr_victim", "workspaceId": "ws_someone_else"}),
        json.dumps({"parserRunId": "pr_tenants", "tenantId": TENANT_ID}),
    )
    response = queue_function.lambda_handler(event, stack.context())

    # Then nothing is deleted, recorded or dead-lettered: each record is refused, returned, logged and counted
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == {"m-forged-0", "m-forged-1"}
    assert stack.extend.requests == []
    assert stack.dead_letters() == [] and list(ledger_of(stack).requests_of(None)) == []
    assert emitted.metric_totals()["ForeignRecordRefused"] == 2
    refused = [line for line in emitted.logs if line["message"].startswith("record refused")]
    assert {line["message_id"] for line in refused} == {"m-forged-0", "m-forged-1"}


def test_a_record_naming_another_queue_is_refused_even_with_a_real_receipt_handle(
    stack: InProcessStack, emitted: Emitted
) -> None:
    stack.extend.seed(["pr_elsewhere"], workspace_id=WS)
    event = delivered(stack, sqs_event(sqs_record(json.dumps({"parserRunId": "pr_elsewhere"}), message_id="m-1")))
    event["Records"][0]["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:some-other-queue"
    response = queue_function.lambda_handler(event, stack.context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert stack.extend.requests == [] and emitted.metric_totals()["ForeignRecordRefused"] == 1


def test_records_sqs_confirms_are_acted_on_beside_forged_ones_in_the_same_batch(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_real", "pr_fake"], workspace_id=WS)
    real = delivered(stack, sqs_event(sqs_record(json.dumps({"parserRunId": "pr_real"}), message_id="m-real")))
    fake = sqs_record(json.dumps({"parserRunId": "pr_fake"}), message_id="m-fake", queue_arn=stack.queues.queue_arn)
    response = queue_function.lambda_handler(sqs_event(*real["Records"], fake), stack.context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-fake"}]}
    assert not stack.extend.exists("pr_real", workspace_id=WS) and stack.extend.exists("pr_fake", workspace_id=WS)


def test_without_its_queue_configured_the_function_acts_on_no_record(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_unchecked"], workspace_id=WS)
    event = delivered(stack, sqs_event(sqs_record(json.dumps({"parserRunId": "pr_unchecked"}), message_id="m-u")))
    stack.set_env(DELETION_QUEUE_URL=None)
    # A function that cannot check where its records came from does not start: the batch returns, unread
    with pytest.raises(ConfigurationError, match="DELETION_QUEUE_URL"):
        queue_function.lambda_handler(event, stack.context())
    assert stack.extend.requests == []


def redriven(stack: InProcessStack, body: str, attributes: dict[str, str]) -> dict[str, Any]:
    record = sqs_record(
        body,
        message_id="m-redriven",
        message_attributes={name: {"stringValue": value, "dataType": "String"} for name, value in attributes.items()},
    )
    return delivered(stack, sqs_event(record))


def test_a_redriven_copy_whose_request_attribute_does_not_match_its_message_is_dead_lettered(
    stack: InProcessStack,
) -> None:
    # Given acme's queued run, and a copy on the DLQ whose DeletionRequestId attribute names another request
    stack.extend.seed(["pr_redriven"], workspace_id=WS)
    accepted = invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_redriven"]}'))
    [message] = queued_messages(stack)
    other = invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_decoy"]}')).body["deletionRequestId"]

    # When it comes back from a redrive
    response = queue_function.lambda_handler(
        redriven(stack, json.dumps(message), {"DeletionRequestId": other}), stack.context()
    )

    # Then it is dead-lettered as invalid, with the reason, and neither request counts it
    assert response == {"batchItemFailures": []}
    [dead] = stack.dead_letters()
    assert dead["MessageAttributes"]["FailureKind"]["StringValue"] == "invalid"
    assert "does not name the request" in dead["MessageAttributes"]["FailureReason"]["StringValue"]
    assert stack.extend.requests == []
    ledger = ledger_of(stack)
    for request_id in (accepted.body["deletionRequestId"], other):
        request = ledger.request(request_id)
        assert request is not None and request.transitions == 0


def test_an_operators_redriven_copy_is_recorded_only_under_the_request_of_the_message_it_came_from(
    stack: InProcessStack,
) -> None:
    # Given an operator's message dead-lettered on its last receive (Extend refused it), recorded under the request
    # named after it
    stack.extend.seed(["pr_op"], workspace_id=WS)
    stack.extend.inject("pr_op", Fault.status(403))
    last = sqs_record(json.dumps({"parserRunId": "pr_op"}), message_id="m-original", receive_count=99)
    assert queue_function.lambda_handler(delivered(stack, sqs_event(last)), stack.context()) == {
        "batchItemFailures": []
    }
    [copy] = stack.dead_letters()
    attributes = {name: value["StringValue"] for name, value in copy["MessageAttributes"].items()}
    assert attributes["DeletionRequestId"] == request_id_for_message("m-original")

    # When a copy comes back whose attribute names another request than the one its source message had
    lying = {**attributes, "DeletionRequestId": request_id_for_message("m-someone-else")}
    response = queue_function.lambda_handler(redriven(stack, copy["Body"], lying), stack.context())

    # Then it is dead-lettered as invalid, and nothing reached Extend
    assert response == {"batchItemFailures": []}
    assert [call.status for call in extend_calls(stack, "pr_op")] == [403]
    refused = stack.dead_letters()[-1]
    assert refused["MessageAttributes"]["FailureKind"]["StringValue"] == "invalid"

    # while the honest copy, redriven, is recorded under its own request, and deleted
    assert queue_function.lambda_handler(redriven(stack, copy["Body"], attributes), stack.context()) == {
        "batchItemFailures": []
    }
    assert not stack.extend.exists("pr_op", workspace_id=WS)
    [run] = ledger_of(stack).all_runs(attributes["DeletionRequestId"])
    assert run.outcome.value == "deleted"


# ---------------------------------------------------------------- tenant secrets


def test_tenant_secrets_are_encrypted_with_the_stacks_key_and_only_their_function_and_the_operator_read_them(
    stack: InProcessStack,
) -> None:
    # Given a deployed stack's protection (its key, its roles), as opscli reads it from the stack's outputs
    from devstack.moto_stack import aws_client

    key_arn = aws_client("kms", stack.endpoint).create_key()["KeyMetadata"]["Arn"]
    roles = {name: f"arn:aws:iam::123456789012:role/stack-{name}" for name in ("operator", "api", "callback")}
    protection = SecretProtection(key_arn, roles["operator"], roles["api"], roles["callback"])
    base = stack.tenant_admin()
    admin = TenantAdmin(base.table, base.secrets, base.secret_prefix, protection=protection)

    # When a tenant is added
    admin.add("protected", ownership="workspace", workspace_id=WS, api_key_ids=("p1r2o3t4e5",))

    # Then each of its secrets is under the stack's key, and its policy lets only its function and the operator
    # read it, and only the operator change it
    for secret_id, reader in (
        (admin.secret_id("protected"), "api"),
        (admin.callback_secret_id("protected"), "callback"),
    ):
        assert admin.secrets.describe_secret(SecretId=secret_id)["KmsKeyId"] == key_arn
        policy = json.loads(admin.secrets.get_resource_policy(SecretId=secret_id)["ResourcePolicy"])
        statements = {statement["Sid"]: statement for statement in policy["Statement"]}
        read, write = statements["OnlyItsFunctionAndTheOperatorRead"], statements["OnlyTheOperatorChangesIt"]
        assert (read["Effect"], read["Principal"], read["Action"]) == ("Deny", "*", "secretsmanager:GetSecretValue")
        assert read["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": sorted([roles[reader], roles["operator"]])}}
        assert write["Effect"] == "Deny" and "secretsmanager:PutSecretValue" in write["Action"]
        assert (
            "secretsmanager:DeleteSecret" in write["Action"] and "secretsmanager:PutResourcePolicy" in write["Action"]
        )
        assert write["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": roles["operator"]}}


# ---------------------------------------------------------------- rotation that revokes


def test_a_rotation_with_no_overlap_revokes_the_old_secret_on_a_warm_container(stack: InProcessStack) -> None:
    # Given a warm container that verified (and cached) acme's secret; tenants re-read from the registry each time
    stack.set_env(TENANT_CACHE_SECONDS="0")
    stack.extend.seed(["pr_r1", "pr_r2", "pr_r3"], workspace_id=WS)
    old = stack.tenant.signing_secret
    assert invoke(signed_with(old, "/parser_runs/pr_r1")).status == 200

    # When the operator rotates it with no overlap (an emergency)
    new = stack.tenant_admin().rotate_secret(TENANT_ID, overlap_s=0)

    # Then, with nothing reset, the old secret is refused and the new one works: the registry's newer secret
    # version made the container read the secret again, where its cache would have kept the old one 5 minutes
    assert invoke(signed_with(old, "/parser_runs/pr_r2")).status == 401
    assert invoke(signed_with(new, "/parser_runs/pr_r3")).status == 200
    assert stack.extend.exists("pr_r2", workspace_id=WS)


def signed_with(secret: str, path: str) -> dict[str, Any]:
    headers = signature_headers(secret, None, method="DELETE", path=path)
    return rest_event("DELETE", path, headers=headers, sign=False, api_key_id=API_KEY_ID)


# ---------------------------------------------------------------- no existence oracle in receipts


@pytest.fixture
def globex(stack: InProcessStack) -> AddedTenant:
    stack.set_env(EXTEND_API_VERSION=METADATA_API)
    tenant = stack.register_tenant("globex", ownership="metadata", metadata_key="tenant", api_key_ids=(GLOBEX_KEY_ID,))
    stack.extend.seed(["pr_initech"], workspace_id=WS, metadata={"tenant": "initech"})
    return tenant


def test_a_run_refused_by_ownership_leaves_the_same_receipt_as_a_missing_one(
    stack: InProcessStack, globex: AddedTenant
) -> None:
    # When globex deletes another customer's run, and one that exists nowhere
    receipts = {}
    for run in ("pr_initech", "pr_nowhere"):
        headers = signature_headers(globex.signing_secret, None, method="DELETE", path=f"/parser_runs/{run}")
        event = rest_event("DELETE", f"/parser_runs/{run}", headers=headers, sign=False, api_key_id=GLOBEX_KEY_ID)
        answer = invoke(event)
        assert answer.status == 404
        [receipt] = ledger_of(stack).all_runs(answer.body["deletionRequestId"])
        receipts[run] = receipt

    # Then both receipts read alike: not found, with no Extend status or request id (a 200 and a 404 before)
    for receipt in receipts.values():
        assert (receipt.outcome.value, receipt.extend_status, receipt.extend_request_id) == ("not_found", None, None)
    assert stack.extend.exists("pr_initech", workspace_id=WS)


def test_a_metadata_tenant_with_a_workspace_names_it_on_its_read_and_its_delete(stack: InProcessStack) -> None:
    # Given an organization-scoped key (every call must name a workspace) and a metadata tenant in ws_meta
    from tests.security.test_tenants import use_org_key

    use_org_key(stack)
    stack.set_env(EXTEND_API_VERSION=METADATA_API)
    tenant = stack.register_tenant(
        "meta", ownership="metadata", metadata_key="tenant", workspace_id="ws_meta", api_key_ids=("m1e2t3a4x5",)
    )
    reset_functions()
    stack.extend.seed(["pr_meta"], workspace_id="ws_meta", metadata={"tenant": "meta"})

    # When it deletes its run
    headers = signature_headers(tenant.signing_secret, None, method="DELETE", path="/parser_runs/pr_meta")
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_meta", headers=headers, sign=False, api_key_id="m1e2t3a4x5"))

    # Then both its GET and its DELETE named its workspace, and the run is gone
    assert answer.status == 200
    calls = extend_calls(stack, "pr_meta")
    assert [(call.method, call.headers.get("x-extend-workspace-id")) for call in calls] == [
        ("GET", "ws_meta"),
        ("DELETE", "ws_meta"),
    ]
    assert not stack.extend.exists("pr_meta", workspace_id="ws_meta")


# ---------------------------------------------------------------- inputs that are not Extend's or not ours


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661\u0660", "1e3", "-1", "0", "1001", " 5"])
def test_a_page_size_that_is_not_ascii_digits_in_range_is_a_400(stack: InProcessStack, limit: str) -> None:
    request_id = invoke(rest_event("POST", "/deletions", body='{"parserRunIds": ["pr_q"]}')).body["deletionRequestId"]
    answer = invoke(rest_event("GET", f"/deletions/{request_id}?limit={limit}"))
    assert answer.status == 400 and "limit" in answer.body["message"]


@pytest.mark.parametrize(
    "answer",
    [
        Fault.json(404, {"code": "NOT_FOUND", "message": "Not Found"}),  # a copied envelope, no request id
        Fault.json(404, {"message": "Not Found"}, with_request_id=True),  # a request id, but not Extend's envelope
    ],
)
def test_only_extends_own_404_with_its_request_id_is_not_found(stack: InProcessStack, answer: Fault) -> None:
    # Given a run that exists, behind something that answers 404 for it
    stack.extend.seed(["pr_behind"], workspace_id=WS)
    stack.extend.inject("pr_behind", *[answer] * 10)

    # When it is deleted, then the answer is a failure, never "not found": nothing says the run is gone
    result = invoke(rest_event("DELETE", "/parser_runs/pr_behind"))
    assert result.body["status"] != "not_found" and result.status != 404
    assert stack.extend.exists("pr_behind", workspace_id=WS)


@pytest.mark.parametrize(
    "url", ["https://api.extend.ai/v1", "https://api.extend.ai/parser_runs", "http://127.0.0.1:8080/extend/"]
)
def test_a_base_url_with_a_path_is_refused_at_start_up(url: str) -> None:
    with pytest.raises(ConfigurationError, match="without a path"):
        load_extend_settings({"EXTEND_API_KEY_SECRET_ID": "x", "EXTEND_API_BASE_URL": url})
