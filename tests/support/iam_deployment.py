"""The stack as IAM sees it once deployed: every policy of template.yaml (as SAM expands it) with its intrinsic
functions resolved to concrete ARNs, for one fixed account, region and stack name.

Physical names follow the local stack's convention (``<stack>-<logical id>`` for tables, queues and roles), so a
call recorded on the local stack names the same resource here once its stack name is replaced (``iam_calls``).
The policies are: each role's identity policies (its ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy``
attachments), its permissions boundary when ``PermissionsBoundaryArn`` is set, the data key's policy, the queues'
policies, and the tenants' secrets' resource policies, built by the code the operator CLI creates them with
(``opscli.tenants.SecretProtection``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from devstack.template import Resolver
from opscli.tenants import SecretProtection
from tests.support.template import Cfn

ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"
STACK: Final = "extend-parser-run-deleter"
STACK_ID: Final = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/5a7d3e20-1c2b-11f0-8f3e-0a1b2c3d4e5f"
DATA_KEY_ID: Final = "3c9f6a1e-2b7d-4e8a-9f0c-1d2e3f4a5b6c"
# A secret's ARN ends with "-" and six characters Secrets Manager picks; these stand for them.
SECRET_SUFFIX: Final = "XXXXXX"
EXTEND_KEY_SECRET_ARN: Final = (
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{STACK}/extend-api-key-{SECRET_SUFFIX}"
)
# The operator role's session, as `extend-deleter --role-arn` names it (opscli.context.SESSION_NAME).
OPERATOR_SESSION: Final = "extend-deleter-cli"
OPERATOR: Final = "OperatorRole"


@dataclass(frozen=True)
class Policy:
    """One policy document, by the name its statements are known by in verdicts (the template's logical id, or
    a description for a policy the template does not hold)."""

    name: str
    document: dict[str, Any]

    @property
    def statements(self) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = self.document["Statement"]
        return statements

    def without(self, index: int) -> Policy:
        """This policy without its statement at ``index`` (0-based)."""
        statements = [s for i, s in enumerate(self.statements) if i != index]
        return Policy(self.name, {**self.document, "Statement": statements})

    def statement_name(self, index: int) -> str:
        return f"{self.name}/{self.statements[index].get('Sid') or f'#{index + 1}'}"


@dataclass(frozen=True)
class Queue:
    logical_id: str
    arn: str
    url: str
    kms_key_arn: str | None  # None: the AWS-managed aws/sqs key, whose use IAM does not restrict


@dataclass(frozen=True)
class Function:
    logical_id: str
    role: str  # the role's logical id
    log_group_arn: str  # "...:log-group:<name>:*", as CloudFormation's Arn attribute gives it
    queue: str | None  # the queue its event source mapping polls


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


@dataclass
class Deployment:
    """template.yaml's stack, deployed with ``parameters`` (the defaults otherwise) as ``STACK`` in ``ACCOUNT``."""

    cfn: Cfn
    parameters: Mapping[str, str] = field(default_factory=dict)
    # The organization's permissions boundary, when PermissionsBoundaryArn names one (the template cannot hold it).
    boundary: Policy | None = None
    # The policies of keys the template names but does not hold (ExtendApiKeySecretKmsKeyArn's), by key ARN.
    key_policies: Mapping[str, Policy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.resolver = Resolver(
            self.cfn.doc, {"ExtendApiKeySecretArn": EXTEND_KEY_SECRET_ARN, **self.parameters}, stack_name=STACK
        )
        self.resolver.refs["AWS::StackId"] = STACK_ID
        for logical_id, resource in self.cfn.resources.items():
            self._name(logical_id, resource)

    def _name(self, logical_id: str, resource: dict[str, Any]) -> None:
        """The physical name and ARN of one resource, as ``Ref`` and ``Fn::GetAtt .Arn`` give them."""
        refs, attributes, kind = self.resolver.refs, self.resolver.attributes, resource["Type"]
        name = f"{STACK}-{logical_id}"
        if kind == "AWS::DynamoDB::Table":
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        elif kind == "AWS::SQS::Queue":
            refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            attributes[(logical_id, "QueueName")] = name
        elif kind == "AWS::IAM::Role":
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        elif kind == "AWS::IAM::ManagedPolicy":
            refs[logical_id] = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
        elif kind == "AWS::KMS::Key":
            refs[logical_id] = DATA_KEY_ID
            attributes[(logical_id, "Arn")] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{DATA_KEY_ID}"
        elif kind == "AWS::Logs::LogGroup":
            group = str(self.resolver.resolve(resource["Properties"]["LogGroupName"]))
            refs[logical_id] = group
            attributes[(logical_id, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
        elif kind == "AWS::Lambda::Function":
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def _exists(self, logical_id: str) -> bool:
        condition = self.cfn.resources[logical_id].get("Condition")
        return condition is None or self.resolver.condition(condition)

    def resolve(self, value: Any) -> Any:
        return self.resolver.resolve(value)

    # ---------------------------------------------------------------- principals

    def role_arn(self, role: str) -> str:
        """A role's ARN: one of the stack's roles by logical id, or the operator role OperatorRoleArn names."""
        if role == OPERATOR:
            return self.operator_role_arn
        return self.resolver.attributes[(role, "Arn")]

    @property
    def operator_role_arn(self) -> str:
        return str(
            self.resolve(
                {"Fn::If": ["CreateOperatorRole", {"Fn::GetAtt": [OPERATOR, "Arn"]}, {"Ref": "OperatorRoleArn"}]}
            )
        )

    def session_arn(self, role: str, session: str) -> str:
        """The principal a call is made as: a session of the role."""
        role_arn = self.role_arn(role)
        account, role_name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"

    def session_name(self, role: str) -> str:
        """The session a role's calls are made in: its function's (Lambda names it after the function), or the CLI's."""
        for function in self.functions.values():
            if function.role == role:
                return f"{STACK}-{function.logical_id}"
        return OPERATOR_SESSION

    @property
    def roles(self) -> list[str]:
        """The principals of the stack: the function roles, and the operator role (created or brought)."""
        return sorted({function.role for function in self.functions.values()} | {OPERATOR})

    def identity_policies(self, role: str) -> list[Policy]:
        """The policies attached to a role: the stack's policy resources naming it, and its inline policies. A
        brought operator role has the OperatorPolicy the stack outputs attached (as docs/deploy.md says to)."""
        role_name = self.role_arn(role).rsplit("/", 1)[-1]
        policies = []
        for logical_id, resource in sorted(self.cfn.resources.items()):
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") or not self._exists(logical_id):
                continue
            properties = self.resolve(resource["Properties"])
            attached = role_name in _as_list(properties.get("Roles", []))
            brought = logical_id == "OperatorPolicy" and role == OPERATOR and not self._exists(OPERATOR)
            if attached or brought:
                policies.append(Policy(logical_id, properties["PolicyDocument"]))
        if role in self.cfn.resources and self._exists(role):
            for index, inline in enumerate(self.resolve(self.cfn.props(role)).get("Policies", [])):
                policies.append(Policy(f"{role}.{inline.get('PolicyName', index)}", inline["PolicyDocument"]))
        return policies

    def boundary_policies(self, role: str) -> list[Policy]:
        """The permissions boundary on a role of the stack, when the template sets one (PermissionsBoundaryArn)."""
        if role not in self.cfn.resources or not self._exists(role):
            return []
        arn = self.resolve(self.cfn.props(role)).get("PermissionsBoundary")
        if not arn:
            return []
        assert self.boundary is not None, f"{role} has the permissions boundary {arn}: give its document"
        return [self.boundary]

    # ---------------------------------------------------------------- resources

    @property
    def data_key_arn(self) -> str | None:
        return self.resolver.attributes[("DataKey", "Arn")] if self._exists("DataKey") else None

    @property
    def extend_key_secret_arn(self) -> str:
        return str(self.resolve({"Ref": "ExtendApiKeySecretArn"}))

    @property
    def extend_key_kms_key_arn(self) -> str | None:
        """The customer-managed key the Extend key's secret is encrypted with (None: the AWS-managed one)."""
        return str(self.resolve({"Ref": "ExtendApiKeySecretKmsKeyArn"})) or None

    @property
    def queues(self) -> dict[str, Queue]:
        found = {}
        for logical_id in self.cfn.of_type("AWS::SQS::Queue"):
            key = self.resolve(self.cfn.props(logical_id).get("KmsMasterKeyId"))
            found[logical_id] = Queue(
                logical_id,
                self.resolver.attributes[(logical_id, "Arn")],
                self.resolver.refs[logical_id],
                self.data_key_arn if key == DATA_KEY_ID else None,
            )
        return found

    @property
    def functions(self) -> dict[str, Function]:
        polled: dict[str, str] = {}
        for mapping in self.cfn.of_type("AWS::Lambda::EventSourceMapping").values():
            properties = mapping["Properties"]
            queue = _target(properties["EventSourceArn"])
            assert queue is not None
            polled[self.cfn.function_behind(properties["FunctionName"])] = queue
        found = {}
        for logical_id in self.cfn.of_type("AWS::Lambda::Function"):
            properties = self.cfn.props(logical_id)
            role = _target(properties["Role"])
            group = _target(properties.get("LoggingConfig", {}).get("LogGroup"))
            assert role is not None and group is not None, f"{logical_id} has no role or no log group of its own"
            found[logical_id] = Function(
                logical_id, role, self.resolver.attributes[(group, "Arn")], polled.get(logical_id)
            )
        return found

    @property
    def secret_protection(self) -> SecretProtection:
        """How the operator CLI protects the tenants' secrets on this stack (from its outputs)."""
        return SecretProtection(
            self.data_key_arn,
            self.operator_role_arn,
            self.role_arn("ApiFunctionRole"),
            self.role_arn("CallbackFunctionRole"),
        )

    def tenant_secret_prefix(self) -> str:
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{STACK}/tenants/"

    def resource_policy(self, arn: str) -> Policy | None:
        """The resource-based policy IAM evaluates a call on ``arn`` with: a queue's, the data key's, a tenant
        secret's; None for resources without one (the tables, the Extend key's secret)."""
        for logical_id, policy in self.cfn.of_type("AWS::SQS::QueuePolicy").items():
            queues = [_target(queue) for queue in policy["Properties"]["Queues"]]
            if any(self.resolver.attributes[(str(queue), "Arn")] == arn for queue in queues):
                return Policy(logical_id, self.resolve(policy["Properties"]["PolicyDocument"]))
        if arn == self.data_key_arn:
            return Policy("DataKey", self.resolve(self.cfn.props("DataKey")["KeyPolicy"]))
        if arn in self.key_policies:
            return self.key_policies[arn]
        match = re.fullmatch(re.escape(self.tenant_secret_prefix()) + r"[^/]+/(signing|callback-signing)-\w{6}", arn)
        if match:
            protection = self.secret_protection
            reader = (
                protection.api_function_role_arn
                if match.group(1) == "signing"
                else protection.callback_function_role_arn
            )
            return Policy(f"secret {match.group(1)}", json.loads(protection.resource_policy(reader)))
        return None
