"""Fixtures the integration tier's modules share."""

from __future__ import annotations

import pytest

from parser_run_deleter.adapters.ledger_table import LedgerTable
from parser_run_deleter.logic.ledger import Ledger
from tests.support.stacks import InProcessStack


@pytest.fixture
def ledger(stack: InProcessStack) -> Ledger:
    """The stack's ledger, read and written as the harness (not as any function's role)."""
    assert stack.tables is not None
    from devstack.moto_stack import aws_client

    return Ledger(
        LedgerTable(stack.tables.ledger_table, retention_days=400, client=aws_client("dynamodb", stack.endpoint))
    )
