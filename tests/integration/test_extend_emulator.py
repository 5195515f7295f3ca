"""The Extend emulator over real HTTP on loopback: the documented behaviour, the official SDK, and faults."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import urllib3
from extend_ai import Extend
from extend_ai.errors import BadRequestError, NotFoundError, UnauthorizedError
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

from devstack.extend_emulator import (
    API_VERSION_2025,
    API_VERSION_2026,
    ExtendEmulator,
    Fault,
    RecordedRequest,
)

KEY = "sk_test_abc"
WORKSPACE = "ws_1"
RUN = "parser_run_xK9mLPqRtN3vS8wF5hB2cQ"
RUN_2026 = "pr_xK9mLPqRtN3vS8wF5hB2cQ"


@pytest.fixture
def emu() -> Iterator[ExtendEmulator]:
    with ExtendEmulator() as emulator:
        emulator.add_key(KEY, workspace_id=WORKSPACE)
        emulator.seed([RUN, RUN_2026], workspace_id=WORKSPACE)
        yield emulator
        assert emulator.server_errors == []


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=2.0))
    yield pool
    pool.clear()


def call(
    http: urllib3.PoolManager,
    emu: ExtendEmulator,
    run_id: str = RUN,
    *,
    method: str = "DELETE",
    version: str | None = API_VERSION_2025,
    key: str | None = KEY,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: Any = None,
) -> urllib3.BaseHTTPResponse:
    all_headers: dict[str, str] = {}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    if version is not None:
        all_headers["x-extend-api-version"] = version
    all_headers.update(headers or {})
    if path is None:
        prefix = "/parse_runs/" if version == API_VERSION_2026 else "/parser_runs/"
        path = prefix + quote(run_id, safe="")
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    return http.request(method, emu.base_url + path, headers=all_headers, **kwargs)


def error_body(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = json.loads(response.data)
    assert set(body) == {"code", "message", "retryable", "requestId"}
    assert body["requestId"] == response.headers["x-extend-request-id"]
    return body


# --------------------------------------------------------------------------- 2025-04-21, plain HTTP


def test_delete_returns_documented_body_then_404(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    first = call(http, emu)
    assert first.status == 200
    assert first.headers["Content-Type"] == "application/json"
    assert json.loads(first.data) == {
        "success": True,
        "parserRunId": RUN,
        "message": "Parser run data has been successfully deleted.",
    }
    assert first.headers["x-extend-request-id"].startswith("req_")
    assert not emu.exists(RUN, workspace_id=WORKSPACE)

    second = call(http, emu)
    assert second.status == 404
    body = error_body(second)
    assert body["code"] == "NOT_FOUND"
    assert body["retryable"] is False
    assert second.headers["x-extend-request-id"] != first.headers["x-extend-request-id"]


def test_delete_2026_path_returns_id(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    response = call(http, emu, RUN_2026, version=API_VERSION_2026)
    assert response.status == 200
    assert json.loads(response.data) == {"id": RUN_2026}
    assert not emu.exists(RUN_2026, workspace_id=WORKSPACE)


@pytest.mark.parametrize(
    ("key", "authorization"),
    [(None, None), ("sk_unknown", None), (None, "Basic abc"), (None, "Bearer ")],
    ids=["missing", "unknown", "wrong-scheme", "empty-token"],
)
def test_bad_credentials_are_401(
    emu: ExtendEmulator, http: urllib3.PoolManager, key: str | None, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = call(http, emu, key=key, headers=headers)
    assert response.status == 401
    body = error_body(response)
    assert (body["code"], body["retryable"]) == ("UNAUTHORIZED", False)
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_revoked_key_is_401(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.revoke_key(KEY)
    response = call(http, emu)
    assert response.status == 401
    assert error_body(response)["code"] == "UNAUTHORIZED"
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_missing_version_header_is_400(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    response = call(http, emu, version=None, path=f"/parser_runs/{RUN}")
    assert response.status == 400
    body = error_body(response)
    assert (body["code"], body["retryable"]) == ("INVALID_REQUEST", False)
    assert "x-extend-api-version" in body["message"]
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_unknown_version_is_400(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    response = call(http, emu, version="2030-01-01", path=f"/parser_runs/{RUN}")
    assert response.status == 400
    assert error_body(response)["code"] == "INVALID_REQUEST"


def test_legacy_key_without_version_falls_back_to_2025(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.add_key("sk_legacy", workspace_id=WORKSPACE, legacy=True)
    response = call(http, emu, key="sk_legacy", version=None, path=f"/parser_runs/{RUN}")
    assert response.status == 200
    assert json.loads(response.data)["parserRunId"] == RUN
    assert emu.requests[-1].api_version == API_VERSION_2025


def test_org_key_needs_workspace_header(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.add_key("sk_org_abc", org_scoped=True)
    missing = call(http, emu, key="sk_org_abc")
    assert missing.status == 400
    body = error_body(missing)
    assert body["code"] == "INVALID_REQUEST"
    assert "x-extend-workspace-id" in body["message"]
    assert emu.exists(RUN, workspace_id=WORKSPACE)

    other = call(http, emu, key="sk_org_abc", headers={"x-extend-workspace-id": "ws_other"})
    assert other.status == 404  # the run lives in ws_1, not ws_other

    ok = call(http, emu, key="sk_org_abc", headers={"x-extend-workspace-id": WORKSPACE})
    assert ok.status == 200
    assert emu.requests[-1].workspace_id == WORKSPACE


def test_workspace_key_cannot_target_another_workspace(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    forbidden = call(http, emu, headers={"x-extend-workspace-id": "ws_other"})
    assert forbidden.status == 403
    body = error_body(forbidden)
    assert (body["code"], body["retryable"]) == ("FORBIDDEN", False)

    same = call(http, emu, headers={"x-extend-workspace-id": WORKSPACE})
    assert same.status == 200


def test_2025_path_under_2026_is_endpoint_removed(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    response = call(http, emu, version=API_VERSION_2026, path=f"/parser_runs/{RUN}")
    assert response.status == 410
    body = error_body(response)
    assert (body["code"], body["retryable"]) == ("ENDPOINT_REMOVED", False)
    assert "/parse_runs/" in body["message"]
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_2026_path_under_2025_and_unknown_routes_are_404(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    for path in (f"/parse_runs/{RUN}", "/parser_runs/", f"/parser_runs/{RUN}/extra", "/nothing"):
        response = call(http, emu, path=path)
        assert response.status == 404, path
        assert error_body(response)["code"] == "NOT_FOUND"
    assert call(http, emu, method="POST").status == 404
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_get_returns_the_run_or_404(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    found = call(http, emu, RUN_2026, method="GET", version=API_VERSION_2026)
    assert found.status == 200
    assert json.loads(found.data)["id"] == RUN_2026
    legacy = call(http, emu, RUN, method="GET")
    assert json.loads(legacy.data)["parserRun"]["id"] == RUN
    assert call(http, emu, "parser_run_missing", method="GET").status == 404


def test_every_response_has_a_unique_request_id(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    responses = [call(http, emu), call(http, emu), call(http, emu, key="sk_nope")]
    ids = [r.headers["x-extend-request-id"] for r in responses]
    assert len(set(ids)) == 3
    assert all(len(i) == 24 and i.startswith("req_") and i[4:].isalnum() for i in ids)
    assert [r.request_id for r in emu.requests] == ids


def test_percent_encoded_id_is_decoded(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    odd = "run with space/slash?and%percent-ü"
    emu.seed([odd], workspace_id=WORKSPACE)
    response = call(http, emu, odd)
    assert response.status == 200
    assert json.loads(response.data)["parserRunId"] == odd
    assert emu.requests[-1].parser_run_id == odd
    assert not emu.exists(odd, workspace_id=WORKSPACE)


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[ExtendEmulator]:
    with ExtendEmulator() as emulator:
        emulator.add_key(KEY, workspace_id=WORKSPACE)
        yield emulator


@pytest.fixture(scope="module")
def shared_http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=2.0)
    yield pool
    pool.clear()


@settings(max_examples=60, deadline=None)
@given(
    run_id=st.text(min_size=1, max_size=40).filter(lambda s: s not in {".", ".."}),
    version=st.sampled_from([API_VERSION_2025, API_VERSION_2026]),
)
def test_any_id_round_trips_through_percent_encoding(
    shared_emu: ExtendEmulator, shared_http: urllib3.PoolManager, run_id: str, version: str
) -> None:
    shared_emu.seed([run_id], workspace_id=WORKSPACE)
    response = call(shared_http, shared_emu, run_id, version=version)
    assert response.status == 200
    body = json.loads(response.data)
    assert (body["id"] if version == API_VERSION_2026 else body["parserRunId"]) == run_id
    assert not shared_emu.exists(run_id, workspace_id=WORKSPACE)


def test_recorded_requests_and_stats(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    before = time.monotonic()
    call(http, emu)
    call(http, emu)
    call(http, emu, key=None)
    records = emu.requests
    assert [r.status for r in records] == [200, 404, 401]
    first = records[0]
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.parser_run_id, first.fault) == (
        "DELETE",
        f"/parser_runs/{RUN}",
        RUN,
        None,
    )
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["x-extend-api-version"] == API_VERSION_2025
    assert before <= first.timestamp <= records[1].timestamp
    assert emu.requests_for(RUN) == records[:2]
    assert emu.stats() == {"200": 1, "404": 1, "401": 1}
    emu.reset_stats()
    assert emu.stats() == {}
    assert emu.requests == []


def test_concurrent_deletes_delete_each_run_once(emu: ExtendEmulator) -> None:
    ids = [f"parser_run_c{i}" for i in range(200)]
    emu.seed(ids, workspace_id=WORKSPACE)
    pool = urllib3.PoolManager(maxsize=8, retries=False, timeout=5.0)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        for run_id in chunk * 2:  # every id twice: exactly one 200 and one 404 per id
            status = call(pool, emu, run_id).status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker, args=(ids[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.clear()
    assert statuses.count(200) == 200
    assert statuses.count(404) == 200
    assert not any(emu.exists(i, workspace_id=WORKSPACE) for i in ids)


# --------------------------------------------------------------------------- the official SDK (2026-02-09)


def sdk(emu: ExtendEmulator, key: str = KEY) -> Extend:
    return Extend(token=key, base_url=emu.base_url, timeout=3.0)


def test_sdk_deletes_and_gets_the_id_back(emu: ExtendEmulator) -> None:
    result = sdk(emu).parse_runs.delete(RUN_2026)
    assert result.id == RUN_2026
    record = emu.requests[-1]
    assert (record.method, record.path, record.status) == ("DELETE", f"/parse_runs/{RUN_2026}", 200)
    assert record.headers["x-extend-api-version"] == API_VERSION_2026
    assert not emu.exists(RUN_2026, workspace_id=WORKSPACE)


def test_sdk_org_key_with_workspace(emu: ExtendEmulator) -> None:
    emu.add_key("sk_org_abc", org_scoped=True)
    result = sdk(emu, "sk_org_abc").parse_runs.delete(RUN_2026, extend_workspace_id=WORKSPACE)
    assert result.id == RUN_2026


def test_sdk_missing_run_raises_not_found(emu: ExtendEmulator) -> None:
    with pytest.raises(NotFoundError) as caught:
        sdk(emu).parse_runs.delete("pr_missing")
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "NOT_FOUND"
    assert len(emu.requests) == 1  # the SDK does not retry a 404


def test_sdk_revoked_key_raises_unauthorized(emu: ExtendEmulator) -> None:
    emu.revoke_key(KEY)
    with pytest.raises(UnauthorizedError) as caught:
        sdk(emu).parse_runs.delete(RUN_2026)
    assert caught.value.body["code"] == "UNAUTHORIZED"
    assert emu.exists(RUN_2026, workspace_id=WORKSPACE)


def test_sdk_retries_429_after_retry_after(emu: ExtendEmulator) -> None:
    emu.inject(RUN_2026, Fault.rate_limited(retry_after=1))
    result = sdk(emu).parse_runs.delete(RUN_2026)
    assert result.id == RUN_2026
    records = emu.requests_for(RUN_2026)
    assert [r.status for r in records] == [429, 200]
    assert records[1].timestamp - records[0].timestamp >= 1.0  # the SDK waited Retry-After


# --------------------------------------------------------------------------- faults


def test_scripted_faults_apply_in_order_then_normal(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(
        RUN,
        Fault.status(500),
        Fault.status(503),
        Fault.error(400, "INVALID_REQUEST", "nope", retryable=False),
        Fault.error(409, "CUSTOM", retryable=True),
    )
    assert len(emu.pending_faults(RUN)) == 4
    responses = [call(http, emu) for _ in range(5)]
    assert [r.status for r in responses] == [500, 503, 400, 409, 200]
    bodies = [error_body(r) for r in responses[:4]]
    assert [(b["code"], b["retryable"]) for b in bodies] == [
        ("INTERNAL_ERROR", True),
        ("SERVICE_UNAVAILABLE", True),
        ("INVALID_REQUEST", False),
        ("CUSTOM", True),
    ]
    assert bodies[2]["message"] == "nope"
    assert [r.fault for r in emu.requests] == [
        "status:500",
        "status:503",
        "error:400:INVALID_REQUEST",
        "error:409:CUSTOM",
        None,
    ]
    assert emu.pending_faults(RUN) == []
    assert not emu.exists(RUN, workspace_id=WORKSPACE)


def test_faults_only_consumed_by_their_id_and_after_auth(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(RUN, Fault.status(500))
    assert call(http, emu, RUN_2026).status == 200
    assert call(http, emu, key="sk_bad").status == 401  # rejected before the fault stage
    assert call(http, emu).status == 500
    assert call(http, emu).status == 200


def test_rate_limited_fault_retry_after_forms(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(
        RUN,
        Fault.rate_limited(retry_after=1),
        Fault.rate_limited(retry_after=None),
        Fault.rate_limited(retry_after=3, retry_after_http_date=True),
    )
    seconds, absent, dated = (call(http, emu) for _ in range(3))
    for response in (seconds, absent, dated):
        assert response.status == 429
        body = error_body(response)
        assert (body["code"], body["retryable"]) == ("RATE_LIMIT_EXCEEDED", True)
    assert seconds.headers["Retry-After"] == "1"
    assert "Retry-After" not in absent.headers
    when = email.utils.parsedate_to_datetime(dated.headers["Retry-After"])
    assert when > datetime.now(UTC)
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_reset_fault_drops_the_connection(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(RUN, Fault.reset())
    with pytest.raises(ProtocolError) as caught:
        call(http, emu)
    assert isinstance(caught.value.args[1], ConnectionResetError)
    assert emu.exists(RUN, workspace_id=WORKSPACE)
    assert emu.requests[-1].status is None
    assert emu.requests[-1].fault == "reset"
    assert emu.stats() == {"reset": 1}
    assert call(http, emu).status == 200  # the script is used up: normal again


def test_stall_fault_exceeds_a_short_read_timeout(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(RUN, Fault.stall(5.0))
    with pytest.raises(ReadTimeoutError):
        call(http, emu, timeout=urllib3.Timeout(connect=1.0, read=0.2))


# A delay is shown by a client that gives up before it ends (its read timeout), never by timing the call.
IMPATIENT = urllib3.Timeout(connect=1.0, read=0.1)


def test_latency_fault_delays_one_request(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(RUN, Fault.latency(2.0), Fault.latency(0.3))
    with pytest.raises(ReadTimeoutError):  # the first: a client that waits less gives up
        call(http, emu, timeout=IMPATIENT)
    response = call(http, emu)  # the second: a patient client gets the normal answer
    assert response.status == 200  # a latency fault then behaves normally
    assert emu.requests[-1].fault == "latency"


def test_global_latency_applies_to_every_request(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.latency_s = 2.0
    for _ in range(2):
        with pytest.raises(ReadTimeoutError):
            call(http, emu, key=None, timeout=IMPATIENT)  # even rejected requests wait
    emu.latency_s = 0.0
    assert call(http, emu, key=None, timeout=IMPATIENT).status == 401


def test_latency_set_in_constructor(http: urllib3.PoolManager) -> None:
    with ExtendEmulator(latency_s=2.0) as emulator, pytest.raises(ReadTimeoutError):
        call(http, emulator, timeout=IMPATIENT)


def test_non_json_fault(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.inject(RUN, Fault.non_json(502))
    response = call(http, emu)
    assert response.status == 502
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.data)
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_rate_limit_rejects_bursts_over_the_limit(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.rate_limit_rps = 5
    responses = [call(http, emu, f"parser_run_{i}") for i in range(15)]
    statuses = [r.status for r in responses]
    assert statuses[0] == 404  # within the burst: normal behaviour
    limited = [r for r in responses if r.status == 429]
    assert limited, statuses
    for response in limited:
        assert int(response.headers["Retry-After"]) >= 1
        assert error_body(response)["code"] == "RATE_LIMIT_EXCEEDED"
    assert all(r.fault == "rate_limit" for r in emu.requests if r.status == 429)

    emu.rate_limit_retry_after = False
    emu.rate_limit_rps = 1
    call(http, emu)
    without_header = call(http, emu)
    assert without_header.status == 429
    assert "Retry-After" not in without_header.headers


def test_rate_limit_allows_traffic_under_the_limit(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.rate_limit_rps = 1000
    statuses = [call(http, emu, f"parser_run_{i}").status for i in range(20)]
    assert 429 not in statuses
    emu.rate_limit_rps = None
    assert emu.rate_limit_rps is None


def _random_run(emu: ExtendEmulator, http: urllib3.PoolManager, seed: int) -> list[int]:
    emu.inject_random(0.5, [Fault.status(500), Fault.status(503)], seed=seed)
    return [call(http, emu, f"parser_run_{i}").status for i in range(40)]


def test_inject_random_is_deterministic_per_seed(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    first = _random_run(emu, http, seed=1)
    again = _random_run(emu, http, seed=1)
    other = _random_run(emu, http, seed=2)
    assert first == again
    assert first != other
    assert {500, 503, 404} <= set(first)
    emu.clear_faults()
    assert {call(http, emu, f"parser_run_{i}").status for i in range(20)} == {404}


def test_unreachable_resets_new_and_kept_alive_connections(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    assert call(http, emu, "warm_up").status == 404  # leaves a kept-alive connection in the pool
    emu.set_unreachable(True)
    with pytest.raises(ProtocolError):
        call(http, emu)  # the kept-alive connection
    with pytest.raises((ProtocolError, NewConnectionError)):
        call(http, emu)  # a new connection: the RST may arrive before or after the request is sent
    assert emu.stats()["unreachable"] >= 2
    assert emu.exists(RUN, workspace_id=WORKSPACE)
    emu.set_unreachable(False)
    assert call(http, emu).status == 200


def test_stop_closes_kept_alive_connections_and_the_port() -> None:
    emulator = ExtendEmulator().start()
    port = emulator.port
    client = socket.create_connection(("127.0.0.1", port), timeout=2)
    client.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    response = b""
    while not response.endswith(b"}"):
        response += client.recv(4096)
    assert response.startswith(b"HTTP/1.1 401 ")
    emulator.stop()
    assert client.recv(100) == b""  # the server closed the kept-alive connection
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    emulator.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = emulator.base_url


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault.status(200)
    with pytest.raises(ValueError):
        Fault.error(302, "REDIRECT")
    with pytest.raises(ValueError):
        ExtendEmulator(rate_limit_rps=0)
    with pytest.raises(ValueError):
        ExtendEmulator().inject_random(1.5, [Fault.reset()])
    assert Fault.non_json(504).name == "non_json:504"


def test_sdk_reads_a_runs_metadata(emu: ExtendEmulator) -> None:
    # Given a run created with custom metadata (2026-02-09), and one without
    emu.seed(["pr_meta"], workspace_id=WORKSPACE, metadata={"tenant": "acme", "ticket": 42})
    # When the official SDK retrieves them, then it parses the metadata where Extend puts it
    run = sdk(emu).parse_runs.retrieve("pr_meta")
    assert (run.id, run.object, run.metadata) == ("pr_meta", "parse_run", {"tenant": "acme", "ticket": 42})
    assert sdk(emu).parse_runs.retrieve(RUN_2026).metadata is None
    assert emu.exists("pr_meta", workspace_id=WORKSPACE)  # a GET deletes nothing


def test_sdk_org_key_sees_only_the_named_workspaces_runs(emu: ExtendEmulator) -> None:
    # Given runs in two workspaces and an organization-scoped key
    emu.seed(["pr_in_b"], workspace_id="ws_b")
    emu.add_key("sk_org_ws", org_scoped=True)
    client = sdk(emu, "sk_org_ws")
    # When it names workspace A, then workspace B's run does not exist for it, exactly like a missing one
    for run_id in ("pr_in_b", "pr_nowhere"):
        with pytest.raises(NotFoundError) as caught:
            client.parse_runs.delete(run_id, extend_workspace_id=WORKSPACE)
        assert caught.value.body["code"] == "NOT_FOUND"
    assert emu.exists("pr_in_b", workspace_id="ws_b")
    # and naming workspace B, it deletes it
    assert client.parse_runs.delete("pr_in_b", extend_workspace_id="ws_b").id == "pr_in_b"


# --------------------------------------------------------------------------- every deletable resource type

FILE = "file_xK9mLPqRtN3vS8wF5hB2cQ"

# (resource given to seed, the path's segment, the 2026-02-09 "object", an id in Extend's style)
RESOURCES_2026 = [
    ("parse_runs", "parse_runs", "parse_run", "pr_typed"),
    ("extract_runs", "extract_runs", "extract_run", "exr_typed"),
    ("classify_runs", "classify_runs", "classify_run", "clr_typed"),
    ("split_runs", "split_runs", "split_run", "splr_typed"),
    ("edit_runs", "edit_runs", "edit_run", "edr_typed"),
    ("workflow_runs", "workflow_runs", "workflow_run", "workflow_run_typed"),
    ("files", "files", "file", "file_typed"),
]
# (resource given to seed, the path's segment, the GET envelope's key, its "object", the DELETE body)
RESOURCES_2025 = [
    (
        "parser_runs",
        "parser_runs",
        "parserRun",
        "parser_run",
        {"success": True, "parserRunId": "dpr_typed", "message": "Parser run data has been successfully deleted."},
    ),
    (
        "processor_runs",
        "processor_runs",
        "processorRun",
        "document_processor_run",
        {
            "success": True,
            "documentProcessorRunId": "dpr_typed",
            "message": "Processor run data has been successfully deleted.",
        },
    ),
    (
        "workflow_runs",
        "workflow_runs",
        "workflowRun",
        "workflow_run",
        {"success": True, "id": "dpr_typed", "message": "Workflow run data has been successfully deleted."},
    ),
    (
        "files",
        "files",
        "file",
        "file",
        {"success": True, "id": "dpr_typed", "message": "File data has been successfully deleted."},
    ),
]
NOUNS = {
    "parse_runs": "Parse run",
    "parser_runs": "Parser run",
    "extract_runs": "Extract run",
    "classify_runs": "Classify run",
    "split_runs": "Split run",
    "edit_runs": "Edit run",
    "workflow_runs": "Workflow run",
    "processor_runs": "Processor run",
    "files": "File",
}
# The run types with POST /{resource}/{id}/cancel, per version (not edit runs, not files).
CANCELLABLE = [
    (API_VERSION_2026, "parse_runs", "parse_runs"),
    (API_VERSION_2026, "extract_runs", "extract_runs"),
    (API_VERSION_2026, "classify_runs", "classify_runs"),
    (API_VERSION_2026, "split_runs", "split_runs"),
    (API_VERSION_2026, "workflow_runs", "workflow_runs"),
    (API_VERSION_2025, "parser_runs", "parser_runs"),
    (API_VERSION_2025, "processor_runs", "processor_runs"),
    (API_VERSION_2025, "workflow_runs", "workflow_runs"),
]


def at(
    http: urllib3.PoolManager,
    emu: ExtendEmulator,
    segment: str,
    object_id: str,
    *,
    method: str = "DELETE",
    version: str = API_VERSION_2026,
    cancel: bool = False,
) -> urllib3.BaseHTTPResponse:
    """A request to ``/{segment}/{id}`` (``.../cancel`` with ``cancel``), POST for a cancel."""
    path = f"/{segment}/{quote(object_id, safe='')}" + ("/cancel" if cancel else "")
    return call(http, emu, method="POST" if cancel else method, version=version, path=path)


@pytest.mark.parametrize(("resource", "segment", "object_name", "object_id"), RESOURCES_2026, ids=str)
def test_each_2026_resource_is_read_then_deleted_then_gone(
    emu: ExtendEmulator, http: urllib3.PoolManager, resource: str, segment: str, object_name: str, object_id: str
) -> None:
    emu.seed([object_id], workspace_id=WORKSPACE, resource=resource)
    assert emu.resource_of(object_id, workspace_id=WORKSPACE) == resource

    read = at(http, emu, segment, object_id, method="GET")
    assert read.status == 200
    expected: dict[str, Any] = {"object": object_name, "id": object_id}
    expected.update({"name": f"{object_id}.pdf"} if resource == "files" else {"status": "PROCESSED"})
    assert json.loads(read.data) == expected

    deleted = at(http, emu, segment, object_id)
    assert deleted.status == 200
    assert json.loads(deleted.data) == {"id": object_id}
    assert not emu.exists(object_id, workspace_id=WORKSPACE)
    assert emu.resource_of(object_id, workspace_id=WORKSPACE) is None

    again = at(http, emu, segment, object_id)
    assert again.status == 404
    body = error_body(again)
    assert (body["code"], body["retryable"]) == ("NOT_FOUND", False)
    assert body["message"] == f"{NOUNS[resource]} '{object_id}' not found."
    records = emu.requests_for(object_id)
    assert [(r.method, r.resource, r.status) for r in records] == [
        ("GET", segment, 200),
        ("DELETE", segment, 200),
        ("DELETE", segment, 404),
    ]


@pytest.mark.parametrize(
    ("resource", "segment", "envelope", "object_name", "deleted_body"), RESOURCES_2025, ids=lambda v: str(v)[:14]
)
def test_each_2025_resource_is_read_then_deleted_then_gone(
    emu: ExtendEmulator,
    http: urllib3.PoolManager,
    resource: str,
    segment: str,
    envelope: str,
    object_name: str,
    deleted_body: dict[str, Any],
) -> None:
    object_id = "dpr_typed"
    emu.seed([object_id], workspace_id=WORKSPACE, resource=resource)

    read = at(http, emu, segment, object_id, method="GET", version=API_VERSION_2025)
    assert read.status == 200
    inner: dict[str, Any] = {"object": object_name, "id": object_id}
    inner.update({"name": f"{object_id}.pdf"} if resource == "files" else {"status": "PROCESSED"})
    assert json.loads(read.data) == {"success": True, envelope: inner}

    deleted = at(http, emu, segment, object_id, version=API_VERSION_2025)
    assert deleted.status == 200
    assert json.loads(deleted.data) == deleted_body
    assert not emu.exists(object_id, workspace_id=WORKSPACE)

    again = at(http, emu, segment, object_id, version=API_VERSION_2025)
    assert again.status == 404
    assert error_body(again)["message"] == f"{NOUNS[resource]} '{object_id}' not found."
    assert emu.requests[-1].resource == segment
    assert emu.requests[-1].parser_run_id == object_id


def test_an_id_on_another_types_path_is_not_found(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.seed(["exr_1"], workspace_id=WORKSPACE, resource="extract_runs")
    for segment, object_id in [("parse_runs", FILE), ("extract_runs", FILE), ("files", "exr_1"), ("files", RUN_2026)]:
        for method in ("GET", "DELETE"):
            response = at(http, emu, segment, object_id, method=method)
            assert response.status == 404, (segment, object_id, method)
            body = error_body(response)
            assert body["code"] == "NOT_FOUND"
            assert body["message"] == f"{NOUNS[segment]} '{object_id}' not found."
    assert at(http, emu, "processor_runs", FILE, version=API_VERSION_2025).status == 404
    assert [emu.resource_of(i, workspace_id=WORKSPACE) for i in (FILE, "exr_1", RUN_2026)] == [
        "files",
        "extract_runs",
        "parse_runs",
    ]


def test_either_parse_run_name_seeds_the_version_neutral_parse_run(
    emu: ExtendEmulator, http: urllib3.PoolManager
) -> None:
    emu.seed(["pr_by_new_name"], workspace_id=WORKSPACE, resource="parse_runs")
    emu.seed(["pr_by_old_name"], workspace_id=WORKSPACE, resource="parser_runs")
    for object_id in ("pr_by_new_name", "pr_by_old_name"):
        assert emu.resource_of(object_id, workspace_id=WORKSPACE) == "parse_runs"
        assert at(http, emu, "parser_runs", object_id, method="GET", version=API_VERSION_2025).status == 200
        assert at(http, emu, "parse_runs", object_id, method="GET", version=API_VERSION_2026).status == 200


def test_2026_only_paths_under_2025_have_no_route(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed(["exr_1"], workspace_id=WORKSPACE, resource="extract_runs")
    for segment in ("extract_runs", "classify_runs", "split_runs", "edit_runs", "parse_runs"):
        response = at(http, emu, segment, "exr_1", version=API_VERSION_2025)
        assert response.status == 404, segment
        assert error_body(response)["message"].startswith("No route for DELETE")
        assert emu.requests[-1].resource == segment
    assert emu.exists("exr_1", workspace_id=WORKSPACE)


def test_paths_with_a_trailing_slash_or_extra_segments_have_no_route(
    emu: ExtendEmulator, http: urllib3.PoolManager
) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.seed(["exr_live"], workspace_id=WORKSPACE, resource="extract_runs", status="PROCESSING")
    for method, path in [
        ("DELETE", f"/files/{FILE}/"),
        ("DELETE", f"/files/{FILE}/extra"),
        ("DELETE", "/files/"),
        ("POST", "/extract_runs/exr_live/cancel/"),
        ("POST", "/extract_runs/exr_live/cancel/more"),
        ("POST", "/extract_runs//cancel"),
    ]:
        response = call(http, emu, method=method, version=API_VERSION_2026, path=path)
        assert response.status == 404, path
        assert error_body(response)["message"].startswith("No route"), path
    assert emu.exists(FILE, workspace_id=WORKSPACE)
    assert emu.status_of("exr_live", workspace_id=WORKSPACE) == "PROCESSING"


@pytest.mark.parametrize(
    ("method", "path", "replacement"),
    [
        ("DELETE", "/processor_runs/dpr_1", "Use DELETE /extract_runs/{id} instead."),
        ("GET", "/processor_runs/dpr_1", "Use GET /extract_runs/{id} instead."),
        ("DELETE", "/parser_runs/dpr_1", "Use DELETE /parse_runs/{id} instead."),
        ("POST", "/processor_runs/dpr_1/cancel", "Use POST /extract_runs/{id}/cancel instead."),
    ],
)
def test_paths_removed_in_2026_are_endpoint_removed_naming_the_replacement(
    emu: ExtendEmulator, http: urllib3.PoolManager, method: str, path: str, replacement: str
) -> None:
    emu.seed(["dpr_1"], workspace_id=WORKSPACE, resource="processor_runs", status="PROCESSING")
    response = call(http, emu, method=method, version=API_VERSION_2026, path=path)
    assert response.status == 410
    body = error_body(response)
    assert (body["code"], body["retryable"]) == ("ENDPOINT_REMOVED", False)
    assert body["message"].endswith(replacement)
    assert emu.status_of("dpr_1", workspace_id=WORKSPACE) == "PROCESSING"
    assert emu.requests[-1].resource == path.split("/")[1]


@pytest.mark.parametrize("resource", ["parse_runs", "extract_runs", "classify_runs", "split_runs", "edit_runs"])
def test_a_runs_read_names_its_file_and_metadata(emu: ExtendEmulator, http: urllib3.PoolManager, resource: str) -> None:
    emu.seed(["run_1"], workspace_id=WORKSPACE, resource=resource, file_id=FILE, metadata={"tenant": "acme"})
    emu.seed(["run_bare"], workspace_id=WORKSPACE, resource=resource)
    body = json.loads(at(http, emu, resource, "run_1", method="GET").data)
    assert body["file"] == {"object": "file", "id": FILE}
    assert body["metadata"] == {"tenant": "acme"}
    bare = json.loads(at(http, emu, resource, "run_bare", method="GET").data)
    assert "file" not in bare
    assert "metadata" not in bare


def test_a_workflow_runs_read_lists_its_file_too(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed(["workflow_run_1"], workspace_id=WORKSPACE, resource="workflow_runs", file_id=FILE)
    body = json.loads(at(http, emu, "workflow_runs", "workflow_run_1", method="GET").data)
    assert body["file"] == {"object": "file", "id": FILE}
    assert body["files"] == [{"object": "file", "id": FILE}]


@pytest.mark.parametrize(
    ("resource", "envelope"),
    [("parser_runs", "parserRun"), ("processor_runs", "processorRun"), ("workflow_runs", "workflowRun")],
)
def test_a_2025_runs_read_names_its_file_inside_the_envelope(
    emu: ExtendEmulator, http: urllib3.PoolManager, resource: str, envelope: str
) -> None:
    emu.seed(["run_1"], workspace_id=WORKSPACE, resource=resource, file_id=FILE, status="FAILED")
    body = json.loads(at(http, emu, resource, "run_1", method="GET", version=API_VERSION_2025).data)
    assert body["success"] is True
    assert body[envelope]["file"] == {"object": "file", "id": FILE}
    assert body[envelope]["status"] == "FAILED"


def test_a_files_read_carries_metadata_only_when_seeded_with_it(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE, metadata={"tenant": "acme"})
    emu.seed_file("file_bare", workspace_id=WORKSPACE)
    tagged = json.loads(at(http, emu, "files", FILE, method="GET").data)
    assert tagged == {"object": "file", "id": FILE, "name": f"{FILE}.pdf", "metadata": {"tenant": "acme"}}
    bare = json.loads(at(http, emu, "files", "file_bare", method="GET").data)
    assert "metadata" not in bare
    legacy = json.loads(at(http, emu, "files", FILE, method="GET", version=API_VERSION_2025).data)
    assert legacy == {"success": True, "file": tagged}


@pytest.mark.parametrize(("version", "resource", "segment"), CANCELLABLE, ids=str)
def test_cancel_a_processing_run_then_a_second_cancel_is_400(
    emu: ExtendEmulator, http: urllib3.PoolManager, version: str, resource: str, segment: str
) -> None:
    emu.seed(["run_live"], workspace_id=WORKSPACE, resource=resource, status="PROCESSING", file_id=FILE)
    cancelled = at(http, emu, segment, "run_live", version=version, cancel=True)
    assert cancelled.status == 200
    read = at(http, emu, segment, "run_live", method="GET", version=version)
    assert json.loads(cancelled.data) == json.loads(read.data)  # the cancel answers the run, as a GET does
    body = json.loads(read.data)
    run = body if version == API_VERSION_2026 else next(v for v in body.values() if isinstance(v, dict))
    assert (run["id"], run["status"], run["file"]["id"]) == ("run_live", "CANCELLED", FILE)
    assert emu.status_of("run_live", workspace_id=WORKSPACE) == "CANCELLED"

    again = at(http, emu, segment, "run_live", version=version, cancel=True)
    assert again.status == 400
    error = error_body(again)
    assert (error["code"], error["retryable"]) == ("INVALID_REQUEST", False)
    assert "is not processing" in error["message"]
    assert emu.exists("run_live", workspace_id=WORKSPACE)  # a cancel deletes nothing
    assert [(r.method, r.resource) for r in emu.requests_for("run_live")][::2] == [("POST", segment)] * 2


def test_cancel_a_pending_run(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed(["exr_queued"], workspace_id=WORKSPACE, resource="extract_runs", status="PENDING")
    response = at(http, emu, "extract_runs", "exr_queued", cancel=True)
    assert response.status == 200
    assert json.loads(response.data)["status"] == "CANCELLED"


@pytest.mark.parametrize("status", ["PROCESSED", "FAILED", "CANCELLED", "NEEDS_REVIEW"])
def test_cancel_a_run_that_is_not_processing_is_400(
    emu: ExtendEmulator, http: urllib3.PoolManager, status: str
) -> None:
    emu.seed(["workflow_run_done"], workspace_id=WORKSPACE, resource="workflow_runs", status=status)
    response = at(http, emu, "workflow_runs", "workflow_run_done", cancel=True)
    assert response.status == 400
    body = error_body(response)
    assert body["code"] == "INVALID_REQUEST"
    assert "is not processing" in body["message"]
    assert emu.status_of("workflow_run_done", workspace_id=WORKSPACE) == status


def test_cancel_of_a_missing_run_is_404_and_edit_runs_and_files_have_no_cancel(
    emu: ExtendEmulator, http: urllib3.PoolManager
) -> None:
    missing = at(http, emu, "split_runs", "splr_missing", cancel=True)
    assert missing.status == 404
    assert error_body(missing)["message"] == "Split run 'splr_missing' not found."

    emu.seed(["edr_live"], workspace_id=WORKSPACE, resource="edit_runs", status="PROCESSING")
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    for segment, object_id in [("edit_runs", "edr_live"), ("files", FILE)]:
        response = at(http, emu, segment, object_id, cancel=True)
        assert response.status == 404, segment
        assert error_body(response)["message"].startswith("No route for POST")
    assert emu.status_of("edr_live", workspace_id=WORKSPACE) == "PROCESSING"
    # A cancel is a POST; any other method on the cancel path has no route.
    emu.seed(["exr_live"], workspace_id=WORKSPACE, resource="extract_runs", status="PROCESSING")
    for method in ("GET", "DELETE"):
        assert (
            call(http, emu, method=method, version=API_VERSION_2026, path="/extract_runs/exr_live/cancel").status == 404
        )
    assert emu.status_of("exr_live", workspace_id=WORKSPACE) == "PROCESSING"


def test_a_processing_run_is_deleted_by_default(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    assert emu.processing_delete == "allow"
    emu.seed(["clr_live"], workspace_id=WORKSPACE, resource="classify_runs", status="PROCESSING")
    assert at(http, emu, "classify_runs", "clr_live").status == 200
    assert not emu.exists("clr_live", workspace_id=WORKSPACE)


def test_processing_delete_refuse_is_409_until_the_run_is_cancelled(http: urllib3.PoolManager) -> None:
    with ExtendEmulator(processing_delete="refuse") as emulator:
        emulator.add_key(KEY, workspace_id=WORKSPACE)
        emulator.seed(["exr_live"], workspace_id=WORKSPACE, resource="extract_runs", status="PROCESSING")
        emulator.seed(["dpr_queued"], workspace_id=WORKSPACE, resource="processor_runs", status="PENDING")
        emulator.seed(["exr_done"], workspace_id=WORKSPACE, resource="extract_runs")

        refused = at(http, emulator, "extract_runs", "exr_live")
        assert refused.status == 409
        body = error_body(refused)
        assert (body["code"], body["retryable"]) == ("CONFLICT", False)
        assert body["message"] == "cannot delete a run that is still processing; cancel it first"
        assert emulator.exists("exr_live", workspace_id=WORKSPACE)
        assert at(http, emulator, "processor_runs", "dpr_queued", version=API_VERSION_2025).status == 409
        assert at(http, emulator, "extract_runs", "exr_done").status == 200  # a finished run is deleted

        assert at(http, emulator, "extract_runs", "exr_live", cancel=True).status == 200
        assert at(http, emulator, "extract_runs", "exr_live").status == 200
        assert not emulator.exists("exr_live", workspace_id=WORKSPACE)

        emulator.processing_delete = "allow"  # the choice is an attribute too
        assert at(http, emulator, "processor_runs", "dpr_queued", version=API_VERSION_2025).status == 200
        assert emulator.server_errors == []


def test_refuse_applies_to_runs_not_files(http: urllib3.PoolManager) -> None:
    with ExtendEmulator(processing_delete="refuse") as emulator:
        emulator.add_key(KEY, workspace_id=WORKSPACE)
        emulator.seed([FILE], workspace_id=WORKSPACE, resource="files", status="PROCESSING")
        assert at(http, emulator, "files", FILE).status == 200


def test_deleting_a_run_keeps_its_file_and_deleting_a_file_keeps_its_runs(
    emu: ExtendEmulator, http: urllib3.PoolManager
) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.seed(["pr_of_file"], workspace_id=WORKSPACE, file_id=FILE)
    emu.seed(["exr_of_file"], workspace_id=WORKSPACE, resource="extract_runs", file_id=FILE)

    assert at(http, emu, "parse_runs", "pr_of_file").status == 200
    assert emu.exists(FILE, workspace_id=WORKSPACE)
    assert at(http, emu, "files", FILE, method="GET").status == 200

    assert at(http, emu, "files", FILE).status == 200
    assert not emu.exists(FILE, workspace_id=WORKSPACE)
    assert emu.exists("exr_of_file", workspace_id=WORKSPACE)
    run = json.loads(at(http, emu, "extract_runs", "exr_of_file", method="GET").data)
    assert run["file"]["id"] == FILE  # the run still names the file it was made from, now gone
    assert at(http, emu, "files", FILE, method="GET").status == 404


def test_objects_of_every_type_stay_in_their_workspace(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed_file(FILE, workspace_id="ws_other")
    assert at(http, emu, "files", FILE).status == 404
    assert emu.exists(FILE, workspace_id="ws_other")
    assert not emu.exists(FILE, workspace_id=WORKSPACE)
    assert emu.resource_of(FILE, workspace_id="ws_other") == "files"
    assert emu.resource_of(FILE, workspace_id=WORKSPACE) is None


def test_faults_on_a_file_id_per_method(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.inject(FILE, Fault.status(503))
    emu.inject(FILE, Fault.error(403, "FORBIDDEN", "no"), method="GET")
    read = at(http, emu, "files", FILE, method="GET")
    assert (read.status, error_body(read)["code"]) == (403, "FORBIDDEN")
    assert at(http, emu, "files", FILE, method="GET").status == 200
    failed = at(http, emu, "files", FILE)
    assert (failed.status, error_body(failed)["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert emu.exists(FILE, workspace_id=WORKSPACE)
    assert at(http, emu, "files", FILE).status == 200
    assert [(r.method, r.resource, r.fault) for r in emu.requests_for(FILE)] == [
        ("GET", "files", "error:403:FORBIDDEN"),
        ("GET", "files", None),
        ("DELETE", "files", "status:503"),
        ("DELETE", "files", None),
    ]


def test_faults_on_a_cancel(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed(["clr_live"], workspace_id=WORKSPACE, resource="classify_runs", status="PROCESSING")
    emu.inject("clr_live", Fault.status(500), Fault.answer_lost(), method="POST")
    assert emu.pending_faults("clr_live") == []  # the DELETE script is apart
    failed = at(http, emu, "classify_runs", "clr_live", cancel=True)
    assert failed.status == 500
    assert emu.status_of("clr_live", workspace_id=WORKSPACE) == "PROCESSING"
    with pytest.raises(ProtocolError):
        at(http, emu, "classify_runs", "clr_live", cancel=True)
    assert emu.status_of("clr_live", workspace_id=WORKSPACE) == "CANCELLED"  # done, though the answer was lost
    assert [r.fault for r in emu.requests_for("clr_live")] == ["status:500", "answer_lost"]
    assert at(http, emu, "classify_runs", "clr_live", cancel=True).status == 400


def test_random_faults_hit_deletes_of_every_type_but_not_reads_or_cancels(
    emu: ExtendEmulator, http: urllib3.PoolManager
) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.seed(["workflow_run_1"], workspace_id=WORKSPACE, resource="workflow_runs", status="PROCESSING")
    emu.inject_random(1.0, [Fault.status(502)])
    assert at(http, emu, "files", FILE, method="GET").status == 200
    assert at(http, emu, "workflow_runs", "workflow_run_1", cancel=True).status == 200
    assert at(http, emu, "files", FILE).status == 502
    assert at(http, emu, "workflow_runs", "workflow_run_1").status == 502
    assert emu.exists(FILE, workspace_id=WORKSPACE)
    assert emu.exists("workflow_run_1", workspace_id=WORKSPACE)


# A bucket this slow holds one token and gets no other during a test: the second request is always over the limit.
NEARLY_NONE = 0.001


def test_under_2026_reads_have_their_own_bucket(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.seed_file(FILE, workspace_id=WORKSPACE)
    emu.read_rate_limit_rps = NEARLY_NONE
    assert at(http, emu, "files", FILE, method="GET").status == 200
    limited = at(http, emu, "files", FILE, method="GET")
    assert limited.status == 429
    assert error_body(limited)["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(limited.headers["Retry-After"]) >= 1
    assert emu.requests[-1].fault == "rate_limit:read"
    # the writes are not limited by the read bucket, and no write limit is set
    assert [at(http, emu, "files", f"file_{i}").status for i in range(5)] == [404] * 5

    emu.read_rate_limit_rps = None
    emu.rate_limit_rps = NEARLY_NONE
    assert at(http, emu, "files", FILE).status == 200
    write_limited = at(http, emu, "extract_runs", "exr_any", cancel=True)
    assert write_limited.status == 429  # a cancel is a write: it shares the DELETEs' bucket
    assert emu.requests[-1].fault == "rate_limit"
    assert [at(http, emu, "files", FILE, method="GET").status for _ in range(5)] == [404] * 5


def test_under_2025_one_bucket_covers_reads_and_writes(emu: ExtendEmulator, http: urllib3.PoolManager) -> None:
    emu.rate_limit_rps = NEARLY_NONE
    emu.read_rate_limit_rps = 1000  # ignored under 2025-04-21
    assert call(http, emu, method="GET").status == 200
    limited = call(http, emu)
    assert limited.status == 429
    assert emu.requests[-1].fault == "rate_limit"
    assert call(http, emu, method="GET").status == 429
    assert emu.exists(RUN, workspace_id=WORKSPACE)


def test_seed_and_choices_are_validated() -> None:
    emulator = ExtendEmulator()
    with pytest.raises(ValueError, match="unknown resource"):
        emulator.seed(["x"], resource="batch_runs")
    with pytest.raises(ValueError, match="only runs have a file"):
        emulator.seed(["x"], resource="files", file_id=FILE)
    with pytest.raises(ValueError):
        emulator.seed(["x"], status="")
    with pytest.raises(ValueError):
        ExtendEmulator(read_rate_limit_rps=0)
    with pytest.raises(ValueError):
        ExtendEmulator(processing_delete="maybe")  # type: ignore[arg-type]
    assert not emulator.exists("x")


# --------------------------------------------------------------------------- every resource through the official SDK

# (resource, the SDK client's attribute, an id): the SDK (1.20.0) speaks 2026-02-09.
SDK_RESOURCES = [
    ("parse_runs", "parse_runs", "pr_sdk"),
    ("extract_runs", "extract_runs", "exr_sdk"),
    ("classify_runs", "classify_runs", "clr_sdk"),
    ("split_runs", "split_runs", "splr_sdk"),
    ("edit_runs", "edit_runs", "edr_sdk"),
    ("workflow_runs", "workflow_runs", "workflow_run_sdk"),
    ("files", "files", "file_sdk"),
]


@pytest.mark.parametrize(("resource", "attribute", "object_id"), SDK_RESOURCES, ids=str)
def test_sdk_reads_and_deletes_every_2026_type(
    emu: ExtendEmulator, resource: str, attribute: str, object_id: str
) -> None:
    is_file = resource == "files"
    emu.seed(
        [object_id],
        workspace_id=WORKSPACE,
        resource=resource,
        file_id=None if is_file else FILE,
        metadata={"tenant": "acme"},
    )
    client = getattr(sdk(emu), attribute)
    found = client.retrieve(object_id)
    assert found.id == object_id
    if is_file:
        assert (found.object, found.name) == ("file", f"{object_id}.pdf")
    else:
        assert found.status == "PROCESSED"
        assert found.metadata == {"tenant": "acme"}
        source = found.files[0] if resource == "workflow_runs" else found.file
        assert source.id == FILE  # where the SDK's model reads the run's file

    assert client.delete(object_id).id == object_id
    assert not emu.exists(object_id, workspace_id=WORKSPACE)
    with pytest.raises(NotFoundError):
        client.retrieve(object_id)
    assert [(r.method, r.resource, r.status) for r in emu.requests_for(object_id)] == [
        ("GET", resource, 200),
        ("DELETE", resource, 200),
        ("GET", resource, 404),
    ]


@pytest.mark.parametrize(
    ("resource", "object_id"),
    [
        ("parse_runs", "pr_live"),
        ("extract_runs", "exr_live"),
        ("classify_runs", "clr_live"),
        ("split_runs", "splr_live"),
        ("workflow_runs", "workflow_run_live"),
    ],
)
def test_sdk_cancels_a_processing_run_and_not_twice(emu: ExtendEmulator, resource: str, object_id: str) -> None:
    emu.seed([object_id], workspace_id=WORKSPACE, resource=resource, status="PROCESSING")
    client = getattr(sdk(emu), resource)
    result = client.cancel(object_id)
    assert result.id == object_id
    if resource != "parse_runs":  # the SDK's parse-run status enum (1.20.0) has no CANCELLED: it reads it as unknown
        assert result.status == "CANCELLED"
    assert emu.status_of(object_id, workspace_id=WORKSPACE) == "CANCELLED"
    with pytest.raises(BadRequestError) as caught:
        client.cancel(object_id)
    assert caught.value.body["code"] == "INVALID_REQUEST"
    assert [(r.method, r.path, r.status) for r in emu.requests_for(object_id)] == [
        ("POST", f"/{resource}/{object_id}/cancel", 200),
        ("POST", f"/{resource}/{object_id}/cancel", 400),
    ]


def test_sdk_missing_file_raises_not_found(emu: ExtendEmulator) -> None:
    client = sdk(emu)
    with pytest.raises(NotFoundError) as deleting:
        client.files.delete("file_missing")
    assert deleting.value.body["code"] == "NOT_FOUND"
    assert deleting.value.body["message"] == "File 'file_missing' not found."
    with pytest.raises(NotFoundError):
        client.files.retrieve(RUN_2026)  # a parse run's id is no file
    assert [r.status for r in emu.requests] == [404, 404]  # the SDK does not retry a 404


def test_sdk_speaks_2025_for_processor_runs_workflow_runs_and_files(emu: ExtendEmulator) -> None:
    # The SDK sends another version when told to; its legacy processor-run client expects 2025-04-21's envelopes.
    # It has no client for /parser_runs, so 2025-04-21's parse runs are tested over plain HTTP only.
    client = Extend(token=KEY, base_url=emu.base_url, timeout=3.0, extend_api_version=API_VERSION_2025)
    emu.seed(["dpr_1"], workspace_id=WORKSPACE, resource="processor_runs", status="PROCESSING")
    emu.seed(["workflow_run_1"], workspace_id=WORKSPACE, resource="workflow_runs")
    emu.seed_file(FILE, workspace_id=WORKSPACE)

    read = client.processor_run.get("dpr_1")
    assert (read.success, read.processor_run.id, read.processor_run.status) == (True, "dpr_1", "PROCESSING")
    assert client.processor_run.cancel("dpr_1").processor_run.status == "CANCELLED"
    deleted = client.processor_run.delete("dpr_1")
    assert (deleted.success, deleted.document_processor_run_id) == (True, "dpr_1")
    assert client.workflow_runs.delete("workflow_run_1").id == "workflow_run_1"
    assert client.files.delete(FILE).id == FILE
    with pytest.raises(NotFoundError):
        client.processor_run.delete("dpr_1")

    assert {r.headers["x-extend-api-version"] for r in emu.requests} == {API_VERSION_2025}
    assert [r.status for r in emu.requests] == [200, 200, 200, 200, 200, 404]
    assert not any(emu.exists(i, workspace_id=WORKSPACE) for i in ("dpr_1", "workflow_run_1", FILE))
