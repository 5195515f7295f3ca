"""The local stack's outputs, published as a CloudFormation stack in moto's server.

``extend-deleter --stack-name NAME`` reads a deployed stack's outputs (``ApiUrl``, ``RestApiId``,
``TenantsTableName``, ...) to find what it works on. Publishing the local stack's values under the same output
keys lets the operator commands of docs/deploy.md run unchanged against ``make run ARGS=--serve``: the local
walk-through and the smoke test go through the same lookup as on AWS.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from devstack.moto_stack import aws_client
from devstack.template import TemplateError

if TYPE_CHECKING:
    from devstack.local_deployment import LocalDeployment


def local_outputs(stack: LocalDeployment) -> dict[str, str]:
    """Each output the template declares (and whose condition holds), with the local stack's value: the template's
    own expression where the local resolver knows the resource (tables, queues, the REST API, the secret prefix),
    and the local stand-in where it cannot (the API's URL is the local front's, the roles and the key are the ones
    the local stack names in the tenants' secret policies)."""
    template = stack.template
    resolver = template.resolver
    outputs: dict[str, str] = {}
    for key, output in template.document.get("Outputs", {}).items():
        condition = output.get("Condition")
        if condition is not None and not resolver.condition(condition):
            continue
        try:
            outputs[key] = str(resolver.resolve(output["Value"]))
        except TemplateError:
            continue
    local = {
        "ApiUrl": stack.api_url,
        "StageName": stack.stage,
        "OperatorRoleArn": stack.role_arns["OperatorRole"],
        "ApiFunctionRoleArn": stack.role_arns["ApiFunctionRole"],
        "CallbackFunctionRoleArn": stack.role_arns["CallbackFunctionRole"],
        "DataKeyArn": stack.data_key_arn,
    }
    outputs.update({key: value for key, value in local.items() if key in outputs})
    return outputs


def stack_name(stack: LocalDeployment) -> str:
    """The local stack's name (``<options.stack_name>-<random suffix>``), as its resources are named."""
    return stack.template.resolver.stack_name


def publish_outputs(stack: LocalDeployment) -> str:
    """Create a stack in moto's CloudFormation whose outputs are ``local_outputs(stack)``; returns its name. It has
    no resources (moto accepts that, where CloudFormation would not): the resources are the local stack's own."""
    document: dict[str, Any] = {
        "Description": "The outputs of a local stack (devstack), for extend-deleter --stack-name",
        "Resources": {},
        "Outputs": {key: {"Value": value} for key, value in local_outputs(stack).items()},
    }
    name = stack_name(stack)
    aws_client("cloudformation", stack.moto_endpoint).create_stack(StackName=name, TemplateBody=json.dumps(document))
    return name
