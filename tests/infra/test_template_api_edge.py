"""What template.yaml says of the API's edge: the request model, the WAF, the TLS policies and the custom domain.

Asserted on the CloudFormation SAM expands it into: `.aws-sam/transformed.json`, written by `make infra` with the pinned
SAM translator, so these tests see what `sam deploy` would create.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.template import (
    Cfn,
)


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
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"parserRunIds", "ids", "dryRun", "include"}
    assert schema["properties"]["include"]["maxItems"] == 1
    for name in ("parserRunIds", "ids"):  # the function requires exactly one of them
        ids = schema["properties"][name]
        assert ids["maxItems"] == 1000
        items = ids["items"]
        assert items["maxLength"] <= 1024 and items["maxItems"] == 0 and items["maxProperties"] == 0
        # 1,000 entries of the longest allowed string, JSON-quoted and comma-separated, stay well below 6 MB, even
        # if both lists were sent (the function refuses that).
        assert 2 * 1000 * (items["maxLength"] + 3) < 6 * 1024 * 1024 / 2
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
