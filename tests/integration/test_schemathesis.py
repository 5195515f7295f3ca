"""Schemathesis against openapi.yaml, through the local API Gateway front: no 5xx and no schema violation.

The API function runs as a worker process of the local Lambda runtime behind its HTTP front (API key and
all), reading from moto and calling the Extend emulator. Schemathesis generates requests from the spec,
valid and invalid, and checks every answer's status, content type, headers and body against the spec.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from tests.support.secret_guard import record_response, register_secret

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
WORKSPACE = "ws_schemathesis"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture(scope="module")
def local_api(moto_endpoint: str) -> Iterator[LocalDeployment]:
    extend_key = register_secret(f"sk_schemathesis_{secrets.token_hex(16)}")
    with ExtendEmulator() as emulator:
        emulator.add_key(extend_key, workspace_id=WORKSPACE)
        emulator.seed([f"pr_{index}" for index in range(50)], workspace_id=WORKSPACE)
        options = LocalDeploymentOptions(
            environment_overrides={"EXTEND_BACKOFF_BASE_SECONDS": "0.01", "EXTEND_BACKOFF_CAP_SECONDS": "0.05"},
            api_instances=1,
            workspace_id=WORKSPACE,
            stack_name=f"st{secrets.token_hex(3)}",
        )
        stack = LocalDeployment(moto_endpoint, emulator.base_url, extend_key, LogSink(), options)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_openapi_yaml_and_none_is_a_5xx(
    case: schemathesis.Case, local_api: LocalDeployment
) -> None:
    # The gateway's own API-key check (403 without a valid key) is not what is under test: always send the key.
    case.headers = {**(case.headers or {}), "x-api-key": local_api.api_key}
    response = case.call_and_validate(base_url=local_api.api_url, checks=CHECKS, timeout=30)
    record_response(response.text)
