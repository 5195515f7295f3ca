"""Each IAM request judged by the simulator against the deployment's policies, the cases that must be denied, the
statements each allowed call relies on, and the tables docs/security.md shows.

A request is simulated as IAM evaluates it in the account: the principal is a session of its role (``aws:
PrincipalArn`` the role), over TLS, with the role's identity policies, its permissions boundary when the template
sets one, and the resource's policy (a queue's, the data key's, a tenant secret's). Principals outside the stack,
each allowed everything by its own IAM policy, stand for everyone else: an administrator of the account, a
principal of another account, and the deployer (``KeyPolicyAdministratorArn``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from tests.support.iam_calls import RECORDED, IamCall
from tests.support.iam_deployment import (
    ACCOUNT,
    DATA_KEY_ID,
    REGION,
    SECRET_SUFFIX,
    STACK,
    STACK_ID,
    Deployment,
    Policy,
)
from tests.support.iam_simulator import Verdict, evaluate

ADMINISTRATOR: Final = "AccountAdministrator"
STRANGER: Final = "Stranger"
DEPLOYER: Final = "Deployer"
STRANGER_ACCOUNT: Final = "444455556666"
EVERYTHING: Final = Policy(
    "AdministratorAccess", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
OUTSIDE_PRINCIPALS: Final = {
    ADMINISTRATOR: f"arn:aws:iam::{ACCOUNT}:role/administrator",
    STRANGER: f"arn:aws:iam::{STRANGER_ACCOUNT}:role/stranger",
    DEPLOYER: f"arn:aws:iam::{ACCOUNT}:role/deployer",
}


@dataclass(frozen=True)
class Drop:
    """A policy with one statement left out (``index``, 0-based), for the mutation tests."""

    policy: str
    index: int


def _principal(call: IamCall, deployment: Deployment) -> tuple[str, str, list[Policy], list[Policy]]:
    """(principal ARN, aws:PrincipalArn, identity policies, permissions boundaries) of a call's principal."""
    if call.principal in OUTSIDE_PRINCIPALS:
        arn = OUTSIDE_PRINCIPALS[call.principal]
        return arn, arn, [EVERYTHING], []
    role = call.principal
    return (
        deployment.session_arn(role, deployment.session_name(role)),
        deployment.role_arn(role),
        deployment.identity_policies(role),
        deployment.boundary_policies(role),
    )


def _without(policies: list[Policy], drop: Drop | None) -> list[Policy]:
    if drop is None:
        return policies
    return [policy.without(drop.index) if policy.name == drop.policy else policy for policy in policies]


def simulation(call: IamCall, deployment: Deployment, drop: Drop | None = None) -> dict[str, Any]:
    """iam-simulate's ``Simulation`` for one request."""
    principal, principal_arn, identity, boundary = _principal(call, deployment)
    context = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": principal_arn.split(":")[4],
        "aws:SecureTransport": "true",
        "aws:RequestedRegion": REGION,
        **dict(call.context),
    }
    resource_account = call.resource.split(":")[4] if call.resource.count(":") >= 5 else ""
    simulated: dict[str, Any] = {
        "request": {
            "principal": principal,
            "action": call.action,
            "resource": {"resource": call.resource, "accountId": resource_account or ACCOUNT},
            "contextVariables": context,
        },
        "identityPolicies": [{"name": p.name, "policy": p.document} for p in _without(identity, drop)],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
    }
    resource_policy = deployment.resource_policy(call.resource)
    if resource_policy is not None:
        [kept] = _without([resource_policy], drop)
        simulated["resourcePolicy"] = kept.document
    boundary = _without(boundary, drop)
    if boundary:
        simulated["permissionBoundaryPolicies"] = [{"name": p.name, "policy": p.document} for p in boundary]
    return simulated


def judge(calls: list[IamCall], deployment: Deployment, drop: Drop | None = None) -> list[Verdict]:
    verdicts = evaluate([simulation(call, deployment, drop) for call in calls])
    errors = [
        (call, verdict.errors) for call, verdict in zip(calls, verdicts, strict=True) if verdict.result == "Error"
    ]
    assert not errors, f"the simulator refused {len(errors)} requests as invalid, e.g. {errors[:3]}"
    return verdicts


def granting_statements(call: IamCall, verdict: Verdict, deployment: Deployment) -> list[tuple[Policy, int]]:
    """The statements that allowed a call: (policy, 0-based index)."""
    _, _, identity, boundary = _principal(call, deployment)
    by_name = {policy.name: policy for policy in [*identity, *boundary]}
    found = []
    for grant in verdict.grants:
        if grant["policyType"] in ("identity", "pb"):
            found.append((by_name[grant["policyIdentifier"]], int(grant["statementIndex"]) - 1))
        elif grant["policyType"] == "resource":
            policy = deployment.resource_policy(call.resource)
            assert policy is not None
            found.append((policy, int(grant["statementIndex"]) - 1))
    return found


def denying_statements(call: IamCall, verdict: Verdict, deployment: Deployment) -> list[str]:
    """What denied a call: the explicit Deny statements, or the kind of policy that allowed nothing."""
    reasons = []
    for denial in verdict.denials:
        kind = {
            "identity": "no identity policy allows it",
            "resource": "no resource policy allows it",
            "pb": "the permissions boundary",
        }.get(denial["policyType"], denial["policyType"])
        if denial["denialType"] == "Explicit":
            policy = deployment.resource_policy(call.resource)
            owner = policy.name if denial["policyType"] == "resource" and policy else denial.get("policyIdentifier", "")
            reasons.append(f"{owner}/{denial.get('statementId') or '#' + str(denial['statementIndex'])} (Deny)")
        else:
            reasons.append(kind)
    return sorted(set(reasons))


# ---------------------------------------------------------------- what must be denied


@dataclass(frozen=True)
class Refusal:
    """A request that must be denied, and why it matters."""

    why: str
    call: IamCall


def _secret(path: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{path}-{SECRET_SUFFIX}"


def refusals(deployment: Deployment, recorded: Iterable[IamCall]) -> list[Refusal]:
    """The negative cases: the least-privilege promises of docs/security.md, as requests IAM must deny."""
    tables = {
        name: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-{name}"
        for name in deployment.cfn.of_type("AWS::DynamoDB::Table")
    }
    queues = {name: queue.arn for name, queue in deployment.queues.items()}
    key = deployment.data_key_arn
    signing, callback = _secret(f"{STACK}/tenants/acme/signing"), _secret(f"{STACK}/tenants/acme/callback-signing")
    extend_key = deployment.extend_key_secret_arn
    api, worker, notifier, operator = "ApiFunctionRole", "QueueFunctionRole", "CallbackFunctionRole", "OperatorRole"
    sweeper = "SweeperFunctionRole"
    functions = [api, worker, notifier, sweeper]
    cases: list[Refusal] = []

    def deny(why: str, principal: str, action: str, resource: str, **context: str) -> None:
        cases.append(Refusal(why, IamCall(principal, action, resource, "").with_context(**context)))

    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        deny("only operators change the tenant registry", api, action, tables["TenantsTable"])
    for role in (worker, notifier, sweeper):
        deny("only operators change the tenant registry", role, "dynamodb:PutItem", tables["TenantsTable"])
    # The ledger is the audit record: an operator may recount a tenant's usage item, never write a receipt.
    deny(
        "operators write no receipt",
        operator,
        "dynamodb:PutItem",
        tables["LedgerTable"],
        dynamodb__LeadingKeys="REQ#dr_0000000000000000000000",
    )
    for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        deny("operators change no receipt", operator, action, tables["LedgerTable"])
    for role in [*functions, operator]:
        deny(
            "another stack's tenant secrets",
            role,
            "secretsmanager:GetSecretValue",
            _secret("other-stack/tenants/acme/signing"),
        )
        deny(
            "a stack whose name starts with this one's",
            role,
            "secretsmanager:GetSecretValue",
            _secret(f"{STACK}-staging/tenants/acme/signing"),
        )
        deny(
            "secrets of this stack outside its tenants' prefix",
            role,
            "secretsmanager:GetSecretValue",
            _secret(f"{STACK}/tenants-archive/acme/signing"),
        )
    deny("the queue function reads no tenant secret", worker, "secretsmanager:GetSecretValue", signing)
    deny("the queue function reads no tenant secret", worker, "secretsmanager:GetSecretValue", callback)
    deny("the callback function cannot sign requests", notifier, "secretsmanager:GetSecretValue", signing)
    deny("the callback function never holds the Extend key", notifier, "secretsmanager:GetSecretValue", extend_key)
    deny("the API function cannot sign callbacks", api, "secretsmanager:GetSecretValue", callback)
    deny("the callback function sends to no queue", notifier, "sqs:SendMessage", queues["CallbackQueue"])
    deny("the callback function sends to no queue", notifier, "sqs:SendMessage", queues["DeletionQueue"])
    deny("the sweeper queues no deletion", sweeper, "sqs:SendMessage", queues["DeletionQueue"])
    deny("the sweeper never holds the Extend key", sweeper, "secretsmanager:GetSecretValue", extend_key)
    deny("the sweeper reads no tenant secret", sweeper, "secretsmanager:GetSecretValue", signing)
    deny("the sweeper deletes no receipt", sweeper, "dynamodb:DeleteItem", tables["LedgerTable"])
    deny("the sweeper takes no deletion from the queue", sweeper, "sqs:ReceiveMessage", queues["DeletionQueue"])
    deny("only the queue function receives its queue's handles", api, "sqs:ReceiveMessage", queues["DeletionQueue"])
    deny(
        "only the callback function receives its queue's handles", worker, "sqs:ReceiveMessage", queues["CallbackQueue"]
    )
    deny("no function deletes receipts from the ledger", api, "dynamodb:DeleteItem", tables["LedgerTable"])
    deny("no function scans the ledger", worker, "dynamodb:Scan", tables["LedgerTable"])
    # A principal of another account, allowed everything by its own account.
    for name, arn in queues.items():
        deny(f"a stranger sending to {name}", STRANGER, "sqs:SendMessage", arn)
    for name, arn in tables.items():
        deny(f"a stranger reading {name}", STRANGER, "dynamodb:GetItem", arn)
    deny("a stranger reading a tenant's secret", STRANGER, "secretsmanager:GetSecretValue", signing)
    # An administrator of the account: IAM allows it everything, the resources' own policies do not.
    for secret in (signing, callback):
        kind = secret.rsplit("/", 1)[-1].removesuffix(f"-{SECRET_SUFFIX}")
        deny(
            f"an administrator reading a tenant's {kind} secret", ADMINISTRATOR, "secretsmanager:GetSecretValue", secret
        )
        deny(
            f"an administrator replacing a tenant's {kind} secret",
            ADMINISTRATOR,
            "secretsmanager:PutSecretValue",
            secret,
        )
    for name in ("DeletionQueue", "DeadLetterQueue", "CallbackQueue", "CallbackDeadLetterQueue"):
        deny(f"an administrator sending to {name}", ADMINISTRATOR, "sqs:SendMessage", queues[name])
    for name in ("DeletionQueue", "CallbackQueue"):
        deny(f"an administrator taking {name}'s receipt handles", ADMINISTRATOR, "sqs:ReceiveMessage", queues[name])
    if key is not None:
        deny("a stranger using the data key", STRANGER, "kms:Decrypt", key)
        deny("an administrator using the data key", ADMINISTRATOR, "kms:Decrypt", key)
        deny("an administrator granting itself the data key", ADMINISTRATOR, "kms:CreateGrant", key)
    # The operator role, outside the stack or beyond the CLI's needs.
    other_stack_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:other-stack-DeletionQueue"
    deny("the operator: another stack's queue", operator, "sqs:SendMessage", other_stack_queue)
    deny(
        "the operator: another stack's table",
        operator,
        "dynamodb:GetItem",
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other-stack-TenantsTable",
    )
    deny(
        "the operator: another stack's outputs",
        operator,
        "cloudformation:DescribeStacks",
        STACK_ID.replace(f"stack/{STACK}/", "stack/other-stack/"),
    )
    deny(
        "the operator: another key",
        operator,
        "kms:Decrypt",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000",
    )
    deny("the operator never reads the Extend key", operator, "secretsmanager:GetSecretValue", extend_key)
    deny(
        "the operator changes no function",
        operator,
        "lambda:UpdateFunctionCode",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-ApiFunction",
    )
    deny(
        "the operator deletes no API",
        operator,
        "apigateway:DELETE",
        f"arn:aws:apigateway:{REGION}::/restapis/a1b2c3d4e5",
    )
    deny("the operator deletes no receipt", operator, "dynamodb:DeleteItem", tables["LedgerTable"])
    deny("the operator scans no ledger", operator, "dynamodb:Scan", tables["LedgerTable"])
    deny("the operator takes no deletion from the queue", operator, "sqs:ReceiveMessage", queues["DeletionQueue"])
    # Every queue call the system makes, over plain HTTP instead.
    for call in sorted(
        {replace(c, made_by="", context=()) for c in recorded if c.action.startswith("sqs:") and c.made_by == RECORDED}
    ):
        cases.append(Refusal("queues refuse plain HTTP", call.with_context(aws__SecureTransport="false")))
    return cases


# ---------------------------------------------------------------- the tables in docs/security.md

_DISPLAY = (
    (re.escape(f":{REGION}:{ACCOUNT}:"), ":<region>:<account>:"),
    (re.escape(f"apigateway:{REGION}::"), "apigateway:<region>::"),
    (re.escape(STACK_ID.rsplit("/", 1)[-1]), "<id>"),
    (r"(?<=/tenants/)[^/]+(?=/)", "<tenant>"),
    (r"(?<=/apikeys/)[^/]+", "<id>"),
    (r"(?<=/usageplans/)[^/]+", "<id>"),
    (r"(?<=/keys/)[^/]+", "<id>"),
    (re.escape(f":key/{DATA_KEY_ID}"), ":key/<DataKey>"),
    (r"(?<=:log-stream:).+$", "<stream>"),
    (re.escape(STACK), "<stack>"),
)


def shown(resource: str) -> str:
    """A resource as the docs show it: placeholders for the region, account, stack, tenants and generated ids."""
    for pattern, placeholder in _DISPLAY:
        resource = re.sub(pattern, placeholder, resource)
    return resource


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def calls_table(calls: list[IamCall], verdicts: list[Verdict], deployment: Deployment) -> str:
    """One row per principal, action and resource (tenants and generated ids folded together)."""
    rows: dict[tuple[str, str, str, str], tuple[set[str], set[str]]] = {}
    for call, verdict in zip(calls, verdicts, strict=True):
        results, granted = rows.setdefault(
            (call.principal, call.action, shown(call.resource), call.made_by), (set(), set())
        )
        results.add(verdict.result)
        granted.update(policy.statement_name(index) for policy, index in granting_statements(call, verdict, deployment))
    lines = ["| principal | action | resource | made by | verdict | allowed by |", "|---|---|---|---|---|---|"]
    for (principal, action, resource, made_by), (results, granted) in sorted(rows.items()):
        outcome = "Allowed" if results == {"Allowed"} else " / ".join(sorted(results))
        grants = ", ".join(f"`{name}`" for name in sorted(granted))
        lines.append(f"| {principal} | `{action}` | `{_cell(resource)}` | {made_by} | {outcome} | {grants} |")
    return "\n".join(lines)


def refusals_table(cases: list[Refusal], verdicts: list[Verdict], deployment: Deployment) -> str:
    lines = ["| who | action | resource | why it must fail | verdict | denied by |", "|---|---|---|---|---|---|"]
    rows = set()
    for case, verdict in zip(cases, verdicts, strict=True):
        call = case.call
        context = " over plain HTTP" if dict(call.context).get("aws:SecureTransport") == "false" else ""
        denied = ", ".join(denying_statements(call, verdict, deployment))
        rows.add(
            (
                call.principal,
                f"`{call.action}`{context}",
                f"`{_cell(shown(call.resource))}`",
                case.why,
                verdict.result,
                denied,
            )
        )
    lines += [f"| {' | '.join(row)} |" for row in sorted(rows)]
    return "\n".join(lines)


# ---------------------------------------------------------------- which statements matter


@dataclass(frozen=True)
class Mutation:
    """One statement left out, and what that changes: the calls it then denies, or the refusals it then allows."""

    statement: str
    drop: Drop
    changed: tuple[IamCall, ...]


def needed_statements(calls: list[IamCall], verdicts: list[Verdict], deployment: Deployment) -> list[Mutation]:
    """For each statement some allowed call relies on: the calls denied once it is left out (empty: the calls
    have another grant, and the statement adds nothing to them)."""
    relying: dict[Drop, list[IamCall]] = {}
    names: dict[Drop, str] = {}
    for call, verdict in zip(calls, verdicts, strict=True):
        if verdict.allowed:
            for policy, index in granting_statements(call, verdict, deployment):
                drop = Drop(policy.name, index)
                relying.setdefault(drop, []).append(call)
                names[drop] = policy.statement_name(index)
    plan = [
        (drop, call) for drop, relied in sorted(relying.items(), key=lambda item: names[item[0]]) for call in relied
    ]
    answers = evaluate([simulation(call, deployment, drop) for drop, call in plan])
    denied: dict[Drop, list[IamCall]] = {drop: [] for drop in relying}
    for (drop, call), answer in zip(plan, answers, strict=True):
        if not answer.allowed:
            denied[drop].append(call)
    return [Mutation(names[drop], drop, tuple(denied[drop])) for drop in sorted(relying, key=lambda d: names[d])]


def deny_statements(deployment: Deployment, resources: Iterable[str]) -> dict[Drop, tuple[Policy, str]]:
    """Every Deny statement of the resource policies of ``resources``: (its policy, its name)."""
    found: dict[Drop, tuple[Policy, str]] = {}
    for resource in resources:
        policy = deployment.resource_policy(resource)
        if policy is None:
            continue
        for index, statement in enumerate(policy.statements):
            if statement["Effect"] == "Deny":
                found[Drop(policy.name, index)] = (policy, policy.statement_name(index))
    return found


def protecting_statements(cases: list[Refusal], deployment: Deployment) -> list[Mutation]:
    """For each Deny statement of the resources the refusals name: the refusals allowed once it is left out."""
    denies = deny_statements(deployment, sorted({case.call.resource for case in cases}))
    governed = {case.call: deployment.resource_policy(case.call.resource) for case in cases}
    plan = [
        (drop, call)
        for drop in sorted(denies, key=lambda d: denies[d][1])
        for call, policy in governed.items()
        if policy is not None and policy.name == drop.policy
    ]
    answers = evaluate([simulation(call, deployment, drop) for drop, call in plan])
    allowed: dict[Drop, list[IamCall]] = {drop: [] for drop in denies}
    for (drop, call), answer in zip(plan, answers, strict=True):
        if answer.allowed:
            allowed[drop].append(call)
    return [
        Mutation(denies[drop][1], drop, tuple(allowed[drop])) for drop in sorted(denies, key=lambda d: denies[d][1])
    ]


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, value, 0 if case_sensitive else re.IGNORECASE) is not None


def unused_grants(calls: list[IamCall], verdicts: list[Verdict], deployment: Deployment) -> list[str]:
    """Each action an identity policy of the stack allows that no allowed call used through that statement:
    ``"<policy>/<Sid>: <action>"``."""
    used: dict[tuple[str, int], set[str]] = {}
    for call, verdict in zip(calls, verdicts, strict=True):
        if verdict.allowed:
            for policy, index in granting_statements(call, verdict, deployment):
                used.setdefault((policy.name, index), set()).add(call.action)
    unused = set()
    for role in deployment.roles:
        for policy in deployment.identity_policies(role):
            for index, statement in enumerate(policy.statements):
                actions = used.get((policy.name, index), set())
                for pattern in _as_list(statement["Action"]) if statement["Effect"] == "Allow" else []:
                    if not any(_matches(pattern, action, case_sensitive=False) for action in actions):
                        unused.add(f"{policy.statement_name(index)}: {pattern}")
    return sorted(unused)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- docs/security.md's generated sections

SECTIONS: Final = ("iam-calls", "iam-refusals")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: generated by `make iam-table` -->\n", f"\n<!-- {name}: end -->"


def section(text: str, name: str) -> str | None:
    """The generated section ``name`` of a document (None: it has none)."""
    begin, end = _markers(name)
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0]


def with_section(text: str, name: str, body: str) -> str:
    """The document with its section ``name`` replaced by ``body``."""
    begin, end = _markers(name)
    current = section(text, name)
    assert current is not None, f"the document has no {name} section: add the lines {begin.strip()} and {end.strip()}"
    return text.replace(begin + current + end, begin + body + end)


def sections(
    judged_calls: list[IamCall],
    verdicts: list[Verdict],
    cases: list[Refusal],
    refused: list[Verdict],
    deployment: Deployment,
) -> dict[str, str]:
    return {
        "iam-calls": calls_table(judged_calls, verdicts, deployment),
        "iam-refusals": refusals_table(cases, refused, deployment),
    }
