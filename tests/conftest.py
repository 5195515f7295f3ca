"""Fixtures shared by every tier: moto's server and the Extend emulator on loopback, a test's in-process stack,
signing, and the template as written, expanded and built. Helpers live in tests/support/."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "parser-run-deleter")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ExtendParserRunDeleter")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from aws_lambda_powertools.utilities import parameters

from devstack.extend_emulator import ExtendEmulator
from devstack.moto_stack import apply_local_aws_env, aws_client, create_queues, moto_server, put_secret
from devstack.template import parse_cfn_yaml
from parser_run_deleter.shared import observability
from tests.support.api import API_KEY_ID, TENANT_CLAIM, TENANT_ID, Signing, use_signer
from tests.support.secret_guard import new_api_key
from tests.support.stacks import Emitted, InProcessStack, create_tables, reset_functions
from tests.support.template import TEMPLATE, BuiltArtifacts, Cfn, load_built, load_transformed

pytest_plugins = ["tests.support.secret_guard"]

# The gate runs the same generated examples every time, so that a red run is a bug, not a roll of the dice.
# HYPOTHESIS_PROFILE=explore draws new ones (and remembers failures in .hypothesis/) to look for more.
hypothesis_settings.register_profile("gate", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

# The function logs to the process's real stdout, as in Lambda. Binding it to fd 1 (not to whichever capture
# object pytest had installed at import time) lets pytest's fd capture see every line, from every thread.
log_handler = observability.logger.registered_handler
assert isinstance(log_handler, logging.StreamHandler)
log_handler.setStream(sys.__stdout__)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        apply_local_aws_env(endpoint)
        yield endpoint


@pytest.fixture
def extend() -> Iterator[ExtendEmulator]:
    with ExtendEmulator() as emulator:
        yield emulator


@pytest.fixture
def emitted(capfd: pytest.CaptureFixture[str]) -> Emitted:
    return Emitted(capfd)


@pytest.fixture
def stack(moto_endpoint: str, extend: ExtendEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessStack]:
    api_key = new_api_key()
    extend.add_key(api_key, workspace_id="ws_test")
    secret_arn = put_secret(moto_endpoint, api_key)
    queues = create_queues(moto_endpoint)
    tables = create_tables(moto_endpoint)
    callback_queue = aws_client("sqs", moto_endpoint).create_queue(QueueName=f"callbacks-{uuid.uuid4().hex[:8]}")
    stack = InProcessStack(moto_endpoint, extend, api_key, secret_arn, queues, monkeypatch, tables=tables)
    stack.set_env(
        TENANTS_TABLE_NAME=tables.tenants_table,
        TENANT_SECRET_PREFIX=tables.secret_prefix,
        IDEMPOTENCY_TABLE_NAME=tables.idempotency_table,
        LEDGER_TABLE_NAME=tables.ledger_table,
        INTAKE_DELAY_SECONDS="0",  # tests hand messages to the queue function at once; one test restores the race
        TENANT_CLAIM=TENANT_CLAIM,
        EXTEND_API_KEY_SECRET_ID=secret_arn,
        EXTEND_API_BASE_URL=extend.base_url,
        EXTEND_API_VERSION="2025-04-21",
        DEAD_LETTER_QUEUE_URL=queues.dead_letter_queue_url,
        DELETION_QUEUE_URL=queues.queue_url,
        CALLBACK_QUEUE_URL=callback_queue["QueueUrl"],
        MAX_RECEIVE_COUNT=str(queues.max_receive_count),
        EXTEND_BACKOFF_BASE_SECONDS="0.01",
        EXTEND_BACKOFF_CAP_SECONDS="0.05",
        EXTEND_MAX_REQUESTS_PER_SECOND="1000",
        DEADLINE_SAFETY_MARGIN_SECONDS="0.5",
    )
    parameters.clear_caches()
    reset_functions()
    observability.metrics.clear_metrics()
    # The test's tenant, as an operator registers one: it owns the runs of the stack's workspace.
    stack.tenant = stack.register_tenant(TENANT_ID, api_key_ids=(API_KEY_ID,), workspace_id=stack.workspace_id)
    use_signer(stack.tenant.signing_secret)
    yield stack
    use_signer(None)
    parameters.clear_caches()
    reset_functions()


@pytest.fixture
def signing(stack: InProcessStack) -> Signing:
    """The test tenant's signing secret, and its name in Secrets Manager."""
    return Signing(stack.tenant.signing_secret, stack.tenant_admin().secret_id(TENANT_ID))


@pytest.fixture(scope="session")
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def raw_template(template_text: str) -> dict[str, Any]:
    document: dict[str, Any] = parse_cfn_yaml(template_text)
    return document


@pytest.fixture(scope="session")
def cfn() -> Cfn:
    return load_transformed()


@pytest.fixture(scope="session")
def built() -> BuiltArtifacts:
    return load_built()
