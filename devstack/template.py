"""Read ``template.yaml`` the way the local stack needs it: functions, their event sources, and the queues.

PyYAML's safe loader refuses CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If`` ...); the
loader here turns each into its long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``), as CloudFormation
does. ``Resolver`` then evaluates intrinsic functions with Parameters at their defaults (or overrides), the
template's Conditions, and local values for resources (a queue's ``Ref`` is its moto URL, ``GetAtt .Arn``
its ARN). ``AWS::NoValue`` removes the key, as in CloudFormation.

The template stays the source of truth: ``Handler``, ``CodeUri``, ``Timeout``, ``MemorySize``, environment
(Globals merged with the function's own), and the SQS event source's ``BatchSize``,
``MaximumBatchingWindowInSeconds`` and ``ScalingConfig.MaximumConcurrency`` all come from it. Functions are
found by their event sources (an ``AWS::Lambda::EventSourceMapping`` or a SAM ``SQS`` event for the queue
function; SAM ``Api`` events for the API function), not by logical id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"


class TemplateError(ValueError):
    """The template lacks something the local stack needs; the message says what."""


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also understands CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            logical_id, _, attribute = str(value).partition(".")
            value = [logical_id, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def parse_cfn_yaml(text: str) -> Any:
    """CloudFormation YAML, short-form tags (``!Ref``, ``!Sub``, ...) read into their long form."""
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def load_template(path: Path | str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    document = parse_cfn_yaml(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return document


class _NoValue:
    """``AWS::NoValue``: the key holding it disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameter values and local stand-ins for resources."""

    template: Mapping[str, Any]
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    # Ref of a resource -> its local value (e.g. a queue URL); GetAtt (logical id, attribute) -> value.
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    stack_name: str = "local"

    def parameter(self, name: str) -> str:
        if name in self.parameter_overrides:
            return str(self.parameter_overrides[name])
        declared = self.template.get("Parameters", {}).get(name)
        if declared is None:
            raise TemplateError(f"unknown parameter {name!r}")
        if "Default" not in declared:
            raise TemplateError(f"parameter {name} has no default; the local stack must supply it")
        return _scalar(declared["Default"])

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._functions().get(key)
            if function is not None:
                return function(argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Equals": lambda args: _scalar(self.resolve(args[0])) == _scalar(self.resolve(args[1])),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::And": lambda args: all(self.resolve(arg) for arg in args),
            "Fn::Or": lambda args: any(self.resolve(arg) for arg in args),
            "Condition": self.condition,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Join": lambda args: str(args[0]).join(_scalar(self.resolve(item)) for item in self.resolve(args[1])),
            "Fn::Select": lambda args: self.resolve(args[1])[int(self.resolve(args[0]))],
        }

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::NoValue": NO_VALUE,
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}) or name in self.parameter_overrides:
            return self.parameter(name)
        if name in self.refs:
            return self.refs[name]
        if name in self.template.get("Resources", {}) or "." in name:
            return f"{self.stack_name}-{name}"  # a resource the local stack does not emulate
        raise TemplateError(f"!Ref to unknown name {name!r}")

    def _get_att(self, args: list[Any]) -> str:
        logical_id, attribute = str(args[0]), str(self.resolve(args[1]))
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        return f"{self.stack_name}-{logical_id}.{attribute}"

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = str(argument[0]), {k: _scalar(self.resolve(v)) for k, v in argument[1].items()}
        else:
            text, variables = str(argument), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return variables[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return self._get_att([logical_id, attribute])
            return _scalar(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _if(self, args: list[Any]) -> Any:
        return self.resolve(args[1] if self.condition(str(args[0])) else args[2])

    def _find_in_map(self, args: list[Any]) -> Any:
        map_name, top, second = (_scalar(self.resolve(arg)) for arg in args[:3])
        return self.template["Mappings"][map_name][top][second]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ApiRoute:
    path: str
    method: str


@dataclass(frozen=True)
class SqsEventSourceSpec:
    queue_logical_id: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    maximum_concurrency: int | None = None
    report_batch_item_failures: bool = False


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: Path
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]
    api_routes: tuple[ApiRoute, ...] = ()
    api_logical_id: str | None = None
    sqs: SqsEventSourceSpec | None = None
    schedule_rule: str | None = None  # the name of the schedule rule that invokes it (a Schedule event's Name)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    visibility_timeout_s: int = 30
    message_retention_s: int | None = None
    dead_letter_logical_id: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    hash_key: str
    ttl_attribute: str | None = None
    attribute_definitions: tuple[dict[str, str], ...] = ()
    key_schema: tuple[dict[str, str], ...] = ()
    global_secondary_indexes: tuple[dict[str, Any], ...] = ()

    def create_arguments(self, table_name: str) -> dict[str, Any]:
        """CreateTable's arguments for this table's keys and indexes (on demand, as the template bills)."""
        arguments: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": list(self.attribute_definitions),
            "KeySchema": list(self.key_schema),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.global_secondary_indexes:
            arguments["GlobalSecondaryIndexes"] = list(self.global_secondary_indexes)
        return arguments


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_name: str
    api_key_required: bool


def _function_target(value: Any) -> str | None:
    """The function logical id an event source mapping's FunctionName points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"]).split(".")[0]
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _queue_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return None


@dataclass
class Template:
    """The parts of the template the local stack runs, resolved through a ``Resolver``."""

    document: dict[str, Any]
    resolver: Resolver
    root: Path = REPO_ROOT

    @classmethod
    def load(
        cls, path: Path | str = DEFAULT_TEMPLATE, parameter_overrides: Mapping[str, str] | None = None
    ) -> Template:
        document = load_template(path)
        return cls(document, Resolver(document, dict(parameter_overrides or {})), Path(path).resolve().parent)

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.document["Resources"]
        return resources

    def _of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.resources.items()
            if resource.get("Type") == type_name and self._included(resource)
        }

    def _included(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.resolver.condition(condition)

    def queues(self) -> dict[str, QueueSpec]:
        specs = {}
        for name, resource in self._of_type("AWS::SQS::Queue").items():
            raw_properties = resource.get("Properties", {})
            redrive = raw_properties.get("RedrivePolicy") or {}
            properties = self.resolver.resolve({k: v for k, v in raw_properties.items() if k != "RedrivePolicy"})
            specs[name] = QueueSpec(
                logical_id=name,
                visibility_timeout_s=int(properties.get("VisibilityTimeout", 30)),
                message_retention_s=int(properties["MessageRetentionPeriod"])
                if "MessageRetentionPeriod" in properties
                else None,
                dead_letter_logical_id=_queue_target(redrive.get("deadLetterTargetArn")),
                max_receive_count=int(self.resolver.resolve(redrive["maxReceiveCount"]))
                if "maxReceiveCount" in redrive
                else None,
            )
        return specs

    def tables(self) -> dict[str, TableSpec]:
        specs = {}
        for name, resource in self._of_type("AWS::DynamoDB::Table").items():
            raw = resource.get("Properties", {})
            key_schema = self.resolver.resolve(raw["KeySchema"])
            [hash_key] = [key["AttributeName"] for key in key_schema if key["KeyType"] == "HASH"]
            ttl = self.resolver.resolve(raw.get("TimeToLiveSpecification") or {})
            indexes = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in self.resolver.resolve(raw.get("GlobalSecondaryIndexes") or [])
            ]
            specs[name] = TableSpec(
                name,
                hash_key,
                ttl.get("AttributeName") if ttl.get("Enabled") else None,
                attribute_definitions=tuple(self.resolver.resolve(raw["AttributeDefinitions"])),
                key_schema=tuple(key_schema),
                global_secondary_indexes=tuple(indexes),
            )
        return specs

    def functions(self) -> dict[str, FunctionSpec]:
        globals_function = self.document.get("Globals", {}).get("Function", {})
        mappings = self._event_source_mappings()
        specs = {}
        for name, resource in self._of_type("AWS::Serverless::Function").items():
            properties = resource.get("Properties", {})

            def setting(key: str, default: Any = None, properties: Mapping[str, Any] = properties) -> Any:
                return self.resolver.resolve(properties.get(key, globals_function.get(key, default)))

            environment = dict(self.resolver.resolve(globals_function.get("Environment", {})).get("Variables", {}))
            environment.update(self.resolver.resolve(properties.get("Environment", {})).get("Variables", {}))
            routes: list[ApiRoute] = []
            api_id = None
            schedule_rule = None
            sqs = mappings.get(name)
            for event in (properties.get("Events") or {}).values():
                event_properties = event.get("Properties", {})
                if event.get("Type") == "Api":
                    routes.append(ApiRoute(str(event_properties["Path"]), str(event_properties["Method"]).upper()))
                    api_id = _queue_target(event_properties.get("RestApiId")) or api_id
                elif event.get("Type") == "SQS":
                    sqs = self._sqs_spec(event_properties, "Queue")
                elif event.get("Type") == "Schedule":
                    schedule_rule = str(self.resolver.resolve(event_properties.get("Name", f"{name}Schedule")))
            handler = setting("Handler")
            code_uri = setting("CodeUri")
            if not handler or not code_uri:
                raise TemplateError(f"function {name} has no Handler or CodeUri")
            specs[name] = FunctionSpec(
                logical_id=name,
                handler=str(handler),
                code_uri=(self.root / str(code_uri)).resolve(),
                timeout_s=float(setting("Timeout", 3)),
                memory_mb=int(setting("MemorySize", 128)),
                environment={key: _scalar(value) for key, value in environment.items()},
                api_routes=tuple(routes),
                api_logical_id=api_id,
                sqs=sqs,
                schedule_rule=schedule_rule,
            )
        return specs

    def _event_source_mappings(self) -> dict[str, SqsEventSourceSpec]:
        found = {}
        for resource in self._of_type("AWS::Lambda::EventSourceMapping").values():
            properties = resource.get("Properties", {})
            function = _function_target(properties.get("FunctionName"))
            if function is not None:
                found[function] = self._sqs_spec(properties, "EventSourceArn")
        return found

    def _sqs_spec(self, properties: Mapping[str, Any], queue_key: str) -> SqsEventSourceSpec:
        queue = _queue_target(properties.get(queue_key))
        if queue is None:
            raise TemplateError(f"an SQS event source has no queue reference in {queue_key}")
        resolved = self.resolver.resolve({k: v for k, v in properties.items() if k != queue_key})
        scaling = resolved.get("ScalingConfig") or {}
        return SqsEventSourceSpec(
            queue_logical_id=queue,
            batch_size=int(resolved.get("BatchSize", 10)),
            batching_window_s=float(resolved.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
            report_batch_item_failures="ReportBatchItemFailures" in (resolved.get("FunctionResponseTypes") or []),
        )

    def sqs_functions(self) -> list[FunctionSpec]:
        return [spec for spec in self.functions().values() if spec.sqs is not None]

    def queue_function(self) -> FunctionSpec:
        """The function consuming the deletion queue: the only SQS-triggered one, or, among several, the one whose
        queue the API function sends deletions to (its ``DELETION_QUEUE_URL``)."""
        candidates = self.sqs_functions()
        if len(candidates) > 1:
            target = self._api_deletion_queue()
            candidates = [spec for spec in candidates if spec.sqs is not None and spec.sqs.queue_logical_id == target]
        if len(candidates) != 1:
            raise TemplateError(f"expected one function consuming the deletion queue, found {len(candidates)}")
        return candidates[0]

    def _api_deletion_queue(self) -> str | None:
        for resource in self._of_type("AWS::Serverless::Function").values():
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "DELETION_QUEUE_URL" in variables:
                return _queue_target(variables["DELETION_QUEUE_URL"])
        return None

    def api_function(self) -> FunctionSpec:
        candidates = [spec for spec in self.functions().values() if spec.api_routes]
        if len(candidates) != 1:
            raise TemplateError(f"expected one function with Api events, found {len(candidates)}")
        return candidates[0]

    def api(self, logical_id: str | None) -> ApiSpec:
        apis = self._of_type("AWS::Serverless::Api")
        if logical_id is None or logical_id not in apis:
            return ApiSpec(logical_id or "ServerlessRestApi", "Prod", api_key_required=False)
        properties = apis[logical_id].get("Properties", {})
        auth = self.resolver.resolve(properties.get("Auth", {}))
        return ApiSpec(
            logical_id,
            str(self.resolver.resolve(properties.get("StageName", "Prod"))),
            bool(auth.get("ApiKeyRequired", False)),
        )
