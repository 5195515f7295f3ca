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
from extend_ai.errors import NotFoundError, UnauthorizedError
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
