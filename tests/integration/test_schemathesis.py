"""Schemathesis against openapi.yaml, through the local API Gateway front: no 5xx and no schema violation.

The API function runs as a worker process of the local Lambda runtime behind its HTTP front (API key and
all), reading from moto and calling the Extend emulator. Schemathesis generates requests from the spec,
valid and invalid; a registered tenant's key and signature go on each, so that what is exercised is the
function behind authentication (tests/integration/test_fuzz_api_events.py covers unsigned requests). Every
answer's status, content type, headers and body are checked against the spec.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from requests.structures import CaseInsensitiveDict
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
from tests.support.api import TenantSigner
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
statuses_seen: list[int] = []


@pytest.fixture(scope="module")
def local_api(moto_endpoint: str) -> Iterator[tuple[LocalDeployment, requests.Session, str]]:
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
            tenant = stack.register_tenant("contract", ownership="workspace", workspace_id=WORKSPACE)
            assert tenant.api_key_value is not None
            session = requests.Session()
            session.auth = TenantSigner(register_secret(tenant.signing_secret), f"/{stack.stage}")
            yield stack, session, register_secret(tenant.api_key_value)
            # Checked here, when every case of the module has run, whatever order they ran in: had the signer
            # been wrong, every answer would have been a documented 401.
            assert any(200 <= status < 300 for status in statuses_seen), sorted(set(statuses_seen))
        finally:
            stack.stop()


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_openapi_yaml_and_none_is_a_5xx(
    case: schemathesis.Case[Any], local_api: tuple[LocalDeployment, requests.Session, str]
) -> None:
    stack, signed_session, api_key = local_api
    headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers)  # a copy, as case-insensitive as the original
    headers["x-api-key"] = api_key
    case.headers = headers
    response = case.call_and_validate(base_url=stack.api_url, session=signed_session, checks=CHECKS, timeout=30)
    record_response(response.text)
    statuses_seen.append(response.status_code)
