"""IAM, proved offline: every AWS call the system makes in `make run` and in an operator session of every CLI
command, recorded at the wire and judged by a maintained IAM simulator against the template's policies.

Given the calls (recorded, and those AWS makes for them: KMS through SQS and Secrets Manager, Lambda's logs and
event source mappings), each is allowed; each refusal (docs/security.md's least-privilege promises) is denied;
every statement an allowed call relies on is needed (left out, some call is denied), and every Deny statement of
the queues' and secrets' policies stops some refusal (left out, it is allowed).
"""

from __future__ import annotations

from typing import Final

import pytest

from tests.iam.conftest import Judged, Recording
from tests.support.iam_calls import HARNESS_KEY, RECORDED, operation
from tests.support.iam_deployment import Deployment
from tests.support.iam_evaluation import denying_statements, needed_statements, protecting_statements, unused_grants

pytestmark = pytest.mark.slow

# Statements that allowed calls rely on, but that allow nothing the key policy does not allow already: the data
# key's policy names each role (FunctionsAndOperatorsUseTheKey), and a key policy naming a principal is enough.
BELT_AND_BRACES: Final = {
    f"{policy}/UseTheDataKey": "the key policy names the role itself; the role's grant keeps the key usable should "
    "the key policy ever delegate to IAM instead"
    for policy in (
        "ApiFunctionPolicy",
        "QueueFunctionPolicy",
        "CallbackFunctionPolicy",
        "OperatorPolicy",
    )
}
# What the sweeper does only for a request whose runs expired on the queue, 14 days after it was made: make run
# cannot wait that long. tests/integration/test_sweeper.py makes those calls against moto.
_EXPIRY_ONLY: Final = "the sweeper settles a request's runs expired on the queue only 14 days after it was made"

# Actions the identity policies allow that no recorded call uses, each with why it stays (or that it could go).
UNUSED_GRANTS: Final = {
    "ApiFunctionPolicy/RememberSignedRequests: dynamodb:DeleteItem": "Powertools' idempotency layer deletes the "
    "record of a request whose handler raised, a path the demo does not take",
    "ApiFunctionPolicy/RememberSignedRequests: dynamodb:GetItem": "Powertools' idempotency layer reads a record "
    "back where a conditional put cannot return it, a path the demo does not take",
    "OperatorPolicy/EnqueueAndRedrive: sqs:GetQueueUrl": "the CLI looks a DLQ's URL up when given a queue URL "
    "without --dlq-url, not with --stack-name",
    "OperatorPolicy/InspectAndRedriveTheDeadLetterQueues: sqs:GetQueueUrl": "as above, for the DLQ",
    "OperatorPolicy/UseTheDataKey: kms:DescribeKey": "not called by the CLI; DynamoDB describes the key on the "
    "caller's behalf when it first uses the table's key (first-deploy checklist)",
    "SweeperFunctionPolicy/SweepTheLedger: dynamodb:Query": f"{_EXPIRY_ONLY} (it reads their runs)",
    "SweeperFunctionPolicy/SweepTheLedger: dynamodb:UpdateItem": f"{_EXPIRY_ONLY} (it records them failed)",
    "SweeperFunctionPolicy/QueueCompletionCallbacks: sqs:SendMessage": f"{_EXPIRY_ONLY} (it completes the request)",
    "SweeperFunctionPolicy/UseTheDataKey: kms:Decrypt": f"{_EXPIRY_ONLY} (SQS, for the callback it queues)",
    "SweeperFunctionPolicy/UseTheDataKey: kms:GenerateDataKey": f"{_EXPIRY_ONLY} (SQS, as above)",
}


def test_every_principal_signs_its_calls_and_each_run_recorded_its_share(recording: Recording) -> None:
    # Given the call logs of make run and of the operator session
    keys = {name: {call["key"] for call in log} for name, log in recording.logs.items()}

    # Then every call was signed by a principal of the stack or by the harness (deploying, watching), nothing else
    principals = {"ApiFunctionRole", "QueueFunctionRole", "CallbackFunctionRole", "SweeperFunctionRole", "OperatorRole"}
    for name, found in keys.items():
        assert found <= principals | {HARNESS_KEY}, f"{name}: calls signed by unknown keys {found - principals}"
    # and each principal made calls in make run, the operator in the operator session too
    assert keys["make run"] >= principals, keys["make run"]
    assert "OperatorRole" in keys["extend-deleter"]
    # and the operator session ran every command group: the stack's outputs, tenants, queues, dead letters
    operations = {operation(call) for call in recording.logs["extend-deleter"] if call["key"] == "OperatorRole"}
    assert {
        "DescribeStacks",
        "CreateSecret",
        "PutResourcePolicy",
        "SendMessageBatch",
        "StartMessageMoveTask",
    } <= operations
    assert {"Query", "Scan", "TransactWriteItems", "POST /apikeys"} <= operations


def test_every_call_the_system_makes_is_allowed(judged: Judged, deployment: Deployment) -> None:
    # Given every IAM request of the recording, judged against the deployed template's policies
    denied = [
        f"{call.principal} {call.action} on {call.resource} ({call.made_by}): {verdict.result}, "
        f"{'; '.join(denying_statements(call, verdict, deployment))}"
        for call, verdict in zip(judged.calls, judged.verdicts, strict=True)
        if not verdict.allowed
    ]

    # Then IAM allows each one
    assert len(judged.calls) >= 80, "the recording is too small to prove anything"
    assert {call.made_by for call in judged.calls} > {RECORDED}
    assert not denied, "IAM would deny calls the system makes:\n" + "\n".join(denied)


def test_every_refusal_is_denied(judged: Judged, deployment: Deployment) -> None:
    # Given the refusals: requests outside each principal's job, by the stack's roles and by outsiders
    allowed = [
        f"{case.why}: {case.call.principal} {case.call.action} on {case.call.resource} {dict(case.call.context)}"
        for case, verdict in zip(judged.refusals, judged.refusal_verdicts, strict=True)
        if verdict.allowed
    ]

    # Then IAM denies each one
    assert len(judged.refusals) >= 60
    assert {case.call.principal for case in judged.refusals} >= {"Stranger", "AccountAdministrator", "OperatorRole"}
    assert not allowed, "IAM would allow:\n" + "\n".join(allowed)


def test_each_statement_an_allowed_call_relies_on_is_needed(judged: Judged, deployment: Deployment) -> None:
    # Given each statement that granted some allowed call
    mutations = needed_statements(judged.calls, judged.verdicts, deployment)

    # When it is left out and the calls relying on it are judged again
    redundant = {mutation.statement for mutation in mutations if not mutation.changed}

    # Then some call is denied, except for the statements known to repeat a grant the key policy makes
    assert len(mutations) >= 25, [mutation.statement for mutation in mutations]
    assert redundant == set(BELT_AND_BRACES), (
        f"left out, these change no verdict: {sorted(redundant - set(BELT_AND_BRACES))}; "
        f"these are needed now: {sorted(set(BELT_AND_BRACES) - redundant)}"
    )


def test_each_deny_statement_of_the_resource_policies_stops_a_refusal(judged: Judged, deployment: Deployment) -> None:
    # Given each Deny statement of the queues' and the tenant secrets' policies
    mutations = protecting_statements(judged.refusals, deployment)

    # When it is left out and the refusals are judged again
    idle = [mutation.statement for mutation in mutations if not mutation.changed]

    # Then some refusal is allowed: each one is needed
    assert len(mutations) >= 14, [mutation.statement for mutation in mutations]
    assert not idle, f"no refusal needs these Deny statements (add one that does): {idle}"


def test_every_action_the_roles_are_allowed_is_used_or_its_reason_is_known(
    judged: Judged, deployment: Deployment
) -> None:
    # Given the actions each identity policy allows, against those the allowed calls used through it
    unused = set(unused_grants(judged.calls, judged.verdicts, deployment))

    # Then the unused ones are exactly those with a known reason (an unexplained grant, or a stale reason, fails)
    assert unused == set(UNUSED_GRANTS), (
        f"allowed but never used, with no reason given: {sorted(unused - set(UNUSED_GRANTS))}; "
        f"used now, or no longer allowed (drop their reason): {sorted(set(UNUSED_GRANTS) - unused)}"
    )
