"""The deploy a newcomer follows, checked where no AWS account is needed: the sample config names every template
parameter with a value the template accepts, SAM reads it (and the overrides file ``make deploy`` writes) as
intended, ``make deploy`` builds and then deploys with the pinned SAM CLI, the teardown names everything the
template retains, and the README's deploy in brief uses targets that exist."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.template import parse_cfn_yaml
from tests.support.template import ROOT, TEMPLATE, missing_artifact

EXAMPLE = ROOT / "docs" / "samconfig.example.toml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
RETAINING = {"Retain", "RetainExceptOnCreate"}
# Names the example's comments give to values that are not the template's default.
NOT_THE_DEFAULT = ("Required", "Not the default")


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    active: bool  # False: written out in a comment, for make deploy to fill in
    explanation: tuple[str, ...]


def template() -> dict[str, Any]:
    document: dict[str, Any] = parse_cfn_yaml(TEMPLATE.read_text(encoding="utf-8"))
    return document


def example_entries() -> list[Entry]:
    """Each ``"Name=value"`` line of the example's parameter_overrides, commented out or not, with the comment
    lines right above it (a blank line starts a new group)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("parameter_overrides = [\n") :].splitlines()[1:]
    entries: list[Entry] = []
    comments: list[str] = []
    for line in (line.strip() for line in block):
        if line == "]":
            break
        found = re.fullmatch(r"""(#\s*)?(["'])(\w+=.*)\2,(\s*#.*)?""", line)
        if found:
            [pair] = shlex.split(found.group(3))
            name, _, value = pair.partition("=")
            entries.append(Entry(name, value, found.group(1) is None, tuple(comments)))
            comments = []
        elif line.startswith("#"):
            comments.append(line.lstrip("# "))
        elif not line:
            comments = []
    return entries


def example_environment() -> dict[str, Any]:
    parameters: dict[str, Any] = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["default"]["deploy"]["parameters"]
    return parameters


def test_the_sample_config_names_every_template_parameter_once_each_explained() -> None:
    entries = example_entries()
    names = [entry.name for entry in entries]

    # Every parameter of the template, once, and nothing else
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)
    assert sorted(names) == sorted(template()["Parameters"])
    # The line reading agrees with TOML's: the active entries are exactly the list sam deploy gets
    active = [f"{entry.name}={entry.value}" for entry in entries if entry.active]
    parsed = [shlex.split(pair)[0] for pair in example_environment()["parameter_overrides"]]
    assert active == parsed
    # Only the key policy administrator is left for make deploy to fill in
    assert [entry.name for entry in entries if not entry.active] == ["KeyPolicyAdministratorArn"]
    # and each has a comment of its own saying what it does (not only its group's heading)
    unexplained = [e.name for e in entries if not [line for line in e.explanation if not line.startswith("----")]]
    assert unexplained == []


def rejection(spec: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse the value for this parameter, or None."""
    if "AllowedValues" in spec and value not in [str(allowed) for allowed in spec["AllowedValues"]]:
        return f"not one of {spec['AllowedValues']}"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return f"does not match {spec['AllowedPattern']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than {spec['MaxLength']}"
    if spec.get("Type") == "Number":
        number = float(value)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"below {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"above {spec['MaxValue']}"
    return None


def test_the_sample_values_are_ones_the_template_accepts_and_its_defaults_unless_marked() -> None:
    parameters = template()["Parameters"]
    entries = example_entries()

    refused = {e.name: reason for e in entries if (reason := rejection(parameters[e.name], e.value)) is not None}
    assert refused == {}
    differing = {
        entry.name: (entry.value, parameters[entry.name].get("Default"))
        for entry in entries
        if entry.active
        and not any(mark in line for line in entry.explanation for mark in NOT_THE_DEFAULT)
        and entry.value != str(parameters[entry.name].get("Default"))
    }
    assert differing == {}, "a sample value differs from the template's default without saying so"


def test_the_sample_asks_for_the_capabilities_the_template_needs() -> None:
    document = template()
    transforms = document["Transform"] if isinstance(document["Transform"], list) else [document["Transform"]]
    named_iam = {
        "AWS::IAM::Role": "RoleName",
        "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
        "AWS::IAM::User": "UserName",
        "AWS::IAM::Group": "GroupName",
        "AWS::IAM::InstanceProfile": "InstanceProfileName",
    }
    needed = {"CAPABILITY_IAM"}
    for resource in document["Resources"].values():
        if named_iam.get(resource["Type"], "-") in resource.get("Properties", {}):
            needed.add("CAPABILITY_NAMED_IAM")
    if "AWS::LanguageExtensions" in transforms:
        needed.add("CAPABILITY_AUTO_EXPAND")

    assert needed <= set(example_environment()["capabilities"].split())


def run_with_sam(script: str) -> Any:
    """A script in the pinned SAM CLI's venv (make tools), printing JSON."""
    if not SAM_PYTHON.exists():
        missing_artifact("the pinned SAM CLI is not installed: run `make tools`")
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sam_reads_the_sample_and_the_file_make_deploy_writes_as_meant(tmp_path: Path) -> None:
    # Given the sample made someone's own (an account of theirs, and the administrator set, so that the step of
    # make deploy that writes the overrides needs no AWS)
    own = tmp_path / "samconfig.prod.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("111122223333", "444455556666")
    own.write_text(text.replace('# "KeyPolicyAdministratorArn=', '"KeyPolicyAdministratorArn='), encoding="utf-8")
    written = tmp_path / "deploy-parameters.yaml"
    step = subprocess.run(
        [sys.executable, "tools/deploy_parameters.py", str(own), "default", str(written)],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert step.returncode == 0, step.stderr

    # When SAM's own config reader and parameter type read the config, and the file as --parameter-overrides
    read = run_with_sam(
        "import json\n"
        "from samcli.lib.config.samconfig import SamConfig\n"
        "from samcli.cli.types import CfnParameterOverridesType\n"
        f"config = SamConfig({str(tmp_path)!r}, 'samconfig.prod.toml')\n"
        "config = config.get_all(['deploy'], 'parameters', env='default')\n"
        "convert = CfnParameterOverridesType().convert\n"
        "print(json.dumps({'stack_name': config['stack_name'], 'region': config['region'],\n"
        "    'from_config': convert(config['parameter_overrides'], None, None),\n"
        f"    'from_file': convert(('file://{written}',), None, None)}}))\n"
    )

    # Then both give every template parameter, with the same values, the empty ones empty
    assert (read["stack_name"], read["region"]) == ("extend-parser-run-deleter", "eu-west-1")
    assert sorted(read["from_config"]) == sorted(template()["Parameters"])
    assert read["from_file"] == read["from_config"]
    assert read["from_config"]["CustomDomainName"] == ""
    assert read["from_config"]["ExtendApiKeySecretArn"].startswith("arn:aws:secretsmanager:eu-west-1:444455556666:")


def make_dry_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_deploy_builds_then_deploys_with_the_pinned_sam_cli_and_the_config_given() -> None:
    result = make_dry_run("deploy", "CONFIG=docs/samconfig.example.toml", "ENV=staging")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.replace("\\\n", " ").splitlines()

    build = next(i for i, line in enumerate(commands) if " build " in f"{line} " and "sam build" in line)
    write = next(i for i, line in enumerate(commands) if "tools/deploy_parameters.py" in line)
    [deploy] = [i for i, line in enumerate(commands) if "sam deploy" in line]
    assert build < write < deploy
    assert commands[build].startswith(".tools/sam/bin/sam build")
    assert commands[deploy].startswith(".tools/sam/bin/sam deploy")
    options = shlex.split(commands[deploy])
    assert options[options.index("--config-file") + 1] == str(EXAMPLE)  # absolute: SAM resolves relative ones
    assert options[options.index("--config-env") + 1] == "staging"  # against the template's folder
    assert options[options.index("--template-file") + 1] == ".aws-sam/build/template.yaml"
    assert options[options.index("--parameter-overrides") + 1] == f"file://{ROOT / '.aws-sam/deploy-parameters.yaml'}"
    assert shlex.split(commands[write])[-3:] == [
        "docs/samconfig.example.toml",
        "staging",
        ".aws-sam/deploy-parameters.yaml",
    ]


def test_make_deploy_without_a_config_stops_before_building() -> None:
    result = make_dry_run("deploy")
    assert result.returncode != 0
    assert "CONFIG=" in result.stderr and "docs/samconfig.example.toml" in result.stderr
    assert "sam build" not in result.stdout


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_teardown_names_every_resource_the_template_retains() -> None:
    retained = {
        name for name, resource in template()["Resources"].items() if resource.get("DeletionPolicy") in RETAINING
    }
    teardown = section(DEPLOY_DOC.read_text(encoding="utf-8"), "Tear down")

    assert {"TenantsTable", "LedgerTable", "DataKey"} <= retained
    assert {name for name in retained if f"`{name}`" not in teardown} == set()
    [query] = re.findall(r"contains\(\[(.*?)\], LogicalResourceId\)", teardown)
    assert set(re.findall(r"'(\w+)'", query)) == retained


def test_the_readme_deploys_in_five_commands_with_targets_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    brief = section(readme, "Deploy in brief")
    [block] = re.findall(r"```bash\n(.*?)```", brief, re.DOTALL)
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert len(commands) <= 5
    targets = {word.split()[0] for line in commands if line.startswith("make ") for word in [line[5:]]}
    assert {"deploy", "smoke"} <= targets
    assert {target for target in targets if not re.search(rf"^{target}:", makefile, re.MULTILINE)} == set()
    assert "docs/samconfig.example.toml" in block
    assert "(docs/deploy.md)" in brief


@pytest.mark.parametrize("anchor", ["6-the-first-tenant", "8-the-smoke-test"])
def test_the_local_walkthrough_links_to_sections_of_the_deploy_that_exist(anchor: str) -> None:
    headings = re.findall(r"^## (.+)$", DEPLOY_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    slugs = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}
    assert f"deploy.md#{anchor}" in (ROOT / "docs" / "local-stack.md").read_text(encoding="utf-8")
    assert anchor in slugs
