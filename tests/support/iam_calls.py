"""What IAM authorizes for each AWS call the local stack made: the principal, the IAM action and the resource ARN.

``devstack.aws_call_log`` writes one line per request moto served: the signing access key id (each principal of
the local stack signs with its own, its role's logical id), the operation and the names it acted on. Here each
line becomes the IAM request(s) AWS would authorize for it: a batch operation is authorized as its single form
(``SendMessageBatch`` as ``sqs:SendMessage``), a DynamoDB transaction as each of its items' actions, a Query on an
index against the index's ARN, a REST call of API Gateway as ``apigateway:<METHOD>`` on its path. Names are then
moved from the local stack's (``local-1a2b3c-TenantsTable``) to the deployment's (``iam_deployment``).

Some calls never reach moto, because AWS makes them for the caller: SQS and Secrets Manager call KMS with the
caller's credentials to encrypt and decrypt under the stack's key, Lambda writes each function's logs with its role
and polls its queue with it. ``implied_calls`` adds those, each saying who makes it. DynamoDB's own KMS calls use
the grants it made when the tables were created: only a real account shows them (docs/security.md's checklist).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from tests.support.iam_deployment import ACCOUNT, DATA_KEY_ID, REGION, SECRET_SUFFIX, STACK, STACK_ID, Deployment

RECORDED: Final = "recorded"
# Who makes an implied call, for the tables in docs/security.md.
BY_LAMBDA_LOGS: Final = "Lambda, writing the function's logs"
BY_EVENT_SOURCE: Final = "Lambda's event source mapping"
BY_SQS: Final = "SQS, for the caller"
BY_SECRETS_MANAGER: Final = "Secrets Manager, for the caller"
# The key every part of the harness that is no principal of the stack signs with (deploying, watching).
HARNESS_KEY: Final = "testing"

_SQS_SINGULAR: Final = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_TRANSACTION_ITEMS: Final = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_SECRET_WRITES: Final = {"CreateSecret", "PutSecretValue", "UpdateSecret"}


@dataclass(frozen=True, order=True)
class IamCall:
    """One request IAM authorizes: ``principal`` (a role's logical id) does ``action`` on ``resource``."""

    principal: str
    action: str
    resource: str
    made_by: str = RECORDED
    context: tuple[tuple[str, str], ...] = ()

    def with_context(self, **values: str) -> IamCall:
        merged = dict(self.context) | {key.replace("__", ":"): value for key, value in values.items()}
        return replace(self, context=tuple(sorted(merged.items())))


def read_call_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def operation(call: dict[str, Any]) -> str:
    """The API operation of a logged request: ``GetItem``, ``SendMessageBatch``, ``DescribeStacks``, or
    ``POST /apikeys`` for a REST API."""
    if call["target"]:
        return str(call["target"]).rsplit(".", 1)[-1]
    if call["action"]:
        return str(call["action"])
    return f"{call['method']} {call['path']}"


# ---------------------------------------------------------------- the local stack's names, and the deployment's


@dataclass(frozen=True)
class LocalNames:
    """How a call log's names map to the deployment's: the local stacks' names, and their data keys."""

    stacks: tuple[str, ...]
    data_keys: tuple[str, ...]

    @classmethod
    def of(cls, calls: list[dict[str, Any]], deployment: Deployment) -> LocalNames:
        tables = "|".join(re.escape(name) for name in deployment.cfn.of_type("AWS::DynamoDB::Table"))
        stacks = {
            match.group(1)
            for call in calls
            if operation(call) == "CreateTable"
            and (match := re.fullmatch(rf"(.+)-(?:{tables})", str(call["params"].get("TableName", ""))))
        }
        keys = {str(call.get("arn")) for call in calls if call["service"] == "kms" and operation(call) == "CreateKey"}
        # The longest first, so that no stack's name is taken for the start of another's.
        return cls(tuple(sorted(stacks, key=len, reverse=True)), tuple(sorted(key for key in keys if key)))

    def canonical(self, text: str) -> str:
        """A local name or ARN, with the deployment's stack name, data key and secret suffixes."""
        for key in self.data_keys:
            text = text.replace(key, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{DATA_KEY_ID}")
        for stack in self.stacks:
            text = re.sub(rf"(^|[:/]){re.escape(stack)}(?=[-/])", rf"\g<1>{STACK}", text)
        return re.sub(r"(:secret:[^:]+)-[A-Za-z0-9]{6}$", rf"\g<1>-{SECRET_SUFFIX}", text)


def _queue_arn(url_or_name: str, region: str, account: str) -> str:
    parts = url_or_name.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].isdigit():
        account = parts[-2]
    return f"arn:aws:sqs:{region}:{account}:{parts[-1]}"


def _secret_arn(call: dict[str, Any], region: str, account: str) -> str:
    if call.get("arn"):
        return str(call["arn"])
    secret = str(call["params"].get("SecretId") or call["params"].get("Name") or "")
    if secret.startswith("arn:"):
        return secret
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-{SECRET_SUFFIX}"


def _requests(call: dict[str, Any], account: str) -> Iterator[tuple[str, str]]:
    """(IAM action, resource ARN) for each authorization one logged request needs."""
    service, params, region = call["service"], call["params"], call["region"] or REGION
    name = operation(call)
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{account}:table/"
        if "TransactItems" in params:
            for item, table_name in params["TransactItems"]:
                yield f"dynamodb:{_TRANSACTION_ITEMS[item]}", table + table_name
        elif "Tables" in params:
            for table_name in params["Tables"]:
                yield f"dynamodb:{name}", table + table_name
        else:
            index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
            yield f"dynamodb:{name}", table + str(params.get("TableName", "")) + index
    elif service == "sqs":
        action = f"sqs:{_SQS_SINGULAR.get(name, name)}"
        if name == "StartMessageMoveTask":
            # The move receives and deletes from the source and sends to the destination, as its caller.
            source = str(params["SourceArn"])
            yield action, source
            for needed in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                yield needed, source
            if params.get("DestinationArn"):
                yield "sqs:SendMessage", str(params["DestinationArn"])
        elif params.get("SourceArn"):
            yield action, str(params["SourceArn"])
        else:
            yield action, _queue_arn(str(params.get("QueueUrl") or params.get("QueueName") or ""), region, account)
    elif service == "secretsmanager":
        yield f"secretsmanager:{name}", _secret_arn(call, region, account)
    elif service == "kms":
        key = str(params.get("KeyId", ""))
        yield f"kms:{name}", key if key.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{key}"
    elif service == "apigateway":
        method, path = name.split(" ", 1)
        yield f"apigateway:{method}", f"arn:aws:apigateway:{region}::{path}"
    elif service == "cloudformation":
        stack = str(params.get("StackName", ""))
        yield (
            f"cloudformation:{name}",
            stack if stack.startswith("arn:") else f"{STACK_ID.rsplit(':', 1)[0]}:stack/{stack}/*",
        )
    elif service == "sts" and name != "GetCallerIdentity":  # GetCallerIdentity needs no permission
        yield f"sts:{name}", str(params.get("RoleArn", "*"))
    else:
        yield f"{service}:{name}", "*"


def iam_calls(calls: Iterable[dict[str, Any]], deployment: Deployment) -> list[IamCall]:
    """The distinct IAM requests of a call log's principals (the harness's calls left out), by the deployment's
    names. Every request counts, whatever it was answered: IAM decides before the service does. The local stack
    runs in the deployment's account (devstack.template.LOCAL_ACCOUNT), so only stack names change."""
    calls = list(calls)
    names = LocalNames.of(calls, deployment)
    found = set()
    for call in calls:
        if call["key"] not in deployment.roles:
            continue
        for action, resource in _requests(call, ACCOUNT):
            resource = names.canonical(resource)
            if action == "cloudformation:DescribeStacks" and resource.endswith(f"stack/{STACK}/*"):
                resource = STACK_ID
            found.add(IamCall(call["key"], action, resource))
    return sorted(found)


def encrypted_secrets(calls: Iterable[dict[str, Any]], deployment: Deployment) -> set[str]:
    """The secrets a call log created under the stack's data key, by the deployment's ARN."""
    calls = list(calls)
    names = LocalNames.of(calls, deployment)
    return {
        names.canonical(_secret_arn(call, call["region"] or REGION, ACCOUNT))
        for call in calls
        if call["service"] == "secretsmanager"
        and operation(call) == "CreateSecret"
        and names.canonical(str(call["params"].get("KmsKeyId", ""))) == deployment.data_key_arn
    }


# ---------------------------------------------------------------- calls AWS makes for the caller


def implied_calls(recorded: Iterable[IamCall], deployment: Deployment, encrypted: set[str]) -> list[IamCall]:
    """The calls AWS makes for the recorded ones, or for the functions: Lambda's logs and event source mappings,
    and the KMS calls of SQS and Secrets Manager under the stack's key (``encrypted``: the secrets under it)."""
    implied: set[IamCall] = set()
    queues = {queue.arn: queue for queue in deployment.queues.values()}
    for function in deployment.functions.values():
        stream = function.log_group_arn.removesuffix("*") + "log-stream:2025/01/01/[$LATEST]0123456789abcdef"
        implied |= {
            IamCall(function.role, f"logs:{action}", stream, BY_LAMBDA_LOGS)
            for action in ("CreateLogStream", "PutLogEvents")
        }
        if function.queue is not None:
            arn = deployment.queues[function.queue].arn
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                implied.add(IamCall(function.role, action, arn, BY_EVENT_SOURCE))
    via_sqs = f"sqs.{REGION}.amazonaws.com"
    via_secrets = f"secretsmanager.{REGION}.amazonaws.com"
    for call in [*recorded, *implied]:
        key = deployment.data_key_arn
        queue = queues.get(call.resource)
        account = call.resource.split(":")[4]
        if queue is not None and queue.kms_key_arn is not None:
            # SQS asks KMS for a data key (or decrypts a cached one) to send, and decrypts to receive.
            actions = {
                "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
                "sqs:ReceiveMessage": ("kms:Decrypt",),
            }
            for action in actions.get(call.action, ()):
                made = IamCall(call.principal, action, queue.kms_key_arn, BY_SQS)
                implied.add(made.with_context(kms__ViaService=via_sqs, kms__CallerAccount=account))
        if call.resource == deployment.extend_key_secret_arn and call.action == "secretsmanager:GetSecretValue":
            extend_key = deployment.extend_key_kms_key_arn
            if extend_key is not None:  # ExtendApiKeySecretKmsKeyArn: the secret is under a key of the deployer's
                made = IamCall(call.principal, "kms:Decrypt", extend_key, BY_SECRETS_MANAGER)
                implied.add(made.with_context(kms__ViaService=via_secrets, kms__CallerAccount=account))
        if call.resource in encrypted and key is not None:
            name = call.action.split(":", 1)[1]
            kms_action = (
                "kms:Decrypt" if name == "GetSecretValue" else "kms:GenerateDataKey" if name in _SECRET_WRITES else None
            )
            if kms_action is not None:
                made = IamCall(call.principal, kms_action, key, BY_SECRETS_MANAGER)
                implied.add(made.with_context(kms__ViaService=via_secrets, kms__CallerAccount=account))
    return sorted(implied)


def calls_of(logs: Iterable[list[dict[str, Any]]], deployment: Deployment) -> list[IamCall]:
    """Every distinct IAM request of some call logs, recorded and implied, by the deployment's names."""
    recorded: set[IamCall] = set()
    encrypted: set[str] = set()
    for log in logs:
        recorded.update(iam_calls(log, deployment))
        encrypted |= encrypted_secrets(log, deployment)
    return sorted(recorded | set(implied_calls(recorded, deployment, encrypted)))
