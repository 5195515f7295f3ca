"""What Extend finally receives for any id: the id itself, in exactly one request, or nothing at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.extend_emulator import ExtendEmulator
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId
from parser_run_deleter.shared.time_budget import Deadline
from tests.support.extend_ids import WORKSPACE, any_ids, client_for, is_valid
from tests.support.secret_guard import new_api_key


@pytest.fixture(scope="module")
def live_emulator() -> Iterator[ExtendEmulator]:
    with ExtendEmulator() as emulator:
        yield emulator


@pytest.mark.parametrize("version", ["2025-04-21", "2026-02-09"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parser_run_id=any_ids)
def test_what_the_emulator_receives_is_the_id_itself_or_nothing(
    live_emulator: ExtendEmulator, version: str, parser_run_id: str
) -> None:
    # Given a live Extend emulator where the id (if valid) exists
    key = new_api_key()
    live_emulator.add_key(key, workspace_id=WORKSPACE)
    client = client_for(live_emulator.base_url, version, key)
    live_emulator.reset_stats()
    if is_valid(parser_run_id):
        live_emulator.seed([parser_run_id], workspace_id=WORKSPACE)

    # When the client is asked to delete it
    try:
        result = client.delete(parser_run_id, Deadline.after(5))
    except InvalidParserRunId:
        # Then an invalid id never produced a single byte on the wire
        assert not is_valid(parser_run_id)
        assert live_emulator.requests == []
        return

    # Then a valid id arrived as exactly itself, in one request, on the version's path, and was deleted
    assert is_valid(parser_run_id)
    [request] = live_emulator.requests
    prefix = "/parse_runs/" if version == "2026-02-09" else "/parser_runs/"
    assert request.path == prefix + parser_run_id
    assert request.parser_run_id == parser_run_id
    assert result.outcome is Outcome.DELETED
    assert not live_emulator.exists(parser_run_id, workspace_id=WORKSPACE)
