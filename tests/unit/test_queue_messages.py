"""Queue message parsing and id validation: the gate before any id can reach a URL."""

from __future__ import annotations

import json

import pytest

from parser_run_deleter.logic.queue_messages import DeletionRequest, InvalidDeletionRequest, parse_deletion_message
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId, validate_parser_run_id


def test_json_object_with_audit_fields() -> None:
    body = json.dumps(
        {
            "parserRunId": "parser_run_1",
            "workspaceId": "ws_9",
            "requestedBy": "ops@example.com",
            "reason": "gdpr",
            "requestId": "r1",
            "unknown": "ignored",
            "callerApiKeyId": 7,
        }
    )
    request = parse_deletion_message(body)
    assert request == DeletionRequest(
        "parser_run_1", "ws_9", {"requestedBy": "ops@example.com", "reason": "gdpr", "requestId": "r1"}
    )


@pytest.mark.parametrize("body", ["parser_run_abc", '"parser_run_abc"', "  parser_run_abc\n"])
def test_bare_ids_are_accepted(body: str) -> None:
    assert parse_deletion_message(body).parser_run_id == "parser_run_abc"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "no 'parserRunId'"),
        ('{"parserRunId": 42}', "must be a string"),
        ('{"parserRunId": null}', "must be a string"),
        ('{"parserRunId": ""}', "must not be empty"),
        ('{"parserRunId": "a/../b"}', "only letters"),
        ('{"parserRunId": "pr_1", "workspaceId": "ws 1"}', "workspaceId"),
        ('{"parserRunId": "pr_1", "workspaceId": 3}', "workspaceId"),
        ("parser run", "only letters"),
        ("x" * 256, "at most 255"),
    ],
)
def test_malformed_messages_have_a_precise_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidDeletionRequest, match=reason):
        parse_deletion_message(body)


def test_round_trip_through_a_message_body() -> None:
    request = DeletionRequest("pr_1", "ws_2", {"requestedBy": "alice"})
    assert parse_deletion_message(request.to_message_body()) == request


@pytest.mark.parametrize("value", ["a", "A-z_09", "x" * 255])
def test_valid_ids_pass_unchanged(value: str) -> None:
    assert validate_parser_run_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * 256, "a b", "a%2F", "é", "a?b", "a#b", "a\n", "..", 5, None])
def test_invalid_ids_are_refused(value: object) -> None:
    with pytest.raises(InvalidParserRunId):
        validate_parser_run_id(value)
