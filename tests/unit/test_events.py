"""devstack.events: the committed samples in events/ are exactly what it builds, and its command keeps them so.

After changing a sample (or the builders), regenerate them with ``python -m devstack.events --write events/``.
"""

from __future__ import annotations

import base64
from pathlib import Path

from devstack.events import apigw_http_event, apigw_rest_event, main, render, sample_events

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def test_the_committed_samples_are_what_devstack_events_builds() -> None:
    # Given every sample devstack.events builds, and every file in events/
    built = {name: render(event) for name, event in sample_events().items()}
    committed = {path.name: path.read_text(encoding="utf-8") for path in EVENTS_DIR.glob("*.json")}

    # Then they are the same files, byte for byte
    assert sorted(committed) == sorted(built)
    for name, text in built.items():
        assert committed[name] == text, f"events/{name} is stale: run python -m devstack.events --write events/"


def test_the_command_writes_the_samples_and_then_finds_nothing_to_change(tmp_path: Path) -> None:
    # Given the samples written into an empty folder
    assert main(["--write", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(sample_events())

    # Then a check finds them current, until one is edited or removed
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "apigw_rest_delete.json").write_text("{}\n", encoding="utf-8")
    assert main(["--check", str(tmp_path)]) == 1
    main(["--write", str(tmp_path)])
    (tmp_path / "sqs_malformed.json").unlink()
    assert main(["--check", str(tmp_path)]) == 1


def test_the_http_api_event_joins_repeated_headers_and_query_parameters() -> None:
    event = apigw_http_event(
        method="GET",
        path="/items",
        route_key="GET /items",
        source_ip="10.0.0.1",
        query="x=1&x=2&y=",
        headers=[("Accept", "a"), ("accept", "b"), ("Host", "example.test:8080")],
    )
    assert event["headers"]["accept"] == "a,b" and "Accept" not in event["headers"]
    assert event["rawQueryString"] == "x=1&x=2&y=" and event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["requestContext"]["domainName"] == "example.test"
    assert "pathParameters" not in event and "body" not in event and event["isBase64Encoded"] is False


def test_bodies_are_text_when_they_can_be_and_base64_otherwise() -> None:
    def rest(body: bytes, base64_body: bool | None = None) -> tuple[object, object]:
        event = apigw_rest_event(
            method="POST",
            path="/x",
            resource="/x",
            stage="v1",
            source_ip="10.0.0.1",
            body=body,
            base64_body=base64_body,
        )
        return event["body"], event["isBase64Encoded"]

    assert rest(b"") == (None, False)
    assert rest(b"caf\xc3\xa9") == ("café", False)
    assert rest(b"\xff\x00") == (base64.b64encode(b"\xff\x00").decode(), True)
    # and a caller may say which, as API Gateway does for a binary media type
    assert rest(b"{}", base64_body=True) == ("e30=", True)
    assert rest(b"", base64_body=False) == ("", False)


def test_events_name_the_same_region_and_account_as_the_local_stack() -> None:
    from devstack import events, moto_stack, template

    assert events.REGION == moto_stack.REGION == template.LOCAL_REGION
    assert events.ACCOUNT_ID == template.LOCAL_ACCOUNT
