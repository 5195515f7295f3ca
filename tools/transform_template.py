"""Expand template.yaml with the SAM translator, offline, into plain CloudFormation JSON.

Runs inside the .tools/sam venv (``make infra``); tests/infra/test_template_*.py then assert the template's
semantics on the output without needing the translator in the app venv. Usage:

    .tools/sam/bin/python tools/transform_template.py template.yaml .aws-sam/transformed.json
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform


class OfflinePolicyLoader(ManagedPolicyLoader):
    """The template names managed policies by ARN only, so the IAM lookup by name is never needed."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)

    def load(self) -> dict[str, str]:
        return {}


def use_placeholder_artifacts(template: dict[str, Any]) -> None:
    """Point local code paths at a placeholder S3 object, as ``sam validate`` does before translating."""
    placeholder = "s3://placeholder-bucket/artifact.zip"
    globals_function = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = placeholder
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            properties["CodeUri"] = placeholder
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = placeholder


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    # The translator wants a region for pseudo parameters; the output keeps ${AWS::Region} references as they are.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    raw = source.read_bytes()
    template: dict[str, Any] = yaml_parse(raw.decode("utf-8"))
    use_placeholder_artifacts(template)
    transformed = transform(template, {}, OfflinePolicyLoader())
    # Lets the tests tell a stale expansion from a current one.
    transformed.setdefault("Metadata", {})["TransformedFrom"] = {
        "file": source.name,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(transformed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{source} -> {target}: {len(transformed.get('Resources', {}))} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
