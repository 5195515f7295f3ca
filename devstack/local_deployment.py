"""The template's stack on loopback: queues, tables, secrets and the API's keys in moto, both functions, the event
source and the API.

``LocalDeployment`` reads ``template.yaml`` (``devstack.template``), creates its queues, tables and secrets on
moto's server, a REST API in moto's API Gateway (whose usage plans hold the tenants' keys), and runs its queue
function behind ``devstack.sqs_event_source`` and its API function behind ``devstack.api_gateway``, each function
as a ``devstack.functions`` pool pointed at the Extend emulator. Tenants are registered the way an operator
registers them (``opscli.tenants``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.api_gateway import ApiGatewayFront, Route, UsagePlanKeys
from devstack.functions import FunctionConfig, FunctionPool, InvocationResult
from devstack.logs import LogSink
from devstack.sqs_event_source import EventSourceSettings, SqsEventSource
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION
from opscli.tenants import AddedTenant, SecretProtection, StageApi, TenantAdmin
from parser_run_deleter.adapters.tenant_table import TenantTable

REPO_ROOT = Path(__file__).resolve().parent.parent
# Each principal signs its calls with its own access key id, its role's logical id (moto takes any key), so that a
# log of moto's traffic (devstack.aws_call_log) tells who made each call: each function and its event source as
# its role, tenants as the operator role. What deploys the stack, and the harness watching it, keep moto_stack's
# "testing" key.
OPERATOR_PRINCIPAL = "OperatorRole"


@dataclass
class LocalDeploymentOptions:
    template_path: Path = REPO_ROOT / "template.yaml"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Applied to both functions after the template's own variables (local tuning, e.g. backoffs).
    environment_overrides: dict[str, str] = field(default_factory=dict)
    visibility_timeout_s: int | None = None  # None: the template's
    api_instances: int = 2
    sqs_wait_time_s: int = 1
    # False: the event source is built but polls only after ``event_source.start()``, so a caller can fill the queue
    # first and know how messages will be batched (two pollers could otherwise split a batch between them).
    poll_queue: bool = True
    workspace_id: str = "ws_local"
    stack_name: str = "local"


class LocalDeployment:
    """The template's queues, secrets and functions, on moto's server and the Extend emulator."""

    def __init__(
        self,
        moto_endpoint: str,
        extend_base_url: str,
        extend_api_key: str,
        sink: LogSink,
        options: LocalDeploymentOptions,
    ) -> None:
        self.moto_endpoint = moto_endpoint
        self.extend_base_url = extend_base_url
        self.extend_api_key = extend_api_key
        self.sink = sink
        self.options = options
        self.queue_urls: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.max_receive_count: int | None = None
        self.redrive_targets: dict[str, tuple[str, int]] = {}  # queue -> (its DLQ, maxReceiveCount)
        self.secret_arns: dict[str, str] = {}
        self._pools: list[FunctionPool] = []
        self.event_source: SqsEventSource | None = None
        self.front: ApiGatewayFront | None = None
        self.queue_pool: FunctionPool | None = None
        self.api_pool: FunctionPool | None = None
        # Other SQS-triggered functions, by logical id (the completion callbacks').
        self.other_pools: dict[str, FunctionPool] = {}
        self.other_sources: dict[str, SqsEventSource] = {}
        # Scheduled functions (the sweeper), by logical id: their pool and the name of the rule that invokes them.
        self.scheduled: dict[str, tuple[FunctionPool, str]] = {}

    def _aws_environment(self, principal: str) -> dict[str, str]:
        from devstack.moto_stack import LOCAL_AWS_ENV  # noqa: PLC0415

        return {**LOCAL_AWS_ENV, "AWS_ACCESS_KEY_ID": principal, "AWS_ENDPOINT_URL": self.moto_endpoint}

    def role_of(self, function_logical_id: str) -> str:
        """The logical id of the role a function of the template runs as (its ``Role: !GetAtt X.Arn``)."""
        role = self.template.resources[function_logical_id].get("Properties", {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            return str(role["Fn::GetAtt"][0])
        return f"{function_logical_id}Role"

    def start(self) -> LocalDeployment:
        from devstack.moto_stack import aws_client, put_secret  # noqa: PLC0415 - boto3 only when a stack starts
        from devstack.template import Template  # noqa: PLC0415

        suffix = uuid.uuid4().hex[:6]
        stack = f"{self.options.stack_name}-{suffix}"
        key_secret = json.dumps({"apiKey": self.extend_api_key, "workspaceId": self.options.workspace_id})
        overrides = {
            "ExtendApiKeySecretArn": put_secret(self.moto_endpoint, key_secret, name=f"{stack}/extend-api-key")
        }
        # The secrets' ARNs by template parameter, e.g. to rotate the Extend key in a test.
        self.secret_arns = dict(overrides)
        overrides.update(self.options.parameter_overrides)
        template = Template.load(self.options.template_path, overrides)
        template.resolver.stack_name = stack
        self.sqs = aws_client("sqs", self.moto_endpoint)
        # The stack's data key and the roles its tenants' secrets name in their policies (moto keeps the policies
        # and the key id as given; IAM's verdicts on them are proved offline in tests/infra).
        self.data_key_arn = str(
            aws_client("kms", self.moto_endpoint).create_key(Description=stack)["KeyMetadata"]["Arn"]
        )
        self.role_arns = {
            role: f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{stack}-{role}"
            for role in (
                "OperatorRole",
                "ApiFunctionRole",
                "CallbackFunctionRole",
                "QueueFunctionRole",
                "SweeperFunctionRole",
            )
        }
        self._create_queues(template, stack)
        self._create_tables(template, stack)
        self.apigateway = aws_client("apigateway", self.moto_endpoint)
        self.rest_api_id = str(self.apigateway.create_rest_api(name=stack)["id"])
        self.template = template

        queue_spec = template.queue_function()
        api_spec = template.api_function()
        assert api_spec.api_logical_id is not None, "the API function has no Api event"
        template.resolver.refs[api_spec.api_logical_id] = self.rest_api_id
        assert queue_spec.sqs is not None
        queue_config = self._config(queue_spec)
        api_config = self._config(api_spec)
        concurrency = queue_spec.sqs.maximum_concurrency or 5
        self.queue_pool = FunctionPool(queue_config, self.sink, concurrency)
        self.api_pool = FunctionPool(api_config, self.sink, self.options.api_instances)
        self._pools = [self.queue_pool, self.api_pool]
        source = queue_spec.sqs.queue_logical_id
        if source in self.redrive_targets:
            self.dead_letter_queue, self.max_receive_count = self.redrive_targets[source]
        self.event_source = self._event_source(self.queue_pool, queue_spec.sqs, concurrency)
        if self.options.poll_queue:
            self.event_source.start()
        api = template.api(api_spec.api_logical_id)
        self.stage = api.stage_name
        self.front = ApiGatewayFront(
            self.api_pool,
            [Route.of(route.path, route.method) for route in api_spec.api_routes],
            stage=api.stage_name,
            api_keys=UsagePlanKeys(self.apigateway, self.rest_api_id, api.stage_name) if api.api_key_required else None,
        ).start()
        self.queue_function = queue_spec
        self.api_function = api_spec
        self.source_queue = source
        self._start_other_queue_functions(template, queue_spec.logical_id)
        for spec in template.functions().values():
            if spec.schedule_rule is not None:
                pool = FunctionPool(self._config(spec), self.sink, 1)
                self._pools.append(pool)
                self.scheduled[spec.logical_id] = (pool, spec.schedule_rule)
        return self

    def run_schedule(self, function_logical_id: str = "SweeperFunction") -> InvocationResult:
        """Invoke a scheduled function as its rule does: EventBridge's scheduled event, naming the rule."""
        from devstack.events import scheduled_event  # noqa: PLC0415

        pool, rule = self.scheduled[function_logical_id]
        event = {
            **scheduled_event(rule, account=LOCAL_ACCOUNT, region=LOCAL_REGION),
            "id": str(uuid.uuid4()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        return pool.invoke(event)

    def _start_other_queue_functions(self, template: Any, deletion_function: str) -> None:
        """Every other SQS-triggered function (the completion callbacks'), polling its own queue. Locally its
        callbacks may go to loopback, and its status links point at the local front."""

        assert self.front is not None
        local = {"API_BASE_URL": self.front.base_url, "CALLBACK_ALLOW_LOOPBACK": "true"}
        for spec in template.sqs_functions():
            if spec.logical_id == deletion_function or spec.sqs is None:
                continue
            concurrency = spec.sqs.maximum_concurrency or 2
            pool = FunctionPool(self._config(spec, local), self.sink, concurrency)
            source = self._event_source(pool, spec.sqs, concurrency)
            self._pools.append(pool)
            self.other_pools[spec.logical_id] = pool
            self.other_sources[spec.logical_id] = source
            source.start()

    def _event_source(self, pool: FunctionPool, sqs: Any, concurrency: int) -> SqsEventSource:
        """The event source mapping an SQS event source of the template describes, polling its queue in moto."""
        from devstack.moto_stack import aws_client  # noqa: PLC0415

        settings = EventSourceSettings(
            queue_url=self.queue_urls[sqs.queue_logical_id],
            queue_arn=self.queue_arns[sqs.queue_logical_id],
            batch_size=sqs.batch_size,
            batching_window_s=sqs.batching_window_s,
            maximum_concurrency=concurrency,
            report_batch_item_failures=sqs.report_batch_item_failures,
            wait_time_s=self.options.sqs_wait_time_s,
        )
        # Lambda polls a queue with the function's role.
        return SqsEventSource(pool, settings, aws_client("sqs", self.moto_endpoint, self.role_of(pool.config.name)))

    def _create_queues(self, template: Any, stack: str) -> None:
        specs = template.queues()
        for spec in specs.values():
            attributes = {
                "VisibilityTimeout": str(
                    self.options.visibility_timeout_s
                    if self.options.visibility_timeout_s is not None
                    else spec.visibility_timeout_s
                )
            }
            if spec.message_retention_s is not None:
                attributes["MessageRetentionPeriod"] = str(spec.message_retention_s)
            name = f"{stack}-{spec.logical_id}"
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.queue_urls[spec.logical_id], self.queue_arns[spec.logical_id] = url, arn
            template.resolver.refs[spec.logical_id] = url
            template.resolver.attributes[(spec.logical_id, "Arn")] = arn
            template.resolver.attributes[(spec.logical_id, "QueueName")] = name
            template.resolver.attributes[(spec.logical_id, "QueueUrl")] = url
        for spec in specs.values():
            if spec.dead_letter_logical_id and spec.max_receive_count:
                policy = {
                    "deadLetterTargetArn": self.queue_arns[spec.dead_letter_logical_id],
                    "maxReceiveCount": str(spec.max_receive_count),
                }
                self.sqs.set_queue_attributes(
                    QueueUrl=self.queue_urls[spec.logical_id], Attributes={"RedrivePolicy": json.dumps(policy)}
                )
                self.redrive_targets[spec.logical_id] = (spec.dead_letter_logical_id, spec.max_receive_count)

    def _create_tables(self, template: Any, stack: str) -> None:
        from devstack.moto_stack import aws_client  # noqa: PLC0415

        dynamodb = aws_client("dynamodb", self.moto_endpoint)
        for spec in template.tables().values():
            name = f"{stack}-{spec.logical_id}"
            dynamodb.create_table(**spec.create_arguments(name))
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
                )
            self.table_names[spec.logical_id] = name
            template.resolver.refs[spec.logical_id] = name
            template.resolver.attributes[(spec.logical_id, "Arn")] = (
                f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{name}"
            )

    # ---- tenants, registered as an operator registers them

    def tenant_admin(self) -> TenantAdmin:
        from devstack.moto_stack import aws_client  # noqa: PLC0415

        return TenantAdmin(
            TenantTable(
                self.table_names["TenantsTable"], aws_client("dynamodb", self.moto_endpoint, OPERATOR_PRINCIPAL)
            ),
            aws_client("secretsmanager", self.moto_endpoint, OPERATOR_PRINCIPAL),
            self.api_function.environment["TENANT_SECRET_PREFIX"],
            aws_client("apigateway", self.moto_endpoint, OPERATOR_PRINCIPAL),
            SecretProtection(
                self.data_key_arn,
                self.role_arns["OperatorRole"],
                self.role_arns["ApiFunctionRole"],
                self.role_arns["CallbackFunctionRole"],
            ),
        )

    def stage_api(self) -> StageApi:
        resolver = self.template.resolver
        return StageApi(
            self.rest_api_id,
            self.stage,
            float(resolver.parameter("ApiThrottleRateLimit")),
            int(resolver.parameter("ApiThrottleBurstLimit")),
        )

    def register_tenant(self, tenant_id: str, **definition: Any) -> AddedTenant:
        """A tenant with its own API key, usage plan and signing secret, as
        ``extend-deleter tenants add --create-api-key`` makes one."""
        return self.tenant_admin().add(tenant_id, stage=self.stage_api(), **definition)

    def _config(self, spec: Any, local: dict[str, str] | None = None) -> FunctionConfig:
        environment = dict(spec.environment)
        environment["EXTEND_API_BASE_URL"] = self.extend_base_url
        if spec.sqs is not None and self.options.visibility_timeout_s is not None:
            # Local tuning shortens the queues' visibility timeout: the function confirms its records with it.
            environment["SOURCE_QUEUE_VISIBILITY_SECONDS"] = str(self.options.visibility_timeout_s)
        environment.update(local or {})
        environment.update(self.options.environment_overrides)
        environment.update(self._aws_environment(self.role_of(spec.logical_id)))
        return FunctionConfig(
            name=spec.logical_id,
            handler=spec.handler,
            code_uri=spec.code_uri,
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
            environment=environment,
        )

    def prewarm(self) -> None:
        """Start every queue function instance and one API instance before the first event."""
        assert self.queue_pool is not None
        assert self.api_pool is not None
        self.queue_pool.prewarm(self.queue_pool.max_instances)
        self.api_pool.prewarm(1)

    @property
    def visibility_timeout_s(self) -> int:
        found = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"])
        return int(found["Attributes"]["VisibilityTimeout"])

    @property
    def queue_url(self) -> str:
        return self.queue_urls[self.source_queue]

    @property
    def dead_letter_queue_url(self) -> str:
        return self.queue_urls[self.dead_letter_queue]

    @property
    def api_url(self) -> str:
        assert self.front is not None
        return self.front.base_url

    def queue_depths(self) -> dict[str, int]:
        """Visible, in-flight and delayed messages in the deletion queue (the API sends with a short delay), and
        the DLQ's messages."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        main = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        dead = self.sqs.get_queue_attributes(QueueUrl=self.dead_letter_queue_url, AttributeNames=names)["Attributes"]
        return {
            "visible": int(main["ApproximateNumberOfMessages"]),
            "in_flight": int(main["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(main["ApproximateNumberOfMessagesDelayed"]),
            "dead_letter": int(dead["ApproximateNumberOfMessages"])
            + int(dead["ApproximateNumberOfMessagesNotVisible"]),
        }

    def stop(self) -> None:
        """Stop taking work, let running invocations finish, then stop every instance."""
        if self.front is not None:
            self.front.stop()
        sources = [self.event_source, *self.other_sources.values()] if self.event_source else []
        for source in sources:
            source.signal_stop()
        for pool in self._pools:
            pool.close()
        for source in sources:
            source.stop()
        for pool in self._pools:
            pool.close()

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
