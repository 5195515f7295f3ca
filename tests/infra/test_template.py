"""template.yaml's semantics, asserted on the CloudFormation SAM expands it into (plus a few on the source).

The expansion is `.aws-sam/transformed.json`, written by `make infra` with the pinned SAM translator, so these
tests see exactly the roles, permissions, stages and event source mappings that `sam deploy` would create.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.template import Resolver
from parser_run_deleter.logic.callbacks import IN_FLIGHT_ALLOWANCE_S, retry_after_s
from parser_run_deleter.logic.ledger import RunOutcome
from parser_run_deleter.shared.observability import MetricName
from parser_run_deleter.shared.settings import ConfigurationError, load_settings
from tests.support.template import EVENTS, ROOT, Cfn

RUNTIME = "python3.14"
QUEUE_FUNCTION = "QueueFunction"
API_FUNCTION = "ApiFunction"
CALLBACK_FUNCTION = "CallbackFunction"
FUNCTIONS = [QUEUE_FUNCTION, API_FUNCTION, CALLBACK_FUNCTION]
API_GATEWAY_LIMIT_S = 29
# Lambda's version description limit; the template's descriptions are built from bounded parameters.
VERSION_DESCRIPTION_LIMIT = 256
API_GATEWAY_LOGS_POLICY = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}


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


# ---------------------------------------------------------------- functions


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
    assert used >= {"ExtendApiKeySecretArn", "ExtendApiVersion", "LogLevel", "EnableSnapStart"}
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
    for function in FUNCTIONS:
        variables = env(cfn, function)
        assert variables["TENANTS_TABLE_NAME"] == {"Ref": "TenantsTable"}  # all reload tenants
        assert variables["LEDGER_TABLE_NAME"] == {"Ref": "LedgerTable"}
        assert variables["LEDGER_RETENTION_DAYS"] == {"Ref": "LedgerRetentionDays"}
        assert variables["CALLBACK_QUEUE_URL"] == {"Ref": "CallbackQueue"}
        assert variables["EXTEND_API_KEY_SECRET_ID"] == {"Ref": "ExtendApiKeySecretArn"}
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


# ---------------------------------------------------------------- queues


@pytest.mark.parametrize(
    ("queue", "function"), [("DeletionQueue", QUEUE_FUNCTION), ("CallbackQueue", CALLBACK_FUNCTION)]
)
def test_queue_visibility_timeout_is_at_least_six_times_its_functions_timeout(
    cfn: Cfn, queue: str, function: str
) -> None:
    # AWS's advice for SQS event sources: a shorter visibility would redeliver messages still being worked on.
    mapping = event_source_mapping(cfn, queue)
    assert cfn.function_behind(mapping["FunctionName"]) == function
    assert cfn.props(queue)["VisibilityTimeout"] >= 6 * cfn.props(function)["Timeout"]


def test_redrive_policy_sends_to_the_dlq_after_max_receive_count(cfn: Cfn) -> None:
    redrive = cfn.props("DeletionQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    # The function learns the same number, to recognise a message's last receive.
    assert env(cfn, QUEUE_FUNCTION)["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}
    pattern = cfn.doc["Parameters"]["MaxReceiveCount"]["AllowedPattern"]
    assert not re.fullmatch(pattern, "0") and re.fullmatch(pattern, "1") and re.fullmatch(pattern, "100")
    assert re.fullmatch(pattern, cfn.parameter_default("MaxReceiveCount"))


def test_callbacks_are_parked_in_their_own_dlq_after_the_receives_the_function_counts_on(cfn: Cfn) -> None:
    redrive = cfn.props("CallbackQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}
    # The function spaces its retries out by the receive count: it must know the count at which SQS parks one.
    assert str(redrive["maxReceiveCount"]) == env(cfn, CALLBACK_FUNCTION)["MAX_RECEIVE_COUNT"]
    # A moved message keeps its original enqueue time: the DLQ must keep it longer than the queue did.
    assert (
        cfn.props("CallbackDeadLetterQueue")["MessageRetentionPeriod"]
        > cfn.props("CallbackQueue")["MessageRetentionPeriod"]
    )


def test_the_callback_backoff_fits_sqss_twelve_hours_with_the_templates_timeouts(cfn: Cfn) -> None:
    # A record's backoff is set after up to the queue's visibility timeout (a late invoke) and the function's
    # timeout (the attempt): the backoff's allowance for that time must cover both, or SQS refuses the backoff.
    in_flight = cfn.props("CallbackQueue")["VisibilityTimeout"] + cfn.props(CALLBACK_FUNCTION)["Timeout"]
    assert in_flight <= IN_FLIGHT_ALLOWANCE_S
    # and the queue keeps a message past its last attempt, so that SQS's redrive, not expiry, ends it
    attempts = cfn.props("CallbackQueue")["RedrivePolicy"]["maxReceiveCount"]
    span = sum(retry_after_s(n, attempts) for n in range(1, attempts + 1))
    assert span + attempts * in_flight < cfn.props("CallbackQueue")["MessageRetentionPeriod"]


def test_both_queues_keep_messages_14_days_and_a_backlog_alarms_long_before(cfn: Cfn) -> None:
    # 14 days is SQS's maximum. A tenant's backlog must outlive any outage worth waiting out, and a moved message
    # keeps its original enqueue time, so the DLQ cannot outlive the source queue: the age alarm fires long before.
    assert cfn.props("DeadLetterQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert cfn.props("DeletionQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600
    alarm = cfn.props("DeletionQueueBacklogAlarm")
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage" and alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeletionQueue", "QueueName"]}}]
    assert alarm["Threshold"] * alarm.get("EvaluationPeriods", 1) < 24 * 3600


def queue_policy(cfn: Cfn, queue: str) -> list[dict[str, Any]]:
    [policy] = [
        p for p in cfn.of_type("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


ALL_QUEUES = ["DeletionQueue", "DeadLetterQueue", "CallbackQueue", "CallbackDeadLetterQueue"]


def test_the_stack_has_exactly_these_queues(cfn: Cfn) -> None:
    assert set(cfn.of_type("AWS::SQS::Queue")) == set(ALL_QUEUES)


@pytest.mark.parametrize("queue", ALL_QUEUES)
def test_queues_are_encrypted_and_refuse_plain_http(cfn: Cfn, queue: str) -> None:
    props = cfn.props(queue)
    assert props.get("KmsMasterKeyId") or props.get("SqsManagedSseEnabled") is True
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] == "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


OPERATOR = {"Fn::If": ["CreateOperatorRole", {"Fn::GetAtt": ["OperatorRole", "Arn"]}, {"Ref": "OperatorRoleArn"}]}


def statement_named(cfn: Cfn, queue: str, sid: str) -> dict[str, Any]:
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] == sid]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    return statement


def test_only_the_api_function_and_the_operator_role_may_send_to_the_deletion_queue(cfn: Cfn) -> None:
    # The queue function trusts a message's tenant and audit fields: whatever another principal's IAM policy
    # allows, the queue's own policy denies it SendMessage (which SendMessageBatch is authorized as).
    statement = statement_named(cfn, "DeletionQueue", "OnlyTheApiAndOperatorsSend")
    assert statement["Action"] == "sqs:SendMessage"
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [{"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}, OPERATOR]
    # and the queue function's role is not among them: it only dead-letters, to the other queue
    assert "sqs:SendMessage" not in [
        action
        for statement, _ in statements(cfn, "QueueFunctionRole")
        for action in as_list(statement["Action"])
        if statement["Resource"] == {"Fn::GetAtt": ["DeletionQueue", "Arn"]}
    ]


@pytest.mark.parametrize(
    ("queue", "function_role"), [("DeletionQueue", "QueueFunctionRole"), ("CallbackQueue", "CallbackFunctionRole")]
)
def test_only_the_consuming_function_may_receive_so_only_it_holds_receipt_handles(
    cfn: Cfn, queue: str, function_role: str
) -> None:
    # The functions act only on records whose receipt handle SQS confirms as their queue's: nobody else may get one.
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"].endswith("Receives")]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert set(statement["Action"]) == {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"}
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [function_role, "Arn"]}}}


def test_only_the_api_and_queue_function_roles_and_operators_may_send_to_the_callback_queue(cfn: Cfn) -> None:
    # A callback is a signed POST to a tenant's URL: only the functions that complete requests may queue one, and
    # the operator role (a redrive from the callback DLQ sends there). The callback function may not.
    statement = statement_named(cfn, "CallbackQueue", "OnlyTheFunctionsSend")
    assert statement["Action"] == "sqs:SendMessage"
    functions = [{"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}, {"Fn::GetAtt": ["QueueFunctionRole", "Arn"]}]
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [*functions, OPERATOR]}}
    # and the roles' own grants agree: no other role of the stack is allowed to send there
    callbacks = {"Fn::GetAtt": ["CallbackQueue", "Arn"]}
    senders = {
        role
        for role in cfn.of_type("AWS::IAM::Role")
        for statement, _ in statements(cfn, role)
        if "sqs:SendMessage" in as_list(statement["Action"]) and callbacks in as_list(statement["Resource"])
    }
    assert senders == {"ApiFunctionRole", "QueueFunctionRole", "OperatorRole"}


@pytest.mark.parametrize(
    ("queue", "senders"),
    [
        ("DeadLetterQueue", [{"Fn::GetAtt": ["QueueFunctionRole", "Arn"]}, OPERATOR]),
        ("CallbackDeadLetterQueue", OPERATOR),
    ],
)
def test_dead_letter_queues_take_messages_only_from_their_redrive_the_queue_function_and_operators(
    cfn: Cfn, queue: str, senders: Any
) -> None:
    # A redriven message is recorded under the request its attributes name: nobody else may put one there. SQS's
    # own redrive (after maxReceiveCount) needs no grant.
    [statement] = [s for s in queue_policy(cfn, queue) if s["Sid"] != "DenyInsecureTransport"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": senders}}


def test_sqs_event_source_reports_batch_item_failures_and_caps_concurrency(cfn: Cfn) -> None:
    mapping = event_source_mapping(cfn, "DeletionQueue")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "BatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "BatchingWindowSeconds"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}
    pattern = cfn.doc["Parameters"]["MaximumConcurrency"]["AllowedPattern"]
    assert not re.fullmatch(pattern, "1") and re.fullmatch(pattern, "2")  # the service minimum
    # The mapping targets the published alias, so SnapStart (when on) serves the queue path too.
    assert cfn.resources[cfn.ref_target(mapping["FunctionName"]) or ""]["Type"] == "AWS::Lambda::Alias"


def test_callback_event_source_takes_one_delivery_at_a_time_and_caps_concurrency(cfn: Cfn) -> None:
    mapping = event_source_mapping(cfn, "CallbackQueue")
    assert cfn.function_behind(mapping["FunctionName"]) == CALLBACK_FUNCTION
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # One delivery per invocation, at once: a slow tenant delays no other, and each may take the full timeout.
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (1, 0)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert cfn.resources[cfn.ref_target(mapping["FunctionName"]) or ""]["Type"] == "AWS::Lambda::Alias"


# ---------------------------------------------------------------- IAM


FUNCTION_ROLES = {
    QUEUE_FUNCTION: "QueueFunctionRole",
    API_FUNCTION: "ApiFunctionRole",
    CALLBACK_FUNCTION: "CallbackFunctionRole",
}
SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/tenants/"
# Each function reads one kind of tenant secret only: the API function the request-signing ones, the callback
# function the callback-signing ones (so that no callback can pass for a request). Secrets Manager appends six
# characters to a secret's name in its ARN.
TENANT_SIGNING_SECRETS = {"Fn::Sub": SECRETS + "*/signing-??????"}
TENANT_CALLBACK_SECRETS = {"Fn::Sub": SECRETS + "*/callback-signing-??????"}
TENANT_SECRETS = {"Fn::Sub": SECRETS + "*"}


def test_roles_use_no_wildcard_resources_and_no_managed_policies(cfn: Cfn) -> None:
    roles = cfn.of_type("AWS::IAM::Role")
    assert set(roles) == {*FUNCTION_ROLES.values(), "OperatorRole", "ApiGatewayCloudWatchLogsRole"}
    assert roles["OperatorRole"]["Condition"] == "CreateOperatorRole"
    # The stack's one managed policy is the operator's own, attached to the role it creates.
    assert set(cfn.of_type("AWS::IAM::ManagedPolicy")) == {"OperatorPolicy"}
    for name, role in roles.items():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if name == "ApiGatewayCloudWatchLogsRole":
            assert managed == [API_GATEWAY_LOGS_POLICY]
            assert role["Condition"] == "ConfigureApiGatewayAccount"
            continue
        # Not even AWSLambdaBasicExecutionRole: its logs permissions are on every log group.
        assert managed == [], name
        for statement, _ in statements(cfn, name):
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), f"{name}: {action}"
            for resource in as_list(statement["Resource"]):
                assert "*" not in json.dumps(sub_target(resource)) or allowed_wildcard(name, statement, resource), (
                    f"{name}: {resource}"
                )


def allowed_wildcard(role: str, statement: dict[str, Any], resource: Any) -> bool:
    """The few patterns a role may name: one kind of tenant secret, under the stack's own prefix (tenants come and
    go), to read; the operator's API keys and usage plans (made per tenant) and the ledger's index."""
    actions = as_list(statement["Action"])
    if resource == TENANT_SIGNING_SECRETS:
        return role == "ApiFunctionRole" and actions == ["secretsmanager:GetSecretValue"]
    if resource == TENANT_CALLBACK_SECRETS:
        return role == "CallbackFunctionRole" and actions == ["secretsmanager:GetSecretValue"]
    if role != "OperatorRole":
        return False
    operator_patterns = [
        TENANT_SECRETS,
        {"Fn::Sub": "${LedgerTable.Arn}/index/*"},
        *(
            {"Fn::Sub": f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/{path}/*"}
            for path in ("apikeys", "usageplans")
        ),
    ]
    return resource in operator_patterns


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_runs_as_its_own_role_and_writes_only_its_own_log_group(cfn: Cfn, function: str) -> None:
    role = FUNCTION_ROLES[function]
    assert cfn.props(function)["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    log_group = cfn.props(function)["LoggingConfig"]["LogGroup"]
    assert grants(cfn, role)["logs:PutLogEvents"] == [({"Fn::GetAtt": [cfn.ref_target(log_group), "Arn"]}, None)]
    assert grants(cfn, role)["logs:CreateLogStream"] == grants(cfn, role)["logs:PutLogEvents"]
    assert "logs:CreateLogGroup" not in grants(cfn, role)  # the stack creates it, with its retention
    # The function is created only once its permissions are in place.
    depends_on = as_list(cfn.resources[function].get("DependsOn", []))
    assert any(cfn.resources[name]["Type"] == "AWS::IAM::Policy" for name in depends_on)


DATA_KEY = ({"Fn::GetAtt": ["DataKey", "Arn"]}, "UseCmk")
SECRET_KEY = ({"Ref": "ExtendApiKeySecretKmsKeyArn"}, "HasSecretKmsKey")


TENANTS = ({"Fn::GetAtt": ["TenantsTable", "Arn"]}, None)
LEDGER = ({"Fn::GetAtt": ["LedgerTable", "Arn"]}, None)
CALLBACKS = ({"Fn::GetAtt": ["CallbackQueue", "Arn"]}, None)


def test_queue_function_may_read_the_key_poll_its_queue_record_outcomes_and_dead_letter_only(cfn: Cfn) -> None:
    queue, dlq = ({"Fn::GetAtt": ["DeletionQueue", "Arn"]}, None), ({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, None)
    log = ({"Fn::GetAtt": ["QueueFunctionLogGroup", "Arn"]}, None)
    assert grants(cfn, "QueueFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        "secretsmanager:GetSecretValue": [({"Ref": "ExtendApiKeySecretArn"}, None)],
        "kms:Decrypt": [SECRET_KEY, DATA_KEY],
        "kms:GenerateDataKey": [DATA_KEY],
        "dynamodb:GetItem": [TENANTS, LEDGER],  # reloads each message's tenant; reads the run's ledger entry
        # Each outcome, in one transaction: the run, its request's counters, the tenant's outstanding count.
        # No PutItem, DeleteItem or Query: the API records requests, and only TTL removes them.
        "dynamodb:UpdateItem": [LEDGER],
        # What the event source mapping needs; the queues' URLs come from the environment, never GetQueueUrl.
        "sqs:ChangeMessageVisibility": [queue],
        "sqs:DeleteMessage": [queue],
        "sqs:GetQueueAttributes": [queue],
        "sqs:ReceiveMessage": [queue],
        # Dead-letters with a reason, and queues the callback of the request its outcome completes.
        "sqs:SendMessage": [dlq, CALLBACKS],
    }


def test_api_function_may_read_its_secrets_and_tenants_record_requests_and_enqueue_only(cfn: Cfn) -> None:
    queue = ({"Fn::GetAtt": ["DeletionQueue", "Arn"]}, None)
    log = ({"Fn::GetAtt": ["ApiFunctionLogGroup", "Arn"]}, None)
    replays = ({"Fn::GetAtt": ["IdempotencyTable", "Arn"]}, None)
    assert grants(cfn, "ApiFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        # The Extend key, and the tenants' request-signing secrets under the stack's own prefix: no other secret.
        "secretsmanager:GetSecretValue": [({"Ref": "ExtendApiKeySecretArn"}, None), (TENANT_SIGNING_SECRETS, None)],
        "kms:Decrypt": [SECRET_KEY, DATA_KEY],
        "kms:GenerateDataKey": [DATA_KEY],
        # The registry is read-only to the function: only operators change tenants.
        "dynamodb:GetItem": [TENANTS, LEDGER, replays],
        # Requests and their runs into the ledger, their status and pages of runs out: no Scan, and no
        # DeleteItem there (the ledger is audit evidence; only its TTL removes items).
        "dynamodb:PutItem": [LEDGER, replays],
        "dynamodb:UpdateItem": [LEDGER, replays],
        "dynamodb:BatchWriteItem": [LEDGER],
        "dynamodb:Query": [LEDGER],
        "dynamodb:DeleteItem": [replays],
        # A request completed at once queues its callback; what it cannot finish goes to the deletion queue.
        "sqs:SendMessage": [CALLBACKS, queue],
    }


def test_callback_function_may_poll_its_queue_read_tenants_and_their_secrets_and_record_deliveries_only(
    cfn: Cfn,
) -> None:
    log = ({"Fn::GetAtt": ["CallbackFunctionLogGroup", "Arn"]}, None)
    assert grants(cfn, "CallbackFunctionRole") == {
        "logs:CreateLogStream": [log],
        "logs:PutLogEvents": [log],
        # What the event source mapping needs, and ChangeMessageVisibility for the function's own backoff.
        "sqs:ReceiveMessage": [CALLBACKS],
        "sqs:DeleteMessage": [CALLBACKS],
        "sqs:ChangeMessageVisibility": [CALLBACKS],
        "sqs:GetQueueAttributes": [CALLBACKS],
        # Signs with the tenant's callback-signing secret; never reads the Extend key (it calls tenants, not Extend)
        # nor the secrets tenants sign their requests with.
        "secretsmanager:GetSecretValue": [(TENANT_CALLBACK_SECRETS, None)],
        # The tenant's callback URL from the registry; the request it reports on, and the delivery's state on it.
        "dynamodb:GetItem": [TENANTS, LEDGER],
        "dynamodb:UpdateItem": [LEDGER],
        # Receives from its encrypted queue; sends nothing, so it never encrypts.
        "kms:Decrypt": [DATA_KEY],
    }


@pytest.mark.parametrize("role", ["QueueFunctionRole", "ApiFunctionRole"])
def test_the_secrets_kms_key_is_usable_only_through_secrets_manager(cfn: Cfn, role: str) -> None:
    [statement] = [s for s, condition in statements(cfn, role) if condition == "HasSecretKmsKey"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
    }


@pytest.mark.parametrize("queue", ALL_QUEUES)
def test_queues_use_the_stacks_own_key_by_default(cfn: Cfn, queue: str) -> None:
    assert cfn.props(queue)["KmsMasterKeyId"] == {"Fn::If": ["UseCmk", {"Ref": "DataKey"}, "alias/aws/sqs"]}
    assert cfn.parameter_default("UseCustomerManagedKey") == "true"


def test_only_the_function_roles_and_the_operator_role_may_use_the_data_key(cfn: Cfn) -> None:
    key = cfn.resources["DataKey"]
    assert key["Condition"] == "UseCmk"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements_ = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    crypto = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:*"}
    users = [s for s in statements_.values() if crypto & set(as_list(s["Action"]))]
    [use] = users
    assert use["Principal"]["AWS"] == [
        {"Fn::GetAtt": ["QueueFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["CallbackFunctionRole", "Arn"]},
        OPERATOR,
    ]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    # The account's administrators manage the key (so it can never become unmanageable) but cannot use it, nor
    # give themselves its use: no grant, no policy change, in their statement.
    admin = statements_["AccountAdministratorsManageTheKey"]
    assert admin["Principal"] == root
    for action in as_list(admin["Action"]):
        assert not action.startswith(("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt"))
        assert action not in {"kms:Create*", "kms:CreateGrant", "kms:Put*", "kms:PutKeyPolicy", "kms:*"}, action
    # A grant only for an AWS service acting for its caller (DynamoDB makes them for the tables)
    grant = statements_["GrantsOnlyForAwsServices"]
    assert grant["Principal"] == root and "kms:CreateGrant" in grant["Action"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # and the policy changed only by the principal named as the deployer, when one is named
    put = statements_["OnlyTheDeployerChangesThePolicy"]
    assert put["Principal"] == root and put["Action"] == "kms:PutKeyPolicy"
    assert put["Condition"] == {
        "Fn::If": [
            "HasKeyPolicyAdministrator",
            {"ArnEquals": {"aws:PrincipalArn": {"Ref": "KeyPolicyAdministratorArn"}}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    granting = [s for s in statements_.values() if {"kms:CreateGrant", "kms:PutKeyPolicy"} & set(as_list(s["Action"]))]
    assert granting == [grant, put]


def test_the_operator_role_exists_by_default_and_names_who_may_assume_it(cfn: Cfn) -> None:
    assert cfn.parameter_default("OperatorRoleArn") == ""
    role = cfn.resources["OperatorRole"]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {
        "AWS": {
            "Fn::If": [
                "HasOperatorTrustedPrincipal",
                {"Ref": "OperatorTrustedPrincipalArn"},
                {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
            ]
        }
    }
    outputs = cfn.doc["Outputs"]
    assert outputs["OperatorRoleArn"]["Value"] == OPERATOR
    assert outputs["ApiFunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}
    assert outputs["CallbackFunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["CallbackFunctionRole", "Arn"]}


def test_every_role_takes_the_permissions_boundary_when_one_is_given(cfn: Cfn) -> None:
    for name, role in cfn.of_type("AWS::IAM::Role").items():
        assert role["Properties"]["PermissionsBoundary"] == {
            "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
        }, name


@pytest.mark.parametrize(
    ("function", "reserved"),
    [(QUEUE_FUNCTION, "MaximumConcurrency"), (API_FUNCTION, "ApiFunctionReservedConcurrency")],
)
def test_each_function_has_a_concurrency_ceiling_by_default(cfn: Cfn, function: str, reserved: str) -> None:
    assert cfn.props(function)["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", {"Ref": reserved}, {"Ref": "AWS::NoValue"}]
    }
    assert cfn.parameter_default("EnableReservedConcurrency") == "true"


def test_the_callback_function_reserves_what_its_event_source_may_run(cfn: Cfn) -> None:
    # Equal to the mapping's MaximumConcurrency, like the queue function's: a throttled delivery would use up
    # one of the receives that space out its retries.
    reserved = event_source_mapping(cfn, "CallbackQueue")["ScalingConfig"]["MaximumConcurrency"]
    assert cfn.props(CALLBACK_FUNCTION)["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", reserved, {"Ref": "AWS::NoValue"}]
    }


# ---------------------------------------------------------------- API


def api_operations(cfn: Cfn) -> dict[tuple[str, str], dict[str, Any]]:
    body = cfn.props("DeletionApi")["Body"]
    return {
        (path, method): operation for path, methods in body["paths"].items() for method, operation in methods.items()
    }


def test_api_serves_exactly_the_three_routes(cfn: Cfn) -> None:
    assert set(api_operations(cfn)) == {
        ("/parser_runs/{id}", "delete"),
        ("/deletions", "post"),
        ("/deletions/{id}", "get"),  # a deletion request's status, from the ledger
    }


def test_every_api_method_requires_an_api_key(cfn: Cfn) -> None:
    body = cfn.props("DeletionApi")["Body"]
    assert body["components"]["securitySchemes"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    for route, operation in api_operations(cfn).items():
        assert {"api_key": []} in operation.get("security", []), route
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", route


def test_gateway_rejections_answer_in_json(cfn: Cfn) -> None:
    responses = cfn.props("DeletionApi")["Body"]["x-amazon-apigateway-gateway-responses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"  # unknown route or method
    assert responses["INVALID_API_KEY"]["statusCode"] == "403"
    for name in ("MISSING_AUTHENTICATION_TOKEN", "INVALID_API_KEY"):
        assert json.loads(responses[name]["responseTemplates"]["application/json"])["message"]
    for name in ("DEFAULT_4XX", "DEFAULT_5XX"):
        assert responses[name]["responseTemplates"]["application/json"] == '{"message": $context.error.messageString}'


def test_nothing_invokes_a_function_except_this_api_and_the_queue(cfn: Cfn) -> None:
    assert not cfn.of_type("AWS::Lambda::Url")
    permissions = cfn.of_type("AWS::Lambda::Permission")
    assert permissions
    for name, permission in permissions.items():
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com", name
        source = json.dumps(props["SourceArn"])
        assert '"DeletionApi"' in source and "execute-api" in source, name
        assert cfn.function_behind(props["FunctionName"]) == API_FUNCTION


def test_the_stack_ships_no_shared_key_or_plan_each_tenant_gets_its_own(cfn: Cfn) -> None:
    # A key and usage plan shared by every caller would let one tenant take everyone's share: each tenant's are
    # made by `extend-deleter tenants add --create-api-key`, below the stage's limits, which the outputs publish for it.
    for kind in ("AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"):
        assert cfn.of_type(kind) == {}, kind
    outputs = cfn.doc["Outputs"]
    assert outputs["RestApiId"]["Value"] == {"Ref": "DeletionApi"}
    assert outputs["StageThrottle"]["Value"] == {"Fn::Sub": "${ApiThrottleRateLimit}/${ApiThrottleBurstLimit}"}
    assert outputs["TenantsTableName"]["Value"] == {"Ref": "TenantsTable"}
    assert outputs["TenantSecretPrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}/tenants"}


@pytest.mark.parametrize("table", ["TenantsTable", "IdempotencyTable", "LedgerTable"])
def test_tables_are_encrypted_with_the_stacks_key_and_billed_on_demand(cfn: Cfn, table: str) -> None:
    props = cfn.props(table)
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {
        "Fn::If": [
            "UseCmk",
            {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "DataKey"}},
            {"SSEEnabled": True},  # DynamoDB's own key, when the stack's is turned off
        ]
    }


def test_the_registry_survives_mistakes_and_replay_records_expire(cfn: Cfn) -> None:
    registry = cfn.resources["TenantsTable"]
    # Kept when the stack is deleted or the table replaced, but not left behind by a failed first deploy: without
    # deletion protection, which would stop CloudFormation removing it on that rollback.
    assert registry["DeletionPolicy"] == "RetainExceptOnCreate" and registry["UpdateReplacePolicy"] == "Retain"
    assert registry["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "DeletionProtectionEnabled" not in registry["Properties"]
    replays = cfn.props("IdempotencyTable")
    # Powertools' idempotency layer: partition key "id", expiry in "expiration"
    assert replays["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert replays["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_the_ledger_is_kept_as_audit_evidence_and_expires_by_its_retention(cfn: Cfn) -> None:
    ledger = cfn.resources["LedgerTable"]
    # The evidence that a customer's deletion happened: survives a stack deletion, a replacement, and a table
    # deleted by mistake (point-in-time recovery keeps a system backup of it); a failed first deploy removes it.
    assert ledger["DeletionPolicy"] == "RetainExceptOnCreate" and ledger["UpdateReplacePolicy"] == "Retain"
    props = ledger["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "DeletionProtectionEnabled" not in props
    # Single table (pk, sk); the byTenant index (gsi1pk, gsi1sk) serves a tenant's receipts, whole items.
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "byTenant",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            # the request's own fields, which receipts and usage read, and not its set of counted runs
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": [
                    "requestId",
                    "tenantId",
                    "trigger",
                    "createdAt",
                    "updatedAt",
                    "completedAt",
                    "audit",
                    "transitions",
                    *(f"n_{outcome.value}" for outcome in RunOutcome),
                ],
            },
        }
    ]
    # Items expire by expiresAt, which the functions set LedgerRetentionDays ahead.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    # The names the code writes and queries are the table's.
    adapter = (ROOT / "handler" / "parser_run_deleter" / "adapters" / "ledger_table.py").read_text(encoding="utf-8")
    for name in ("pk", "sk", "gsi1pk", "gsi1sk", "expiresAt", "byTenant"):
        assert f'"{name}"' in adapter, name


def test_a_failed_first_deploy_leaves_nothing_behind_and_a_deleted_stack_keeps_its_data(cfn: Cfn) -> None:
    # Retain is meant for a stack that existed: on the rollback of a failed first deploy, nothing was stored yet.
    retained = {
        name: resource["DeletionPolicy"]
        for name, resource in cfn.resources.items()
        if resource.get("DeletionPolicy", "Delete") != "Delete" and resource["Type"] != "AWS::Lambda::Version"
    }
    assert retained == {
        "DataKey": "RetainExceptOnCreate",
        "TenantsTable": "RetainExceptOnCreate",
        "LedgerTable": "RetainExceptOnCreate",
        # the account-wide setting made during that deploy would point at a deleted role: kept even then
        "ApiGatewayCloudWatchLogsRole": "Retain",
    }
    # UpdateReplacePolicy has no RetainExceptOnCreate, and needs none: only an existing resource is replaced.
    for name in retained:
        assert cfn.resources[name]["UpdateReplacePolicy"] == "Retain", name
    # and nothing could stop that rollback from deleting them
    for table in cfn.of_type("AWS::DynamoDB::Table").values():
        assert not table["Properties"].get("DeletionProtectionEnabled")


def test_ledger_retention_takes_the_whole_days_the_functions_accept(cfn: Cfn) -> None:
    # The functions refuse to start on anything but a whole number of days from 1 to 3650 (settings.py): the
    # stack refuses it at deploy, rather than deploying functions that fail every invocation.
    parameter = cfn.doc["Parameters"]["LedgerRetentionDays"]
    assert parameter["Type"] == "String"
    accepted = [days for days in range(0, 4000) if re.fullmatch(parameter["AllowedPattern"], str(days))]
    assert accepted == list(range(1, 3651))
    for malformed in ("2.5", "01", "-1", "", "1e3", " 400"):
        assert not re.fullmatch(parameter["AllowedPattern"], malformed), malformed
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    # and the functions' bounds are the same
    for days in ("1", "3650", parameter["Default"]):
        settings = load_settings({"EXTEND_API_KEY_SECRET_ID": "arn", "LEDGER_RETENTION_DAYS": days})
        assert settings.ledger_retention_days == int(days)
    for days in ("0", "3651"):
        with pytest.raises(ConfigurationError, match="LEDGER_RETENTION_DAYS"):
            load_settings({"EXTEND_API_KEY_SECRET_ID": "arn", "LEDGER_RETENTION_DAYS": days})


def test_stage_writes_access_logs_and_throttles(cfn: Cfn) -> None:
    stage = cfn.props("DeletionApiv1Stage")
    log_group = cfn.ref_target(stage["AccessLogSetting"]["DestinationArn"])
    assert log_group == "ApiAccessLogGroup"
    access_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert access_format["apiKeyId"] == "$context.identity.apiKeyId"
    assert "$context.identity.apiKey" not in access_format.values()  # the key itself is never logged
    [settings] = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["DataTraceEnabled"] is False  # would log request bodies


# ---------------------------------------------------------------- alarms and dashboard


def alarms_on(cfn: Cfn, metric_name: str) -> list[dict[str, Any]]:
    found = []
    for alarm in cfn.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        names = [props.get("MetricName")] + [
            m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        if metric_name in names:
            found.append(props)
    return found


def emf_metrics(props: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in props:
        return [props]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def test_dlq_depth_alarms_fire_on_the_first_message(cfn: Cfn) -> None:
    watched = {}
    for alarm in alarms_on(cfn, "ApproximateNumberOfMessagesVisible"):
        [dimension] = alarm["Dimensions"]
        assert dimension["Name"] == "QueueName"
        watched[cfn.ref_target(dimension["Value"])] = alarm
    # Each dead-letter queue, and only those: a message there is a deletion or a callback that gave up.
    assert set(watched) == {"DeadLetterQueue", "CallbackDeadLetterQueue"}
    for queue, alarm in watched.items():
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum"), queue
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), queue
        assert alarm["EvaluationPeriods"] == 1, queue
        # SQS stops publishing a queue's metrics after six hours without activity, messages or not: silence keeps
        # the last state (ALARM while messages wait), where notBreaching would read it as an empty queue.
        assert alarm["TreatMissingData"] == "ignore", queue


@pytest.mark.parametrize(
    ("queue", "function"), [("DeletionQueue", QUEUE_FUNCTION), ("CallbackQueue", CALLBACK_FUNCTION)]
)
def test_each_source_queue_alarms_when_its_oldest_message_waits_an_hour(cfn: Cfn, queue: str, function: str) -> None:
    [alarm] = [
        alarm
        for alarm in alarms_on(cfn, "ApproximateAgeOfOldestMessage")
        if alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert (alarm["Namespace"], alarm["Statistic"]) == ("AWS/SQS", "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (3600, "GreaterThanThreshold")
    # Polled all the time by its event source mapping, the queue stays active: no data means no message.
    assert cfn.function_behind(event_source_mapping(cfn, queue)["FunctionName"]) == function
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_callback_age_alarm_is_not_set_off_by_retries_in_backoff(cfn: Cfn) -> None:
    # SQS leaves a message received more than three times out of ApproximateAgeOfOldestMessage: by the 4th
    # attempt a callback must be younger than the alarm's threshold, or a tenant's failing endpoint would page.
    attempts = int(env(cfn, CALLBACK_FUNCTION)["MAX_RECEIVE_COUNT"])
    before_fourth_attempt = sum(retry_after_s(n, attempts) for n in range(1, 4))
    [alarm] = [a for a in alarms_on(cfn, "ApproximateAgeOfOldestMessage") if "CallbackQueue" in json.dumps(a)]
    assert before_fourth_attempt + 3 * cfn.props(CALLBACK_FUNCTION)["Timeout"] < alarm["Threshold"]


@pytest.mark.parametrize(
    ("metric", "threshold", "triggers"),
    [
        ("ParserRunDeletionFailed", {"Ref": "DeletionFailureAlarmThreshold"}, {"sqs", "api"}),
        ("WebhookSignatureRejected", {"Ref": "WebhookRejectionAlarmThreshold"}, {"api"}),
        # only the queue function counts it (the API answers 503 instead): the first one alarms
        ("LedgerWriteFailed", 0, {"sqs"}),
    ],
)
def test_outcome_metric_alarms_read_what_the_functions_emit(
    cfn: Cfn, metric: str, threshold: Any, triggers: set[str]
) -> None:
    [alarm] = alarms_on(cfn, metric)
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    namespace = cfn.find_in_map(env(cfn, QUEUE_FUNCTION)["POWERTOOLS_METRICS_NAMESPACE"])
    service = cfn.find_in_map(env(cfn, QUEUE_FUNCTION)["POWERTOOLS_SERVICE_NAME"])
    seen_triggers = set()
    for watched in emf_metrics(alarm):
        assert cfn.find_in_map(watched["Namespace"]) == namespace
        dimensions = {d["Name"]: cfn.find_in_map(d["Value"]) for d in watched["Dimensions"]}
        # EMF metrics carry exactly these dimensions; an alarm naming a different set would never see data.
        assert set(dimensions) == {"service", "trigger"}
        assert dimensions["service"] == service
        seen_triggers.add(dimensions["trigger"])
    assert seen_triggers == triggers


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_one_alarm_per_lambda_metric_watches_all_three_functions(cfn: Cfn, metric: str) -> None:
    # Written once per metric (metric math over the functions), not once per function.
    [alarm] = alarms_on(cfn, metric)
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    watched = [
        query["MetricStat"]["Metric"]["Dimensions"]
        for query in queries.values()
        if "MetricStat" in query and query["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
    ]
    assert sorted(json.dumps(dimensions) for dimensions in watched) == sorted(
        json.dumps([{"Name": "FunctionName", "Value": {"Ref": function}}]) for function in FUNCTIONS
    )
    for query in queries.values():
        if "MetricStat" in query:
            assert query["MetricStat"]["Metric"]["MetricName"] == metric
            assert (query["MetricStat"]["Stat"], query["ReturnData"]) == ("Sum", False)
    # the one series returned adds all three, each read as 0 when a function had no invocations
    [returned] = [query for query in queries.values() if query.get("ReturnData")]
    expression = returned["Expression"]
    for query_id in queries.keys() - {returned["Id"]}:
        assert f"FILL({query_id}, 0)" in expression
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_api_5xx_alarm_watches_this_apis_stage(cfn: Cfn) -> None:
    [alarm] = alarms_on(cfn, "5XXError")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"ApiName": cfn.props("DeletionApi")["Name"], "Stage": "v1"}


def test_every_alarm_notifies_the_topic_when_an_email_is_given(cfn: Cfn) -> None:
    alarms = cfn.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }, name
        assert alarm["Properties"]["OKActions"] == alarm["Properties"]["AlarmActions"], name
        # no data is OK, but for the DLQs, whose silence says nothing (test_dlq_depth_alarms_fire_on_the_first_message)
        expected = "ignore" if name.endswith("DeadLetterQueueNotEmptyAlarm") else "notBreaching"
        assert alarm["Properties"]["TreatMissingData"] == expected, name
    _, subscription = cfn.one_of_type("AWS::SNS::Subscription")
    assert subscription == {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}, "TopicArn": {"Ref": "AlarmTopic"}}
    assert cfn.resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def dashboard_widgets(cfn: Cfn) -> list[dict[str, Any]]:
    """The dashboard's widgets, its ${...} placeholders kept as text (valid JSON once they are filled in)."""
    template, _ = cfn.props("Dashboard")["DashboardBody"]["Fn::Sub"]
    widgets: list[dict[str, Any]] = json.loads(template)["widgets"]
    return widgets


def test_dashboard_shows_every_metric_the_functions_emit_callbacks_ledger_and_tenancy_among_them(cfn: Cfn) -> None:
    emitted = {value for name, value in vars(MetricName).items() if name.isupper()}
    shown: dict[str, set[str]] = {}
    for widget in dashboard_widgets(cfn):
        for line in widget["properties"]["metrics"]:
            if line[0] == "${Namespace}":
                dimensions = dict(zip(line[2::2], line[3::2], strict=False))
                # the dimensions EMF gives every metric: another set would draw nothing
                assert set(dimensions) == {"service", "trigger"} and dimensions["service"] == "${Service}", line
                assert dimensions["trigger"] in {"sqs", "api", "callback"}, line
                shown.setdefault(line[1], set()).add(dimensions["trigger"])
    assert set(shown) == emitted
    assert shown["CompletionCallbackDelivered"] == shown["CompletionCallbackFailed"] == {"callback"}
    assert shown["LedgerWriteFailed"] == {"sqs"}


def test_dashboard_shows_every_queue_and_the_per_tenant_outcomes(cfn: Cfn) -> None:
    body = json.dumps(dashboard_widgets(cfn))
    for queue in ALL_QUEUES:
        assert f"${{{queue}.QueueName}}" in body, queue
    assert '"ApproximateAgeOfOldestMessage", "QueueName", "${CallbackQueue.QueueName}"' in body
    # EnablePerTenantMetrics' metric, by its filters' namespace and dimensions
    [search] = [
        line[0]["expression"]
        for widget in dashboard_widgets(cfn)
        for line in widget["properties"]["metrics"]
        if isinstance(line[0], dict)
    ]
    [metric_filter] = cfn.props("QueueOutcomesByTenant")["MetricTransformations"]
    dimensions = sorted(dimension["Key"] for dimension in metric_filter["Dimensions"])
    assert f"{{${{Namespace}},{','.join(dimensions)}}}" in search
    assert f'MetricName="{metric_filter["MetricName"]}"' in search


# ---------------------------------------------------------------- parameters and outputs


def test_every_parameter_is_described_and_constrained(cfn: Cfn) -> None:
    for name, parameter in cfn.doc["Parameters"].items():
        assert parameter.get("Description"), name
        constraints = {"AllowedValues", "AllowedPattern", "MinValue", "MaxValue"} & set(parameter)
        assert constraints, f"{name} has no constraint"
        default = parameter.get("Default")
        if default is not None and "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], str(default)), name


def test_only_the_extend_secret_arn_must_be_supplied(cfn: Cfn) -> None:
    required = [name for name, parameter in cfn.doc["Parameters"].items() if "Default" not in parameter]
    assert required == ["ExtendApiKeySecretArn"]
    pattern = cfn.doc["Parameters"]["ExtendApiKeySecretArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:extend/api-key-AbCdEf")
    assert not re.fullmatch(pattern, "extend/api-key")


@pytest.mark.parametrize("name", ["ExtendApiKeySecretArn"])
def test_secret_arns_must_be_full_arns_with_secrets_managers_suffix(cfn: Cfn, name: str) -> None:
    # IAM matches the policy's ARN exactly: a partial ARN (no -xxxxxx) would deploy, then be denied every read.
    pattern = cfn.doc["Parameters"][name]["AllowedPattern"]
    assert not re.fullmatch(pattern, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:extend/api-key")
    assert re.fullmatch(pattern, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:extend/api-key-AbCdEf")


INTEGER_PROPERTIES = {
    "MaximumConcurrency": ("QueueFunctionEventSource", "ScalingConfig"),
    "BatchSize": ("QueueFunctionEventSource", "BatchSize"),
    "BatchingWindowSeconds": ("QueueFunctionEventSource", "MaximumBatchingWindowInSeconds"),
    "MaxReceiveCount": ("DeletionQueue", "RedrivePolicy"),
    "ExtendMaxConcurrencyPerInstance": (QUEUE_FUNCTION, "Environment"),
    "ApiThrottleBurstLimit": ("DeletionApi", "MethodSettings"),
    "ApiFunctionReservedConcurrency": (API_FUNCTION, "ReservedConcurrentExecutions"),
    "WafRateLimitPerFiveMinutes": ("WebAcl", "Rules"),
}


@pytest.mark.parametrize("name", sorted(INTEGER_PROPERTIES))
def test_parameters_feeding_integer_properties_take_whole_numbers_only(raw_template: dict[str, Any], name: str) -> None:
    parameter = raw_template["Parameters"][name]
    resource, prop = INTEGER_PROPERTIES[name]
    assert f'"Ref": "{name}"' in json.dumps(raw_template["Resources"][resource]["Properties"][prop])
    # CloudFormation's Number type accepts 2.5, which would then fail the deploy: a pattern refuses it up front.
    assert parameter["Type"] == "String"
    for fraction in ("2.5", "1.0", "-1", "", "1e3", " 2"):
        assert not re.fullmatch(parameter["AllowedPattern"], fraction), (name, fraction)
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])


def test_the_logs_are_not_called_the_audit_trail_the_ledger_is_the_audit_record(cfn: Cfn, template_text: str) -> None:
    # The log groups go with the stack (named after it, so a retained one would block the next stack of that
    # name): they are operational records. The deletions' audit record is the ledger, which is retained.
    assert "audit trail" not in template_text.lower()
    assert "ledger" in cfn.doc["Parameters"]["LogRetentionDays"]["Description"].lower()
    assert "audit" in cfn.doc["Parameters"]["LedgerRetentionDays"]["Description"].lower()
    for name, log_group in cfn.of_type("AWS::Logs::LogGroup").items():
        assert log_group.get("DeletionPolicy", "Delete") == "Delete", name


def test_no_comment_counts_two_functions(template_text: str) -> None:
    # There are three (API, queue, callback): "both functions" is left over from when there were two.
    assert len(FUNCTIONS) == 3
    assert not re.search(r"\bboth (functions|of the functions)\b", template_text, re.IGNORECASE)
    assert not re.search(r"\btwo functions\b", template_text, re.IGNORECASE)


def test_api_gateway_account_logging_is_off_unless_asked_for(cfn: Cfn) -> None:
    # The CloudWatch role of API Gateway is one setting for the whole account and region.
    assert cfn.parameter_default("ConfigureApiGatewayAccountLogging") == "false"
    assert "get-account" in cfn.doc["Parameters"]["ConfigureApiGatewayAccountLogging"]["Description"]


def test_outputs_say_what_the_stack_exposes(cfn: Cfn) -> None:
    outputs = cfn.doc["Outputs"]
    assert {
        "ApiUrl",
        "RestApiId",
        "TenantsTableName",
        "TenantSecretPrefix",
        "DeletionQueueUrl",
        "DeadLetterQueueUrl",
        "ApiFunctionName",
        "QueueFunctionName",
        "LedgerTableName",
        "CallbackQueueUrl",
        "CallbackDeadLetterQueueUrl",
    } <= set(outputs)
    assert all(output.get("Description") for output in outputs.values())
    assert outputs["DeletionQueueUrl"]["Value"] == {"Ref": "DeletionQueue"}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": "DeadLetterQueue"}
    assert outputs["LedgerTableName"]["Value"] == {"Ref": "LedgerTable"}  # extend-deleter receipts reads it
    assert outputs["CallbackDeadLetterQueueUrl"]["Value"] == {"Ref": "CallbackDeadLetterQueue"}
    # extend-deleter redrive --callbacks moves parked callbacks from that DLQ back to this queue
    assert outputs["CallbackQueueUrl"]["Value"] == {"Ref": "CallbackQueue"}


def test_every_parameter_is_in_exactly_one_parameter_group(raw_template: dict[str, Any]) -> None:
    groups = raw_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(raw_template["Parameters"])
    assert all(group["Label"]["default"] for group in groups)


def test_the_waf_rate_parameter_takes_exactly_what_a_rate_based_rule_accepts(cfn: Cfn) -> None:
    # WAF's Limit: a whole number from 10 to 2,000,000,000 requests per evaluation window.
    pattern = cfn.doc["Parameters"]["WafRateLimitPerFiveMinutes"]["AllowedPattern"]
    for accepted in ("10", "99", "100", "1000", "999999999", "1000000000", "1999999999", "2000000000"):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("9", "0", "010", "2000000001", "2999999999", "10000000000", "1e9", "1000.5"):
        assert not re.fullmatch(pattern, refused), refused
    assert re.fullmatch(pattern, cfn.parameter_default("WafRateLimitPerFiveMinutes"))


def custom_domain_rule_holds(raw_template: dict[str, Any], domain: str, certificate: str) -> bool:
    """Every assertion of every rule, evaluated for these two parameter values."""
    values = {"CustomDomainName": domain, "CustomDomainCertificateArn": certificate}
    resolver = Resolver(raw_template, {**values, "ExtendApiKeySecretArn": "x"})
    return all(
        resolver.resolve(assertion["Assert"])
        for rule in raw_template["Rules"].values()
        if "RuleCondition" not in rule or resolver.resolve(rule["RuleCondition"])
        for assertion in rule["Assertions"]
    )


CERTIFICATE = "arn:aws:acm:eu-west-1:000000000000:certificate/abc"


def test_a_custom_domain_and_its_certificate_are_given_together_or_not_at_all(raw_template: dict[str, Any]) -> None:
    assert custom_domain_rule_holds(raw_template, "", "")
    assert custom_domain_rule_holds(raw_template, "deletions.example.com", CERTIFICATE)
    # a domain without its certificate would fail half-way through the deploy; a certificate alone does nothing
    assert not custom_domain_rule_holds(raw_template, "deletions.example.com", "")
    assert not custom_domain_rule_holds(raw_template, "", CERTIFICATE)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("deletions.example.com", "https://deletions.example.com"), ("", "https://local-api.execute-api.")],
)
def test_with_a_custom_domain_the_api_url_and_the_status_links_name_it(
    raw_template: dict[str, Any], cfn: Cfn, domain: str, expected: str
) -> None:
    # DisableExecuteApiEndpoint turns the execute-api URL off once there is a domain: nothing may still name it.
    resolver = Resolver(
        raw_template, {"CustomDomainName": domain, "ExtendApiKeySecretArn": "x"}, refs={"DeletionApi": "local-api"}
    )
    api_url = resolver.resolve(raw_template["Outputs"]["ApiUrl"]["Value"])
    status_link_base = resolver.resolve(raw_template["Resources"][CALLBACK_FUNCTION]["Properties"]["Environment"])
    assert api_url.startswith(expected)
    assert status_link_base["Variables"]["API_BASE_URL"] == api_url
    custom_domain_url = cfn.doc["Outputs"]["CustomDomainUrl"]
    assert custom_domain_url["Condition"] == "HasCustomDomain"
    assert resolver.resolve(custom_domain_url["Value"]) == f"https://{domain}"
    # mapped at the domain's root: its URL has no stage path
    assert "BasePath" not in cfn.props("CustomDomainMapping")


# ---------------------------------------------------------------- the source template, samconfig, events


def test_resources_are_ordered_queue_dlq_functions_api_alarms_dashboard(raw_template: dict[str, Any]) -> None:
    order = list(raw_template["Resources"])
    milestones = [
        "DeletionQueue",
        "DeadLetterQueue",
        "QueueFunction",
        "ApiFunction",
        "DeletionApi",
        "DeadLetterQueueNotEmptyAlarm",
        "Dashboard",
    ]
    assert [order.index(name) for name in milestones] == sorted(order.index(name) for name in milestones)
    assert list(raw_template).index("Resources") < list(raw_template).index("Outputs")


def test_checkov_skips_carry_a_justification(raw_template: dict[str, Any]) -> None:
    for name, resource in raw_template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 20, f"{name}: {skip['id']} needs a reason"


def test_samconfig_builds_without_containers_and_holds_no_account(template_text: str) -> None:
    text = (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["default"]["build"]["parameters"]["use_container"] is False
    assert config["default"]["build"]["parameters"]["cached"] is False
    assert "CAPABILITY_IAM" in config["default"]["deploy"]["parameters"]["capabilities"]
    for text_ in (text, template_text):
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", text_.replace("[0-9]{12}", "")), "an account id?"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


SAMPLE_EVENTS = sorted(path.name for path in EVENTS.glob("*.json"))
SQS_EVENTS = [name for name in SAMPLE_EVENTS if "Records" in load_event(name)]
API_EVENTS = [name for name in SAMPLE_EVENTS if name not in SQS_EVENTS]


def test_each_path_has_a_sample_event() -> None:
    assert {"sqs_receive_message.json", "sqs_malformed.json"} <= set(SQS_EVENTS)
    assert {
        "apigw_rest_delete.json",
        "apigw_rest_bulk.json",
        "apigw_http_delete.json",
        "apigw_rest_status.json",
    } <= set(API_EVENTS)
    assert any("webhook-signature" in load_event(name).get("headers", {}) for name in API_EVENTS)


@pytest.mark.parametrize("name", SQS_EVENTS)
def test_sample_sqs_events_have_lambdas_shape(name: str) -> None:
    records = load_event(name)["Records"]
    assert records
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "eventSourceARN"}
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1


@pytest.mark.parametrize("name", API_EVENTS)
def test_sample_api_events_use_the_templates_routes(cfn: Cfn, name: str) -> None:
    event = load_event(name)
    routes = set(api_operations(cfn))
    if event.get("version") == "2.0":
        method, path = event["routeKey"].split(" ", 1)
        assert event["requestContext"]["http"]["method"] == method
    else:
        method, path = event["httpMethod"], event["resource"]
        assert event["requestContext"]["identity"]["apiKeyId"], "REST events carry the caller's API key id"
        assert event["requestContext"]["resourcePath"] == path
    assert (path, method.lower()) in routes


# ---------------------------------------------------------------- the API's edge


def body_model(cfn: Cfn) -> dict[str, Any]:
    body = cfn.props("DeletionApi")["Body"]
    operation = body["paths"]["/deletions"]["post"]
    assert operation["requestBody"]["required"] is True
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    validator = body["x-amazon-apigateway-request-validators"][operation["x-amazon-apigateway-request-validator"]]
    assert validator["validateRequestBody"] is True
    schema: dict[str, Any] = body["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    return schema


def test_bulk_bodies_are_validated_at_the_edge_and_bounded_well_below_lambdas_limit(cfn: Cfn) -> None:
    # A body API Gateway accepts (up to 10 MB) but Lambda cannot (over 6 MB) would fail as a 5xx and page
    # on-call: the request model refuses any body of the wrong shape, or with too many or too long entries.
    schema = body_model(cfn)
    assert schema["additionalProperties"] is False and schema["required"] == ["parserRunIds"]
    ids = schema["properties"]["parserRunIds"]
    assert ids["maxItems"] == 1000
    items = ids["items"]
    assert items["maxLength"] <= 1024 and items["maxItems"] == 0 and items["maxProperties"] == 0
    # 1,000 entries of the longest allowed string, JSON-quoted and comma-separated, stay far below 6 MB.
    assert 1000 * (items["maxLength"] + 3) < 6 * 1024 * 1024 / 4
    responses = cfn.props("DeletionApi")["Body"]["x-amazon-apigateway-gateway-responses"]
    assert responses["BAD_REQUEST_BODY"]["statusCode"] == "400"


def test_the_waf_is_on_by_default_with_aws_common_rules_a_rate_rule_and_body_rules(cfn: Cfn) -> None:
    acl = cfn.resources["WebAcl"]
    assert acl["Condition"] == "WafEnabled" and cfn.parameter_default("EnableWaf") == "true"
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    common = rules["aws-common-rule-set"]["Statement"]["ManagedRuleGroupStatement"]
    assert (common["VendorName"], common["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    # Its 8 KB body limit would refuse bulk requests the API takes: counted only, the 64 KB rule blocks instead.
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    rate = rules["rate-limit-per-ip"]["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "WafRateLimitPerFiveMinutes"} and rate["AggregateKeyType"] == "IP"
    size = rules["body-size"]["Statement"]["SizeConstraintStatement"]
    # Bodies beyond what WAF inspects are blocked too, not waved through.
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert size["ComparisonOperator"] == "GT" and size["Size"] <= 64 * 1024
    assert "Block" in rules["body-size"]["Action"]
    # A DELETE or a GET with any body at all is refused at the edge (the function refuses it too).
    bodyless = rules["no-body-on-delete-or-get"]
    assert bodyless["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 400
    methods, body = bodyless["Statement"]["AndStatement"]["Statements"]
    assert {m["ByteMatchStatement"]["SearchString"] for m in methods["OrStatement"]["Statements"]} == {"DELETE", "GET"}
    assert (
        body["SizeConstraintStatement"]["ComparisonOperator"] == "GT" and body["SizeConstraintStatement"]["Size"] == 0
    )
    assert len({rule["Priority"] for rule in rules.values()}) == len(rules)
    association = cfn.props("WebAclAssociation")
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert "${DeletionApi}/stages/" in association["ResourceArn"]["Fn::Sub"]


ENHANCED_TLS_1_2 = "SecurityPolicy_TLS13_1_2_2021_06"


def test_the_api_itself_refuses_tls_below_1_2_with_an_enhanced_policy(cfn: Cfn) -> None:
    # The regional API's own endpoint, not only a custom domain: an enhanced policy needs an access mode.
    api = cfn.props("DeletionApi")
    assert (api["SecurityPolicy"], api["EndpointAccessMode"]) == (ENHANCED_TLS_1_2, "STRICT")


def test_a_custom_domain_uses_tls_1_2_and_can_retire_the_default_endpoint(cfn: Cfn) -> None:
    domain = cfn.resources["CustomDomain"]
    assert domain["Condition"] == "HasCustomDomain"
    assert (domain["Properties"]["SecurityPolicy"], domain["Properties"]["EndpointAccessMode"]) == (
        ENHANCED_TLS_1_2,
        "STRICT",
    )
    mapping = cfn.props("CustomDomainMapping")
    assert mapping["RestApiId"] == {"Ref": "DeletionApi"}
    servers = cfn.props("DeletionApi")["Body"]["servers"]
    [setting] = [server["x-amazon-apigateway-endpoint-configuration"] for server in servers]
    assert setting["disableExecuteApiEndpoint"] == {"Fn::If": ["DisableDefaultEndpoint", True, False]}
    assert cfn.doc["Conditions"]["DisableDefaultEndpoint"] == {
        "Fn::And": [{"Condition": "HasCustomDomain"}, {"Fn::Equals": [{"Ref": "DisableExecuteApiEndpoint"}, "true"]}]
    }


def test_the_extend_base_url_parameter_takes_a_host_and_no_path(cfn: Cfn) -> None:
    pattern = cfn.doc["Parameters"]["ExtendApiBaseUrl"]["AllowedPattern"]
    for allowed in ("https://api.extend.ai", "https://api.eu1.extend.ai/", "https://proxy.example.com:8443"):
        assert re.fullmatch(pattern, allowed), allowed
    for refused in ("https://api.extend.ai/v1", "https://proxy.example.com/extend/", "http://api.extend.ai"):
        assert not re.fullmatch(pattern, refused), refused
