"""Tenants: every request is a tenant's, proved by its own signature, served once, and reaching only its runs.

Against moto (registry, secrets, replay table, queues) and the Extend emulator, whose request log proves what
reached Extend. The issue-11 findings, each with the tests that now prove it fixed, are listed in docs/security.md.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from devstack.events import sqs_event, sqs_record
from devstack.extend_emulator import Fault
from devstack.moto_stack import rotate_secret
from opscli.tenants import AddedTenant
from parser_run_deleter.entrypoints import api_function, queue_function
from parser_run_deleter.intake.api_errors import FORBIDDEN_MESSAGE, UNAUTHENTICATED_MESSAGE
from parser_run_deleter.logic.tenants import TenantStatus
from tests.support.api import (
    API_KEY_ID,
    TENANT_CLAIM,
    TENANT_ID,
    Answer,
    accepted,
    http_event,
    invoke,
    queued_messages,
    rest_event,
    signature_headers,
)
from tests.support.clock import ManualClock
from tests.support.queue_delivery import delivered
from tests.support.secret_guard import new_api_key
from tests.support.stacks import Emitted, InProcessStack, reset_functions

WS = "ws_test"  # acme's workspace (the stack fixture's tenant)
OTHER_WS = "ws_beta"
METADATA_API = "2026-02-09"
BETA_KEY_ID = "b2c3d4e5f6"
GLOBEX_KEY_ID = "g1l2o3b4e5"


# ---------------------------------------------------------------- helpers


# The organization key's own default workspace: no tenant's. A call that fails to name its tenant's workspace
# lands here, finds nothing, and the test sees it (with a default equal to the tenant's, it would pass unnoticed).
KEY_DEFAULT_WS = "ws_key_default"


def use_org_key(stack: InProcessStack) -> None:
    """An organization-scoped Extend key, as the workspace policy needs: each call names its workspace, and the
    key's default workspace is none of the tenants'."""
    org_key = new_api_key()
    stack.extend.add_key(org_key, org_scoped=True)
    rotate_secret(stack.endpoint, stack.secret_arn, json.dumps({"apiKey": org_key, "workspaceId": KEY_DEFAULT_WS}))
    stack.api_key = org_key
    parameters.clear_caches()


@pytest.fixture(autouse=True)
def organization_key(stack: InProcessStack) -> None:
    """Every test here runs on the organization key, as the workspace policy is deployed."""
    use_org_key(stack)


def workspaces_named(stack: InProcessStack, parser_run_id: str) -> set[str | None]:
    return {request.headers.get("x-extend-workspace-id") for request in stack.extend.requests_for(parser_run_id)}


def signed_as(
    tenant: AddedTenant,
    method: str,
    path: str,
    *,
    api_key_id: str,
    body: str | None = None,
    secret: str | None = None,
    **signing: Any,
) -> dict[str, Any]:
    """A REST event from ``api_key_id``, signed with ``secret`` (default: the tenant's own) as its client signs."""
    headers = signature_headers(secret or tenant.signing_secret, body, method=method, path=path, **signing)
    if body is not None:
        headers["content-type"] = "application/json"
    return rest_event(method, path, body=body, headers=headers, api_key_id=api_key_id, sign=False)


def not_found_body(parser_run_id: str, resource: str = "parser_runs") -> dict[str, Any]:
    return {"id": parser_run_id, "resource": resource, "parserRunId": parser_run_id, "status": "not_found"}


def deletes_of(stack: InProcessStack, parser_run_id: str) -> list[Any]:
    return [r for r in stack.extend.requests if r.method == "DELETE" and r.parser_run_id == parser_run_id]


def consume(stack: InProcessStack, *bodies: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
    records = [sqs_record(json.dumps(body), receive_count=receive_count) for body in bodies]
    result: dict[str, Any] = queue_function.lambda_handler(delivered(stack, sqs_event(*records)), stack.context())
    return result


def dead_letter_kinds(stack: InProcessStack) -> dict[str, str]:
    """parser run id -> FailureKind of each dead-lettered message."""
    kinds = {}
    for message in stack.dead_letters():
        body = json.loads(message["Body"])
        kinds[body["parserRunId"]] = message["MessageAttributes"]["FailureKind"]["StringValue"]
    return kinds


def assert_refused(answer: Answer, status: int, stack: InProcessStack) -> None:
    message = {401: UNAUTHENTICATED_MESSAGE, 403: FORBIDDEN_MESSAGE}[status]
    assert (answer.status, answer.body) == (status, {"message": message})
    assert stack.extend.requests == [] and queued_messages(stack) == []


# ---------------------------------------------------------------- who is calling


def test_an_unknown_api_key_id_gets_403_and_reaches_nothing(stack: InProcessStack, emitted: Emitted) -> None:
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_1", api_key_id="zz9yy8xx7w"))
    assert_refused(answer, 403, stack)
    assert emitted.metric_totals()["TenantRefused"] == 1
    [refusal] = [log for log in emitted.read().logs if log["message"] == "caller refused"]
    assert "no tenant" in refusal["reason"]


def test_a_request_without_an_api_key_id_gets_403(stack: InProcessStack) -> None:
    assert_refused(invoke(rest_event("DELETE", "/parser_runs/pr_1", api_key_id=None)), 403, stack)


def test_an_http_api_caller_is_the_tenant_its_jwt_claim_names_and_nothing_else(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_jwt"], workspace_id=WS)
    # the claim names the tenant: served
    assert invoke(http_event("DELETE", "/parser_runs/pr_jwt")).status == 200
    stack.extend.reset_stats()
    # no claim, another claim, or a claim naming no tenant: refused
    for claims in ({}, {"sub": TENANT_ID}, {TENANT_CLAIM: "nobody"}):
        event = http_event("DELETE", "/parser_runs/pr_x", authorizer={"jwt": {"claims": claims, "scopes": None}})
        assert_refused(invoke(event), 403, stack)
    # and without the setting that names the claim, nobody gets in through the HTTP API
    stack.set_env(TENANT_CLAIM=None)
    assert_refused(invoke(http_event("DELETE", "/parser_runs/pr_x")), 403, stack)


def test_a_disabled_tenant_is_locked_out_once_its_cache_entry_expires(stack: InProcessStack, emitted: Emitted) -> None:
    # Given a warm container that has served the tenant, with a 30-second tenant cache on a clock the test moves
    stack.set_env(TENANT_CACHE_SECONDS="30")
    reset_functions()
    assert stack.tables is not None
    clock = ManualClock()
    api_function.root.services().authenticator.tenants.clock = clock  # the directory the function uses
    stack.extend.seed(["pr_d1", "pr_d2", "pr_d3", "pr_d4"], workspace_id=WS)
    assert invoke(rest_event("DELETE", "/parser_runs/pr_d1")).status == 200

    # When an operator disables it: within the cache's time the container still knows it as it was
    stack.tenant_admin().set_status(TENANT_ID, TenantStatus.DISABLED)
    clock.advance(29)
    assert invoke(rest_event("DELETE", "/parser_runs/pr_d2")).status == 200

    # Then once the entry has expired, its requests are refused, signed or not, and nothing reaches Extend
    clock.advance(2)
    stack.extend.reset_stats()
    assert_refused(invoke(rest_event("DELETE", "/parser_runs/pr_d3")), 403, stack)
    assert "disabled" in [log for log in emitted.read().logs if log["message"] == "caller refused"][-1]["reason"]
    # and enabling it lets it in again, as soon as the refusal's entry expires in turn
    stack.tenant_admin().set_status(TENANT_ID, TenantStatus.ACTIVE)
    clock.advance(31)
    assert invoke(rest_event("DELETE", "/parser_runs/pr_d4")).status == 200


def test_a_key_the_tenant_no_longer_has_is_refused_even_if_its_mapping_lingers(stack: InProcessStack) -> None:
    # Given acme's registry item without its key (removed from it), while the key's own mapping item lingers
    from parser_run_deleter.adapters.tenant_table import TenantTable

    stack.set_env(TENANT_CACHE_SECONDS="0")
    assert stack.tables is not None
    table = TenantTable(stack.tables.tenants_table, stack.tenant_admin().table.client)
    item = table.tenant(TENANT_ID)
    assert item is not None and table.tenant_id_for_api_key(API_KEY_ID) == TENANT_ID
    table.save(
        TENANT_ID, {**{k: v for k, v in item.items() if k not in ("pk", "tenantId")}, "apiKeyIds": []}, create=False
    )
    assert table.tenant_id_for_api_key(API_KEY_ID) == TENANT_ID  # the stale mapping

    # When a request comes with that key, then it is refused: a key must still be one of its tenant's
    assert_refused(invoke(rest_event("DELETE", "/parser_runs/pr_1")), 403, stack)


def test_a_removed_tenant_is_refused_and_its_secret_is_gone(stack: InProcessStack) -> None:
    stack.set_env(TENANT_CACHE_SECONDS="0")
    reset_functions()
    admin = stack.tenant_admin()
    admin.remove(TENANT_ID)
    assert_refused(invoke(rest_event("DELETE", "/parser_runs/pr_1")), 403, stack)
    # its secrets are gone at once, both of them, and so is its key's mapping: nothing of it authenticates anyone
    for secret_id in (admin.secret_id(TENANT_ID), admin.callback_secret_id(TENANT_ID)):
        with pytest.raises(admin.secrets.exceptions.ResourceNotFoundException):
            admin.secrets.describe_secret(SecretId=secret_id)
    assert admin.table.tenant(TENANT_ID) is None and admin.table.tenant_id_for_api_key(API_KEY_ID) is None


# ---------------------------------------------------------------- the signature, the tenant's own


def test_a_request_signed_with_another_tenants_secret_gets_401(stack: InProcessStack, emitted: Emitted) -> None:
    globex = stack.register_tenant("globex", api_key_ids=(GLOBEX_KEY_ID,), workspace_id=OTHER_WS)
    stack.extend.seed(["pr_acme"], workspace_id=WS)
    # acme's key, globex's (valid, registered) secret
    event = signed_as(
        stack.tenant, "DELETE", "/parser_runs/pr_acme", api_key_id=API_KEY_ID, secret=globex.signing_secret
    )
    assert_refused(invoke(event), 401, stack)
    assert emitted.metric_totals()["WebhookSignatureRejected"] == 1
    assert stack.extend.exists("pr_acme", workspace_id=WS)


@pytest.mark.parametrize(
    ("signed_method", "signed_path"),
    [
        ("DELETE", "/parser_runs/pr_other"),  # another id
        ("POST", "/parser_runs/pr_target"),  # another method
        ("DELETE", "/v1/parser_runs/pr_target"),  # the stage is not part of the route path
        ("DELETE", "/parser_runs/pr_target/"),
        ("delete", "/parser_runs/pr_target "),
    ],
)
def test_a_signature_for_another_method_or_path_does_not_authorize_this_one(
    stack: InProcessStack, signed_method: str, signed_path: str
) -> None:
    # Given a bodyless signed request captured by an attacker
    stack.extend.seed(["pr_target", "pr_other"], workspace_id=WS)
    headers = signature_headers(stack.tenant.signing_secret, None, method=signed_method, path=signed_path)

    # When its signature is sent with another request line
    event = rest_event("DELETE", "/parser_runs/pr_target", headers=headers, sign=False)

    # Then it is refused, and the run is untouched
    assert_refused(invoke(event), 401, stack)
    assert stack.extend.exists("pr_target", workspace_id=WS)


def test_the_signature_of_a_bodyless_request_covers_its_method_and_route_path(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_route"], workspace_id=WS)
    headers = signature_headers(stack.tenant.signing_secret, None, method="DELETE", path="/parser_runs/pr_route")
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_route", headers=headers, sign=False))
    assert answer.status == 200


def test_a_rotation_keeps_the_old_secret_for_its_overlap_then_only_the_new_one(stack: InProcessStack) -> None:
    stack.extend.seed([f"pr_rot_{n}" for n in range(4)], workspace_id=WS)
    admin, old = stack.tenant_admin(), stack.tenant.signing_secret

    # During the overlap, both secrets verify (a fresh container reads the rotated value)
    new = admin.rotate_secret(TENANT_ID, overlap_s=3600)
    reset_functions()
    for n, secret in enumerate((old, new)):
        path = f"/parser_runs/pr_rot_{n}"
        assert invoke(signed_as(stack.tenant, "DELETE", path, api_key_id=API_KEY_ID, secret=secret)).status == 200

    # Once it is over, the old one is refused and the new one still verifies
    newest = admin.rotate_secret(TENANT_ID, overlap_s=3600, now=int(time.time()) - 3601)
    reset_functions()
    for secret, status in ((new, 401), (newest, 200)):
        answer = invoke(
            signed_as(stack.tenant, "DELETE", "/parser_runs/pr_rot_2", api_key_id=API_KEY_ID, secret=secret)
        )
        assert answer.status == status, secret == new
    value = json.loads(admin.secrets.get_secret_value(SecretId=admin.secret_id(TENANT_ID))["SecretString"])
    assert len(value["secrets"]) == 2  # never more than two: the oldest was dropped


# ---------------------------------------------------------------- replays


def test_a_replayed_delete_gets_the_first_answer_and_never_reaches_extend_twice(
    stack: InProcessStack, emitted: Emitted
) -> None:
    stack.extend.seed(["pr_once"], workspace_id=WS)
    event = rest_event("DELETE", "/parser_runs/pr_once")
    first = invoke(event)
    again = invoke(json.loads(json.dumps(event)))
    assert (first.status, accepted(first)) == (
        200,
        {"id": "pr_once", "resource": "parser_runs", "parserRunId": "pr_once", "status": "deleted"},
    )
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert len(deletes_of(stack, "pr_once")) == 1
    assert emitted.metric_totals()["SignedRequestReplayed"] == 1


def test_a_replayed_bulk_request_queues_its_ids_once(stack: InProcessStack) -> None:
    body = json.dumps({"parserRunIds": ["pr_b1", "pr_b2"]})
    event = rest_event("POST", "/deletions", body=body)
    first, again = invoke(event), invoke(event)
    assert again.body == first.body and accepted(first) == {"queued": 2, "rejected": []}
    assert sorted(message["parserRunId"] for message in queued_messages(stack)) == ["pr_b1", "pr_b2"]


def test_the_same_webhook_id_with_another_payload_gets_422(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_first", "pr_second"], workspace_id=WS)
    assert invoke(rest_event("DELETE", "/parser_runs/pr_first", headers={"webhook-id": "msg_reused"})).status == 200
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_second", headers={"webhook-id": "msg_reused"}))
    assert answer.status == 422 and "webhook-id was used for another request" in answer.body["message"]
    assert deletes_of(stack, "pr_second") == [] and stack.extend.exists("pr_second", workspace_id=WS)


def test_a_signed_request_is_remembered_for_as_long_as_its_signature_could_verify(stack: InProcessStack) -> None:
    # Given a signed request dated as far ahead as a signature may be (5 minutes): it verifies until 5 minutes
    # after that date, so for nearly 10 minutes from now
    from parser_run_deleter.logic.webhook_signature import TOLERANCE_S
    from tests.integration.test_ledger import replay_expirations

    stack.extend.seed(["pr_window"], workspace_id=WS)
    signed_at = datetime.fromtimestamp(time.time() + TOLERANCE_S - 5, tz=UTC)
    headers = signature_headers(
        stack.tenant.signing_secret, None, method="DELETE", path="/parser_runs/pr_window", at=signed_at
    )
    assert invoke(rest_event("DELETE", "/parser_runs/pr_window", headers=headers, sign=False)).status == 200

    # Then its replay record outlives the last moment its signature verifies: a replay always finds it
    [expires_at] = replay_expirations(stack, "signed-request")
    assert expires_at >= signed_at.timestamp() + TOLERANCE_S


def test_a_5xx_the_route_answers_without_raising_is_not_remembered(stack: InProcessStack) -> None:
    # Given a DELETE that Extend refuses for good: the route answers 502 itself (no exception on the way)
    stack.extend.seed(["pr_refused"], workspace_id=WS)
    stack.extend.inject("pr_refused", Fault.error(403, "FORBIDDEN", "no"), Fault.error(403, "FORBIDDEN", "no"))
    event = rest_event("DELETE", "/parser_runs/pr_refused")
    first = invoke(event)
    assert first.status == 502

    # When the client sends the same signed request again, then it runs again: nothing of the failure was kept
    again = invoke(json.loads(json.dumps(event)))
    assert again.status == 502 and "idempotent-replayed" not in again.headers
    assert len(deletes_of(stack, "pr_refused")) == 2


def test_two_tenants_may_use_the_same_webhook_id(stack: InProcessStack) -> None:
    globex = stack.register_tenant("globex", api_key_ids=(GLOBEX_KEY_ID,), workspace_id=WS)
    stack.extend.seed(["pr_t1", "pr_t2"], workspace_id=WS)
    shared = {"webhook_id": "msg_same_for_both"}
    first = invoke(signed_as(stack.tenant, "DELETE", "/parser_runs/pr_t1", api_key_id=API_KEY_ID, **shared))
    second = invoke(signed_as(globex, "DELETE", "/parser_runs/pr_t2", api_key_id=GLOBEX_KEY_ID, **shared))
    assert first.status == second.status == 200


def test_a_failure_is_not_remembered_so_a_retry_runs_again(stack: InProcessStack) -> None:
    # Given Extend failing and the queue unreachable: the request gets a 503
    from devstack.extend_emulator import Fault

    stack.extend.seed(["pr_retry"], workspace_id=WS)
    stack.extend.inject("pr_retry", *[Fault.status(500)] * 3)
    good_queue = stack.queues.queue_url
    stack.set_env(DELETION_QUEUE_URL=good_queue.rsplit("/", 1)[0] + "/no-such-queue")
    event = rest_event("DELETE", "/parser_runs/pr_retry")
    assert invoke(event).status == 503

    # When the client retries the same signed request once things are well again
    stack.set_env(DELETION_QUEUE_URL=good_queue)
    again = invoke(json.loads(json.dumps(event)))

    # Then it ran again, and was served
    assert again.status == 200 and "idempotent-replayed" not in again.headers
    assert not stack.extend.exists("pr_retry", workspace_id=WS)


# ---------------------------------------------------------------- outages fail closed


def test_a_registry_outage_is_a_503_with_retry_after_never_an_unauthenticated_pass(stack: InProcessStack) -> None:
    stack.set_env(TENANTS_TABLE_NAME="no-such-table")
    reset_functions()
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_1"))
    assert answer.status == 503 and answer.headers["retry-after"]
    assert stack.extend.requests == []


def test_an_unreachable_replay_table_is_a_503_and_nothing_runs(stack: InProcessStack) -> None:
    stack.set_env(IDEMPOTENCY_TABLE_NAME="no-such-table")
    reset_functions()
    stack.extend.seed(["pr_kept"], workspace_id=WS)
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_kept"))
    assert answer.status == 503 and answer.headers["retry-after"]
    assert stack.extend.requests == [] and stack.extend.exists("pr_kept", workspace_id=WS)


# ---------------------------------------------------------------- ownership: workspace


def test_a_workspace_tenants_calls_name_its_workspace_and_anothers_run_looks_missing(stack: InProcessStack) -> None:
    # Given an organization-scoped key, acme's run in its workspace and beta's in another
    use_org_key(stack)
    stack.register_tenant("beta", api_key_ids=(BETA_KEY_ID,), workspace_id=OTHER_WS)
    stack.extend.seed(["pr_acme"], workspace_id=WS)
    stack.extend.seed(["pr_beta"], workspace_id=OTHER_WS)

    # When acme deletes its own run, beta's, and one that exists nowhere
    own = invoke(rest_event("DELETE", "/parser_runs/pr_acme"))
    cross = invoke(rest_event("DELETE", "/parser_runs/pr_beta"))
    missing = invoke(rest_event("DELETE", "/parser_runs/pr_nowhere"))

    # Then its own is deleted; beta's answers exactly as a missing id, and stays
    assert own.status == 200 and not stack.extend.exists("pr_acme", workspace_id=WS)
    assert (cross.status, accepted(cross)) == (404, not_found_body("pr_beta"))
    assert (missing.status, accepted(missing)) == (404, not_found_body("pr_nowhere"))
    assert cross.headers.keys() == missing.headers.keys()
    assert stack.extend.exists("pr_beta", workspace_id=OTHER_WS)
    # because every call named acme's workspace, and Extend refused the other's run
    assert {r.workspace_id for r in stack.extend.requests} == {WS}


def test_a_workspace_tenants_bulk_request_cannot_reach_another_workspace_through_the_queue(
    stack: InProcessStack,
) -> None:
    use_org_key(stack)
    stack.register_tenant("beta", api_key_ids=(BETA_KEY_ID,), workspace_id=OTHER_WS)
    stack.extend.seed(["pr_acme_q"], workspace_id=WS)
    stack.extend.seed(["pr_beta_q"], workspace_id=OTHER_WS)

    # acme queues its run and beta's; the messages carry acme's id and no workspace
    body = json.dumps({"parserRunIds": ["pr_acme_q", "pr_beta_q"]})
    assert invoke(rest_event("POST", "/deletions", body=body)).status == 202
    messages = queued_messages(stack)
    assert {m["tenantId"] for m in messages} == {TENANT_ID} and not any("workspaceId" in m for m in messages)

    # the queue function applies acme's policy to each
    assert consume(stack, *messages) == {"batchItemFailures": []}
    assert not stack.extend.exists("pr_acme_q", workspace_id=WS)
    assert stack.extend.exists("pr_beta_q", workspace_id=OTHER_WS)
    assert {r.workspace_id for r in stack.extend.requests} == {WS}


def test_the_api_queues_each_tenants_messages_in_its_own_message_group(stack: InProcessStack) -> None:
    body = json.dumps({"parserRunIds": ["pr_g1", "pr_g2"]})
    assert invoke(rest_event("POST", "/deletions", body=body)).status == 202
    received = stack.sqs().receive_message(
        QueueUrl=stack.queues.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    )["Messages"]
    assert len(received) == 2
    assert {message["Attributes"].get("MessageGroupId") for message in received} == {TENANT_ID}


# ---------------------------------------------------------------- ownership: metadata


@pytest.fixture
def globex(stack: InProcessStack) -> AddedTenant:
    """A metadata tenant without a workspace of its own (its calls go to the key's), with runs of its own and of
    another customer's there."""
    stack.set_env(EXTEND_API_VERSION=METADATA_API)
    tenant = stack.register_tenant("globex", ownership="metadata", metadata_key="tenant", api_key_ids=(GLOBEX_KEY_ID,))
    stack.extend.seed(["pr_gx_1", "pr_gx_2"], workspace_id=KEY_DEFAULT_WS, metadata={"tenant": "globex"})
    stack.extend.seed(["pr_in_1", "pr_in_2"], workspace_id=KEY_DEFAULT_WS, metadata={"tenant": "initech"})
    stack.extend.seed(["pr_untagged"], workspace_id=KEY_DEFAULT_WS)
    return tenant


def test_a_metadata_tenant_deletes_only_runs_its_metadata_names_and_sends_no_delete_otherwise(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    answers = {
        run: invoke(signed_as(globex, "DELETE", f"/parser_runs/{run}", api_key_id=GLOBEX_KEY_ID))
        for run in ("pr_gx_1", "pr_in_1", "pr_untagged", "pr_nowhere")
    }
    assert answers["pr_gx_1"].status == 200 and not stack.extend.exists("pr_gx_1", workspace_id=KEY_DEFAULT_WS)
    for run in ("pr_in_1", "pr_untagged", "pr_nowhere"):
        assert (answers[run].status, accepted(answers[run])) == (404, not_found_body(run, "parse_runs")), run
    # The proof from Extend's side: each run was read, and only globex's was deleted
    assert {r.parser_run_id for r in stack.extend.requests if r.method == "GET"} == set(answers)
    assert [r.parser_run_id for r in stack.extend.requests if r.method == "DELETE"] == ["pr_gx_1"]
    assert stack.extend.exists("pr_in_1", workspace_id=KEY_DEFAULT_WS) and stack.extend.exists(
        "pr_untagged", workspace_id=KEY_DEFAULT_WS
    )
    assert emitted.metric_totals()["OwnershipRefused"] == 2  # the other customer's and the untagged run
    # Each outcome line says which answers were a refusal, and keeps nothing of Extend's answer that would tell a
    # refused run from a missing one
    lines = {log["parser_run_id"]: log for log in emitted.read().outcome_logs}
    assert {run for run, log in lines.items() if log.get("ownership_refused")} == {"pr_in_1", "pr_untagged"}
    for run in ("pr_in_1", "pr_untagged", "pr_nowhere"):
        assert lines[run].get("status_code") is None and "extend_request_id" not in lines[run], run


def test_the_ownership_reads_429s_count_as_extend_pressure_whatever_the_read_decides(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    # Given Extend throttling the first read of globex's own run and of another customer's run
    stack.extend.inject("pr_gx_1", Fault.rate_limited(0), method="GET")
    stack.extend.inject("pr_in_1", Fault.rate_limited(0), method="GET")
    # When globex deletes both
    mine = invoke(signed_as(globex, "DELETE", "/parser_runs/pr_gx_1", api_key_id=GLOBEX_KEY_ID))
    theirs = invoke(signed_as(globex, "DELETE", "/parser_runs/pr_in_1", api_key_id=GLOBEX_KEY_ID))
    # Then each throttled read is counted, the one before a deletion as the one before a refusal
    assert (mine.status, theirs.status) == (200, 404)
    assert emitted.metric_totals()["ExtendThrottled"] == 2


def test_the_queue_path_applies_the_metadata_policy_too(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    body = json.dumps({"parserRunIds": ["pr_gx_2", "pr_in_2"]})
    event = signed_as(globex, "POST", "/deletions", api_key_id=GLOBEX_KEY_ID, body=body)
    assert invoke(event).status == 202
    assert consume(stack, *queued_messages(stack)) == {"batchItemFailures": []}
    outcomes = {log["parser_run_id"]: log for log in emitted.read().outcome_logs if log["trigger"] == "sqs"}
    assert outcomes["pr_gx_2"]["outcome"] == "deleted" and outcomes["pr_in_2"]["outcome"] == "not_found"
    assert outcomes["pr_in_2"]["tenant_id"] == "globex" and outcomes["pr_in_2"]["ownership"] == "metadata"
    assert deletes_of(stack, "pr_in_2") == [] and stack.extend.exists("pr_in_2", workspace_id=KEY_DEFAULT_WS)


def test_a_failed_ownership_read_is_a_failure_to_retry_never_not_found(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    # Given globex's own run, whose read Extend keeps failing (500s) while its DELETE would work
    stack.extend.inject("pr_gx_1", *[Fault.status(500)] * 30, method="GET")

    # When globex deletes it on the API, and its bulk request reaches the queue function
    answer = invoke(signed_as(globex, "DELETE", "/parser_runs/pr_gx_1", api_key_id=GLOBEX_KEY_ID))
    body = json.dumps({"parserRunIds": ["pr_gx_1"]})
    assert invoke(signed_as(globex, "POST", "/deletions", api_key_id=GLOBEX_KEY_ID, body=body)).status == 202
    messages = queued_messages(stack)  # the DELETE's fallback and the bulk request's
    response = consume(stack, *messages)

    # Then it is never answered "not found" (the customer would be told its data is gone): the API queues it, the
    # queue function returns it for another try, and no DELETE was sent while its owner was unknown
    assert answer.status == 202 and answer.body["status"] == "queued"
    assert len(messages) == 2 and len(response["batchItemFailures"]) == 2
    assert deletes_of(stack, "pr_gx_1") == [] and stack.extend.exists("pr_gx_1", workspace_id=KEY_DEFAULT_WS)
    failed = [log for log in emitted.outcome_logs if log["parser_run_id"] == "pr_gx_1" and log["trigger"] == "sqs"]
    assert failed[-1]["outcome"] == "failed" and "reading the item failed" in failed[-1]["reason"]
    # A failed read keeps Extend's answer, for whoever looks into it: it was a 500, worth another try
    assert (failed[-1]["status_code"], failed[-1]["retryable"]) == (500, True)


def test_a_queued_metadata_deletion_met_by_a_deployment_without_metadata_is_dead_lettered_for_good_unsent(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    # Given globex's bulk request queued, and the deployment then moved to an API version whose runs carry no metadata
    body = json.dumps({"parserRunIds": ["pr_gx_2"]})
    assert invoke(signed_as(globex, "POST", "/deletions", api_key_id=GLOBEX_KEY_ID, body=body)).status == 202
    messages = queued_messages(stack)
    stack.set_env(EXTEND_API_VERSION="2025-04-21")

    # When the queue function gets the message on its last allowed receive (before it, the message returns, so
    # that an operator who puts the setting back loses nothing)
    assert consume(stack, *messages, receive_count=stack.queues.max_receive_count) == {"batchItemFailures": []}

    # Then nothing reaches Extend (no run could ever match), and the message is dead-lettered as permanent, with a
    # reason that names the setting to change
    assert [r for r in stack.extend.requests if r.parser_run_id == "pr_gx_2"] == []
    assert dead_letter_kinds(stack) == {"pr_gx_2": "permanent"}
    [outcome] = [log for log in emitted.read().outcome_logs if log["trigger"] == "sqs"]
    assert outcome["parser_run_id"] == "pr_gx_2" and outcome["outcome"] == "failed"
    assert "EXTEND_API_VERSION 2026-02-09" in outcome["reason"]


def test_an_ownership_read_that_raises_is_a_failure_to_retry_that_names_the_error(
    stack: InProcessStack, globex: AddedTenant, emitted: Emitted
) -> None:
    # Given globex's queued deletion, and the service's Extend key that can no longer be read (its secret is gone)
    body = json.dumps({"parserRunIds": ["pr_gx_2"]})
    assert invoke(signed_as(globex, "POST", "/deletions", api_key_id=GLOBEX_KEY_ID, body=body)).status == 202
    messages = queued_messages(stack)
    stack.set_env(EXTEND_API_KEY_SECRET_ID=stack.secret_arn + "-gone")

    # When the queue function gets the message
    response = consume(stack, *messages)

    # Then the message returns for another try, nothing reached Extend, and the outcome names what stopped the read
    assert len(response["batchItemFailures"]) == 1
    assert [r for r in stack.extend.requests if r.parser_run_id == "pr_gx_2"] == []
    [outcome] = [log for log in emitted.read().outcome_logs if log["trigger"] == "sqs"]
    assert outcome["parser_run_id"] == "pr_gx_2" and outcome["outcome"] == "failed"
    assert outcome["reason"] == "CredentialsError"  # the key could not be had


def test_an_unrestricted_tenant_reaches_any_run_and_says_so_in_every_outcome(
    stack: InProcessStack, emitted: Emitted
) -> None:
    office = stack.register_tenant("backoffice", ownership="unrestricted", api_key_ids=("o1f2f3i4c5",))
    stack.extend.seed(["pr_any"], workspace_id=KEY_DEFAULT_WS)
    answer = invoke(signed_as(office, "DELETE", "/parser_runs/pr_any", api_key_id="o1f2f3i4c5"))
    assert answer.status == 200
    [outcome] = emitted.read().outcome_logs
    assert outcome["tenant_id"] == "backoffice" and outcome["ownership"] == "unrestricted"


# ---------------------------------------------------------------- the queue path's tenants


def test_a_message_for_an_unknown_or_disabled_tenant_is_dead_lettered_with_that_reason(
    stack: InProcessStack, emitted: Emitted
) -> None:
    stack.register_tenant("sleepy", api_key_ids=("s1l2e3e4p5",), workspace_id=WS)
    stack.tenant_admin().set_status("sleepy", TenantStatus.DISABLED)
    stack.extend.seed(["pr_u", "pr_s"], workspace_id=WS)

    result = consume(stack, {"parserRunId": "pr_u", "tenantId": "ghost"}, {"parserRunId": "pr_s", "tenantId": "sleepy"})

    # Settled at once (no retry can help), parked with the reason, and nothing sent to Extend
    assert result == {"batchItemFailures": []}
    assert dead_letter_kinds(stack) == {"pr_u": "tenant_refused", "pr_s": "tenant_refused"}
    assert stack.extend.requests == []
    assert emitted.metric_totals()["TenantRefused"] == 2


def test_a_registry_outage_on_the_queue_path_retries_the_message(stack: InProcessStack) -> None:
    stack.set_env(TENANTS_TABLE_NAME="no-such-table")
    reset_functions()
    result = consume(stack, {"parserRunId": "pr_wait", "tenantId": TENANT_ID})
    assert len(result["batchItemFailures"]) == 1
    assert stack.dead_letters() == [] and stack.extend.requests == []


def test_a_tenants_message_may_not_name_a_workspace(stack: InProcessStack) -> None:
    stack.extend.seed(["pr_ws"], workspace_id=OTHER_WS)
    result = consume(stack, {"parserRunId": "pr_ws", "tenantId": TENANT_ID, "workspaceId": OTHER_WS})
    assert result == {"batchItemFailures": []}
    assert dead_letter_kinds(stack) == {"pr_ws": "invalid"}
    assert stack.extend.requests == []


def test_an_operators_message_is_organization_wide_and_may_name_a_workspace(stack: InProcessStack) -> None:
    use_org_key(stack)
    stack.extend.seed(["pr_op"], workspace_id=OTHER_WS)
    assert consume(stack, {"parserRunId": "pr_op", "workspaceId": OTHER_WS}) == {"batchItemFailures": []}
    assert not stack.extend.exists("pr_op", workspace_id=OTHER_WS)


def test_a_refusal_is_logged_with_the_tenant_the_caller_claimed_to_be(stack: InProcessStack, emitted: Emitted) -> None:
    # acme's key with a wrong signature: the caller gets the generic 401, the log says whose key it was
    answer = invoke(rest_event("DELETE", "/parser_runs/pr_1", headers={"webhook-signature": "v1,AAAA"}))
    assert answer.status == 401
    logs = emitted.read().logs
    [refusal] = [log for log in logs if log["message"] == "signature refused"]
    [line] = [log for log in logs if log["message"] == "api request"]
    assert refusal["tenant_id"] == line["tenant_id"] == TENANT_ID


def test_a_metadata_tenant_is_not_served_by_a_deployment_on_an_api_version_without_metadata(
    stack: InProcessStack, emitted: Emitted
) -> None:
    # Rather than accept deletions that could only ever be dead-lettered: a 503 naming the misconfiguration
    globex = stack.register_tenant("globex", ownership="metadata", metadata_key="tenant", api_key_ids=(GLOBEX_KEY_ID,))
    body = json.dumps({"parserRunIds": ["pr_gx_1"]})
    answer = invoke(signed_as(globex, "POST", "/deletions", api_key_id=GLOBEX_KEY_ID, body=body))
    assert answer.status == 503 and answer.headers["retry-after"]
    assert queued_messages(stack) == [] and stack.extend.requests == []
    [error] = [log for log in emitted.read().logs if log["message"] == "the function is misconfigured"]
    assert "EXTEND_API_VERSION" in error["reason"]
