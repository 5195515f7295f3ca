"""The template as written, as SAM expands it, and the artifacts `sam build` leaves behind, for the tests; and the
look-ups the tests of the template share (its functions and queues, a role's grants, an event source mapping).

The expansion and the build come from `make infra`, which runs in the tools venv (.tools/sam) before pytest in
`make test`. Without them a test is skipped with the command to run, except in CI (CI=true), where a missing or
stale artifact fails the test instead: CI must never pass by skipping the infrastructure checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.template import parse_cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TRANSFORMED = ROOT / ".aws-sam" / "transformed.json"
BUILD_DIR = ROOT / ".aws-sam" / "build"
EVENTS = ROOT / "events"


def missing_artifact(message: str) -> None:
    """Skip locally, fail in CI."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI=true, so this fails instead of skipping)")
    pytest.skip(message)


# ---------------------------------------------------------------- the template as SAM expands it


@dataclass(frozen=True)
class Cfn:
    """The transformed CloudFormation template, with the look-ups the tests share."""

    doc: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.doc["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def one_of_type(self, resource_type: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
        matches = [(n, r) for n, r in self.of_type(resource_type).items() if n.startswith(prefix)]
        assert len(matches) == 1, f"expected one {resource_type} named {prefix}*, found {[n for n, _ in matches]}"
        name, resource = matches[0]
        return name, resource.get("Properties", {})

    def find_in_map(self, value: Any) -> Any:
        """Resolve a Fn::FindInMap against the template's Mappings; other values come back unchanged."""
        if isinstance(value, dict) and "Fn::FindInMap" in value:
            mapping, top, second = value["Fn::FindInMap"]
            return self.doc["Mappings"][mapping][top][second]
        return value

    def parameter_default(self, name: str) -> Any:
        return self.doc["Parameters"][name].get("Default")

    def ref_target(self, value: Any) -> str | None:
        """The logical id a {"Ref": ...} or {"Fn::GetAtt": [...]} points at."""
        if isinstance(value, dict):
            if "Ref" in value:
                return str(value["Ref"])
            if "Fn::GetAtt" in value:
                return str(value["Fn::GetAtt"][0])
        return None

    def function_behind(self, function_name_value: Any) -> str:
        """Follow an event source's FunctionName (function, alias or version) to the AWS::Lambda::Function."""
        target = self.ref_target(function_name_value)
        assert target, f"not a reference: {function_name_value!r}"
        while self.resources[target]["Type"] in {"AWS::Lambda::Alias", "AWS::Lambda::Version"}:
            next_target = self.ref_target(self.props(target)["FunctionName"])
            assert next_target, f"{target} does not reference a function"
            target = next_target
        assert self.resources[target]["Type"] == "AWS::Lambda::Function"
        return target


def source_sha256() -> str:
    return hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()


def load_transformed() -> Cfn:
    """The expansion `make infra` wrote, checked to be of the current template.yaml."""
    if not TRANSFORMED.is_file():
        missing_artifact(f"{TRANSFORMED.relative_to(ROOT)} is missing: run `make infra` (or `make validate`)")
    doc = json.loads(TRANSFORMED.read_text(encoding="utf-8"))
    recorded = doc.get("Metadata", {}).get("TransformedFrom", {}).get("sha256")
    if recorded != source_sha256():
        missing_artifact(f"{TRANSFORMED.relative_to(ROOT)} is stale (template.yaml changed): run `make infra`")
    return Cfn(doc)


# ---------------------------------------------------------------- the built artifacts


@dataclass(frozen=True)
class BuiltArtifacts:
    template: dict[str, Any]
    root: Path

    def function_dir(self, logical_id: str) -> Path:
        return self.root / logical_id

    def layer_python_dir(self, logical_id: str) -> Path:
        return self.root / logical_id / "python"


def _stale_sources(source: Path, built: Path) -> list[str]:
    stale = []
    for path in sorted(source.rglob("*.py")):
        copy = built / path.relative_to(source)
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            stale.append(str(path.relative_to(ROOT)))
    return stale


def load_built() -> BuiltArtifacts:
    """What `sam build` left in .aws-sam/build, checked to hold the current handler/ sources."""
    built_template = BUILD_DIR / "template.yaml"
    if not built_template.is_file():
        missing_artifact(f"{BUILD_DIR.relative_to(ROOT)} is missing: run `make build` (or `make infra`)")
    template = parse_cfn_yaml(built_template.read_text(encoding="utf-8"))
    artifacts = BuiltArtifacts(template, BUILD_DIR)
    functions = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    for name in functions:
        stale = _stale_sources(ROOT / "handler", artifacts.function_dir(name))
        if stale:
            missing_artifact(f"the build of {name} is stale ({', '.join(stale[:3])}...): run `make build`")
    return artifacts


# ---------------------------------------------------------------- look-ups the tests of the template share

QUEUE_FUNCTION = "QueueFunction"
API_FUNCTION = "ApiFunction"
CALLBACK_FUNCTION = "CallbackFunction"
SWEEPER_FUNCTION = "SweeperFunction"
FUNCTIONS = [QUEUE_FUNCTION, API_FUNCTION, CALLBACK_FUNCTION, SWEEPER_FUNCTION]
ALL_QUEUES = ["DeletionQueue", "DeadLetterQueue", "CallbackQueue", "CallbackDeadLetterQueue"]
# The operator role's ARN: the role the stack creates, or the one the deployer names.
OPERATOR = {"Fn::If": ["CreateOperatorRole", {"Fn::GetAtt": ["OperatorRole", "Arn"]}, {"Ref": "OperatorRoleArn"}]}


def statements(cfn: Cfn, role_name: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every statement granted to a role (its inline policies and the policy resources attached to it), with the
    condition it depends on (Fn::If branches)."""
    documents = [policy["PolicyDocument"] for policy in cfn.props(role_name).get("Policies", [])]
    documents += [
        policy["Properties"]["PolicyDocument"]
        for policy in [*cfn.of_type("AWS::IAM::Policy").values(), *cfn.of_type("AWS::IAM::ManagedPolicy").values()]
        if {"Ref": role_name} in attached_roles(policy["Properties"].get("Roles", []))
    ]
    for document in documents:
        for statement in document["Statement"]:
            condition = None
            if "Fn::If" in statement:
                condition, statement, otherwise = statement["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}
            yield statement, condition


def attached_roles(roles: Any) -> list[Any]:
    """A policy's ``Roles``, through the ``Fn::If`` that attaches the operator policy only to a role it created."""
    if isinstance(roles, dict) and "Fn::If" in roles:
        return [role for branch in roles["Fn::If"][1:] if isinstance(branch, list) for role in branch]
    return list(roles)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sub_target(resource: Any) -> Any:
    """What a SAM policy template's ``Fn::Sub [pattern, {name: value}]`` resource points at."""
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], list):
        _, variables = resource["Fn::Sub"]
        [value] = variables.values()
        return value
    return resource


def grants(cfn: Cfn, role_name: str) -> dict[str, list[tuple[Any, str | None]]]:
    """action -> [(what the resource points at, condition)] for one role."""
    found: dict[str, list[tuple[Any, str | None]]] = {}
    for statement, condition in statements(cfn, role_name):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                found.setdefault(action, []).append((sub_target(resource), condition))
    return found


def env(cfn: Cfn, function: str) -> dict[str, Any]:
    return cfn.props(function)["Environment"]["Variables"]


def event_source_mapping(cfn: Cfn, queue: str) -> dict[str, Any]:
    """The properties of the event source mapping polling ``queue``: there are exactly two, the deletion queue's
    and the callback queue's."""
    mappings = {
        cfn.ref_target(mapping["Properties"]["EventSourceArn"]): mapping["Properties"]
        for mapping in cfn.of_type("AWS::Lambda::EventSourceMapping").values()
    }
    assert len(mappings) == len(cfn.of_type("AWS::Lambda::EventSourceMapping")), "one mapping per queue"
    assert set(mappings) == {"DeletionQueue", "CallbackQueue"}, "exactly the deletion and callback queues' mappings"
    return mappings[queue]


def api_operations(cfn: Cfn) -> dict[tuple[str, str], dict[str, Any]]:
    body = cfn.props("DeletionApi")["Body"]
    return {
        (path, method): operation for path, methods in body["paths"].items() for method, operation in methods.items()
    }
