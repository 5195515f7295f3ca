"""What template.yaml says of the functions: entry points, runtime and layer, timeouts, log groups, SnapStart, published
versions and their environment.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from tests.support.template import (
    API_FUNCTION,
    CALLBACK_FUNCTION,
    FUNCTIONS,
    QUEUE_FUNCTION,
    ROOT,
    SWEEPER_FUNCTION,
    Cfn,
    env,
    event_source_mapping,
)

RUNTIME = "python3.14"
API_GATEWAY_LIMIT_S = 29
# Lambda's version description limit; the template's descriptions are built from bounded parameters.
VERSION_DESCRIPTION_LIMIT = 256


@pytest.mark.parametrize(
    ("function", "entry_point"),
    [(QUEUE_FUNCTION, "queue_function"), (API_FUNCTION, "api_function"), (CALLBACK_FUNCTION, "callback_function")],
)
def test_each_function_runs_its_own_entry_point_on_the_newest_python_on_arm64(
    cfn: Cfn, function: str, entry_point: str
) -> None:
    props = cfn.props(function)
    assert props["Handler"] == f"parser_run_deleter.entrypoints.{entry_point}.lambda_handler"
    assert props["Runtime"] == RUNTIME
    assert props["Architectures"] == ["arm64"]
    assert 128 <= props["MemorySize"] <= 10240
    [layer] = props["Layers"]
    layer_props = cfn.props(cfn.ref_target(layer) or "")
    assert RUNTIME in layer_props["CompatibleRuntimes"]
    assert layer_props["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("function_name", FUNCTIONS)
def test_the_handler_the_template_names_exists_in_handler_dir(cfn: Cfn, function_name: str) -> None:
    module, function = cfn.props(function_name)["Handler"].rsplit(".", 1)
    tree = ast.parse((ROOT / "handler" / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8"))
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_the_layer_is_built_for_the_functions_runtime_and_architecture(raw_template: dict[str, Any]) -> None:
    layer = raw_template["Resources"]["DependenciesLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers" / "dependencies" / "Makefile").read_text(encoding="utf-8")
    assert "build-DependenciesLayer:" in makefile
    assert re.search(r"^LAMBDA_PYTHON_VERSION := 3\.14$", makefile, re.MULTILINE)
    assert re.search(r"^LAMBDA_PLATFORM := manylinux2014_aarch64$", makefile, re.MULTILINE)
    assert "--only-binary=:all:" in makefile


def test_api_function_timeout_fits_inside_api_gateways_29_seconds(cfn: Cfn) -> None:
    timeout = cfn.props(API_FUNCTION)["Timeout"]
    assert timeout < API_GATEWAY_LIMIT_S
    # The in-request retry budget leaves time to enqueue the fallback and answer before the function times out.
    assert float(env(cfn, API_FUNCTION)["API_SYNC_BUDGET_SECONDS"]) <= timeout / 2


def test_a_callback_delivery_gives_up_well_inside_the_callback_functions_timeout(cfn: Cfn) -> None:
    # One delivery per invocation (BatchSize 1): a slow tenant endpoint must time out early enough for the function
    # to record the failure and extend the message's visibility before Lambda ends the invocation.
    assert event_source_mapping(cfn, "CallbackQueue")["BatchSize"] == 1
    assert float(env(cfn, CALLBACK_FUNCTION)["CALLBACK_TIMEOUT_SECONDS"]) <= cfn.props(CALLBACK_FUNCTION)["Timeout"] / 2


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_log_to_their_own_log_group_with_retention(cfn: Cfn, function: str) -> None:
    log_group = cfn.ref_target(cfn.props(function)["LoggingConfig"]["LogGroup"])
    assert log_group
    assert cfn.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert cfn.props(log_group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_log_group_has_a_retention(cfn: Cfn) -> None:
    log_groups = cfn.of_type("AWS::Logs::LogGroup")
    # the three functions' and the API's access log
    assert set(log_groups) == {
        "QueueFunctionLogGroup",
        "ApiFunctionLogGroup",
        "CallbackFunctionLogGroup",
        "SweeperFunctionLogGroup",
        "ApiAccessLogGroup",
    }
    assert all(group["Properties"].get("RetentionInDays") for group in log_groups.values())


def test_no_function_has_a_function_level_dead_letter_queue(cfn: Cfn) -> None:
    # A function DLQ only catches async invokes; failed deletions reach the DLQ through the queue's RedrivePolicy.
    for name, function in cfn.of_type("AWS::Lambda::Function").items():
        assert "DeadLetterConfig" not in function["Properties"], name
    assert not cfn.of_type("AWS::Lambda::EventInvokeConfig")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_snapstart_is_an_opt_in_on_the_published_live_alias(cfn: Cfn, function: str) -> None:
    assert cfn.props(function)["SnapStart"] == {
        "Fn::If": ["SnapStartEnabled", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
    }
    [alias] = [
        a for a in cfn.of_type("AWS::Lambda::Alias").values() if a["Properties"]["FunctionName"] == {"Ref": function}
    ]
    assert alias["Properties"]["Name"] == "live"


def parameters_in(cfn: Cfn, value: Any) -> set[str]:
    """Parameters a value depends on: through Ref, ${...} in Fn::Sub, and the conditions of Fn::If."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= parameters_in(cfn, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and item in cfn.doc["Parameters"]:
                found.add(item)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= {name for name in re.findall(r"\$\{([^}.!]+)\}", text) if name in cfn.doc["Parameters"]}
                found |= parameters_in(cfn, item[1:] if isinstance(item, list) else [])
            elif key == "Fn::If":
                found |= parameters_in(cfn, cfn.doc["Conditions"][item[0]]) | parameters_in(cfn, item[1:])
            else:
                found |= parameters_in(cfn, item)
    return found


@pytest.mark.parametrize("function", FUNCTIONS)
def test_any_parameter_or_layer_change_publishes_a_new_version(cfn: Cfn, function: str) -> None:
    # SAM's version hash sees the function's properties, but neither parameter values nor a new layer version.
    # The version's Description (replaced on any change) must name every parameter the configuration uses and
    # the layer, or a deploy could leave the "live" alias on a stale configuration.
    [(name, version)] = [
        (name, resource)
        for name, resource in cfn.of_type("AWS::Lambda::Version").items()
        if resource["Properties"]["FunctionName"] == {"Ref": function}
    ]
    description = version["Properties"]["Description"]
    # Reserved concurrency belongs to the function, not to a version: it changes without a new one.
    configuration = {key: value for key, value in cfn.props(function).items() if key != "ReservedConcurrentExecutions"}
    used = parameters_in(cfn, configuration)
    # Extend's parameters only where Extend is called: a new key or URL republishes neither the callback function
    # nor the sweeper
    extend = {"ExtendApiKeySecretArn", "ExtendApiVersion", "ExtendApiBaseUrl"}
    calls_extend = function not in (CALLBACK_FUNCTION, SWEEPER_FUNCTION)
    assert used >= {"LogLevel", "EnableSnapStart"}
    assert (used >= extend) is calls_extend
    assert not extend & parameters_in(cfn, description) or calls_extend
    assert used <= parameters_in(cfn, description), (
        f"not in the description: {sorted(used - parameters_in(cfn, description))}"
    )
    [layer] = cfn.props(function)["Layers"]
    assert json.dumps(layer) in json.dumps(description)
    # Replaced versions are kept: the alias may still point at one while the new one is published.
    assert version["DeletionPolicy"] == "Retain", name


def longest_value(cfn: Cfn, value: Any) -> str:
    """The longest text ``value`` can take: each parameter at its longest allowed value (by MaxLength, its allowed
    values, or its pattern's bounds), each ``Fn::Select`` of a ``Fn::Split`` at the whole of what it splits."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        parameter = cfn.doc["Parameters"].get(value["Ref"])
        if parameter is None:  # a resource: a layer version ARN and the like, handled by the caller
            return "x" * 12
        return "x" * longest_parameter(parameter)
    if "Fn::Select" in value:
        index, source = value["Fn::Select"]
        separator, split = source["Fn::Split"]
        return "x" * longest_field(cfn.doc["Parameters"][split["Ref"]]["AllowedPattern"], index, separator)
    if "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return max(longest_value(cfn, yes), longest_value(cfn, no), key=len)
    raise AssertionError(f"cannot bound {value!r}")


def longest_parameter(parameter: dict[str, Any]) -> int:
    if "AllowedValues" in parameter:
        return max(len(str(allowed)) for allowed in parameter["AllowedValues"])
    bounds = [parameter["MaxLength"]] if "MaxLength" in parameter else []
    pattern = parameter.get("AllowedPattern")
    assert pattern or bounds, f"unbounded parameter: {parameter}"
    if pattern:
        bounds.append(longest_match(pattern))
    return min(bounds)


def longest_field(pattern: str, index: int, separator: str) -> int:
    """The longest the ``index``-th ``separator``-separated field can be in a string ``pattern`` accepts (each
    alternative of the pattern is read field by field; the separator never occurs inside a field's class)."""
    lengths = [
        longest_match(fields[index])
        for alternative in pattern.split("|")
        if len(fields := alternative.split(separator)) > index
    ]
    assert lengths, f"no field {index} in {pattern}"
    return max(lengths)


def longest_match(pattern: str) -> int:
    """An upper bound on the length of a string the pattern accepts (it must have no unbounded repetition)."""
    tree = re._parser.parse(pattern)
    return int(tree.getwidth()[1])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_version_description_fits_lambdas_limit_with_the_longest_allowed_inputs(cfn: Cfn, function: str) -> None:
    [version] = [
        resource
        for resource in cfn.of_type("AWS::Lambda::Version").values()
        if resource["Properties"]["FunctionName"] == {"Ref": function}
    ]
    text, variables = version["Properties"]["Description"]["Fn::Sub"]
    # A layer version ARN ends in its version number: ten digits is beyond any real count.
    values = {name: "9" * 10 if name == "Layer" else longest_value(cfn, value) for name, value in variables.items()}

    def longest(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else longest_value(cfn, {"Ref": name})

    longest_description = re.sub(r"\$\{([^}]+)\}", longest, text)
    assert len(longest_description) <= VERSION_DESCRIPTION_LIMIT, (len(longest_description), longest_description)


def test_environment_variables_are_the_ones_the_code_reads(cfn: Cfn) -> None:
    settings_source = (ROOT / "handler" / "parser_run_deleter" / "shared" / "settings.py").read_text(encoding="utf-8")
    for function in FUNCTIONS:
        for name in env(cfn, function):
            assert name.startswith("POWERTOOLS_") or f'"{name}"' in settings_source, f"{function}: {name}"
    assert env(cfn, QUEUE_FUNCTION)["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}
    assert env(cfn, API_FUNCTION)["DELETION_QUEUE_URL"] == {"Ref": "DeletionQueue"}
    # Each SQS function knows its own queue, to confirm its records' receipt handles there, with the visibility
    # timeout that queue hands messages out with (so a returned record comes back as it would have).
    assert env(cfn, QUEUE_FUNCTION)["DELETION_QUEUE_URL"] == {"Ref": "DeletionQueue"}
    for function, queue in ((QUEUE_FUNCTION, "DeletionQueue"), (CALLBACK_FUNCTION, "CallbackQueue")):
        assert env(cfn, function)["SOURCE_QUEUE_VISIBILITY_SECONDS"] == str(cfn.props(queue)["VisibilityTimeout"])
    # The API function authenticates callers with the tenants' signing secrets, and the callback function signs
    # with them: only they learn where. Only the API function remembers signed requests.
    for function in (API_FUNCTION, CALLBACK_FUNCTION):
        assert env(cfn, function)["TENANT_SECRET_PREFIX"] == {"Fn::Sub": "${AWS::StackName}/tenants"}
    assert env(cfn, API_FUNCTION)["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert "TENANT_SECRET_PREFIX" not in env(cfn, QUEUE_FUNCTION)
    for function in (QUEUE_FUNCTION, CALLBACK_FUNCTION):
        assert "IDEMPOTENCY_TABLE_NAME" not in env(cfn, function)
    assert "DELETION_QUEUE_URL" not in env(cfn, CALLBACK_FUNCTION)
    assert "DEAD_LETTER_QUEUE_URL" not in env(cfn, CALLBACK_FUNCTION)  # the redrive policy parks undelivered ones
    assert "WEBHOOK_SIGNING_SECRET_ID" not in env(cfn, API_FUNCTION)  # the one global secret is gone
    # The callback's status link points at this stack's API, at the URL the stack publishes as ApiUrl.
    assert env(cfn, CALLBACK_FUNCTION)["API_BASE_URL"] == cfn.doc["Outputs"]["ApiUrl"]["Value"]
    # Extend's variables only where Extend is called (the callback function tells tenants, never Extend)
    for function in (API_FUNCTION, QUEUE_FUNCTION):
        assert env(cfn, function)["EXTEND_API_KEY_SECRET_ID"] == {"Ref": "ExtendApiKeySecretArn"}
    assert not [name for name in env(cfn, CALLBACK_FUNCTION) if name.startswith("EXTEND_")]
    for function in FUNCTIONS:
        variables = env(cfn, function)
        assert variables["TENANTS_TABLE_NAME"] == {"Ref": "TenantsTable"}  # all reload tenants
        assert variables["LEDGER_TABLE_NAME"] == {"Ref": "LedgerTable"}
        assert variables["LEDGER_RETENTION_DAYS"] == {"Ref": "LedgerRetentionDays"}
        assert variables["CALLBACK_QUEUE_URL"] == {"Ref": "CallbackQueue"}
        assert variables["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"  # events carry customer data


SECRET_LOOKING_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_environment_holds_a_secret_value(cfn: Cfn, function: str) -> None:
    # Environment variables are visible to anyone who may read the function's configuration: a variable that
    # names a secret must hold where it is (a secret ARN), never its value, and no literal may look like a key.
    for name, value in env(cfn, function).items():
        if SECRET_LOOKING_NAME.search(name):
            assert (name.endswith("_ID") and value == {"Ref": "ExtendApiKeySecretArn"}) or (
                name == "TENANT_SECRET_PREFIX" and value == {"Fn::Sub": "${AWS::StackName}/tenants"}
            ), name
        if isinstance(value, str):
            assert not re.search(r"(sk_|whsec_)[A-Za-z0-9]", value), name
    secret_parameters = [name for name in cfn.doc["Parameters"] if name.endswith("SecretArn")]
    for name in secret_parameters:
        assert "secret:" in cfn.doc["Parameters"][name]["AllowedPattern"], f"{name} must take an ARN, not a value"
