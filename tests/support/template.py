"""The template as written, as SAM expands it, and the artifacts `sam build` leaves behind, for the tests.

The expansion and the build come from `make infra`, which runs in the tools venv (.tools/sam) before pytest in
`make test`. Without them a test is skipped with the command to run, except in CI (CI=true), where a missing or
stale artifact fails the test instead: CI must never pass by skipping the infrastructure checks.
"""

from __future__ import annotations

import hashlib
import json
import os
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
