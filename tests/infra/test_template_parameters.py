"""What template.yaml says of the parameters and outputs: descriptions, constraints, groups, rules, the custom domain,
and what the stack exposes.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devstack.template import Resolver
from tests.support.template import (
    API_FUNCTION,
    CALLBACK_FUNCTION,
    FUNCTIONS,
    QUEUE_FUNCTION,
    Cfn,
)


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
    # There are four (API, queue, callback, sweeper): "both functions" is left over from when there were two.
    assert len(FUNCTIONS) == 4
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
        "SweeperFunctionName",
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
