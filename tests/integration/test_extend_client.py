"""The Extend client against the emulator: classification, headers, versions, retries, deadlines, rotation."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
import urllib3

from devstack.extend_emulator import ExtendEmulator, Fault
from devstack.moto_stack import put_secret, rotate_secret
from parser_run_deleter.adapters.aws_clients import AwsClients
from parser_run_deleter.adapters.extend_client import USER_AGENT, ExtendClient, parse_retry_after
from parser_run_deleter.adapters.extend_credentials import ExtendCredentials, SecretCredentialsProvider
from parser_run_deleter.adapters.secret_store import SecretsManagerSource
from parser_run_deleter.logic.extend_results import ReadOutcome
from parser_run_deleter.logic.outcomes import Outcome
from parser_run_deleter.shared.extend_resources import Resource
from parser_run_deleter.shared.parser_run_ids import InvalidParserRunId
from parser_run_deleter.shared.rate_limiter import AdaptiveRateLimiter
from parser_run_deleter.shared.settings import ExtendSettings
from parser_run_deleter.shared.time_budget import Deadline
from tests.support.secret_guard import new_api_key

WORKSPACE = "ws_test"


class StaticCredentials:
    def __init__(self, *keys: str, workspace_id: str | None = None) -> None:
        self.keys = list(keys)
        self.workspace_id = workspace_id
        self.refreshes = 0

    def current(self, deadline: object = None) -> ExtendCredentials:
        return ExtendCredentials(self.keys[0], self.workspace_id)

    def refresh(self, stale: ExtendCredentials, deadline: object = None) -> ExtendCredentials:
        self.refreshes += 1
        if len(self.keys) > 1:
            self.keys.pop(0)
        return self.current()


def make_client(
    extend: ExtendEmulator, credentials: StaticCredentials, *, sleeps: list[float] | None = None, **overrides: object
) -> ExtendClient:
    options: dict[str, object] = {
        "extend_api_key_secret_id": "unused",
        "extend_api_base_url": overrides.pop("extend_api_base_url", None) or extend.base_url,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.02,
        "read_timeout_s": 2.0,
    }
    options.update(overrides)
    settings = ExtendSettings(**options)  # type: ignore[arg-type]
    recorded = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(min(seconds, 0.05))  # real waits, shortened: the emulator's clock is not ours to skip

    return ExtendClient(settings, credentials, AdaptiveRateLimiter(1000), sleep=sleep)


@pytest.fixture
def key(extend: ExtendEmulator) -> str:
    api_key = new_api_key()
    extend.add_key(api_key, workspace_id=WORKSPACE)
    return api_key


def test_deletes_with_the_documented_headers(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["parser_run_1"], workspace_id=WORKSPACE)
    client = make_client(extend, StaticCredentials(key))
    result = client.delete("parser_run_1", Deadline.after(10))
    assert result.outcome is Outcome.DELETED
    assert (result.status_code, result.attempts) == (200, 1)
    assert result.extend_request_id and result.extend_request_id.startswith("req_")
    assert not extend.exists("parser_run_1", workspace_id=WORKSPACE)
    request = extend.requests[-1]
    assert request.method == "DELETE"
    assert request.path == "/parser_runs/parser_run_1"
    assert request.headers["authorization"] == f"Bearer {key}"
    assert request.headers["x-extend-api-version"] == "2025-04-21"
    assert request.headers["user-agent"] == USER_AGENT
    assert "x-extend-workspace-id" not in request.headers


def test_new_api_version_uses_parse_runs(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_2"], workspace_id=WORKSPACE)
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    result = client.delete("pr_2", Deadline.after(10))
    assert result.outcome is Outcome.DELETED
    assert extend.requests[-1].path == "/parse_runs/pr_2"
    assert extend.requests[-1].headers["x-extend-api-version"] == "2026-02-09"


def test_missing_run_is_not_found_without_retry(extend: ExtendEmulator, key: str) -> None:
    result = make_client(extend, StaticCredentials(key)).delete("pr_absent", Deadline.after(10))
    assert result.outcome is Outcome.NOT_FOUND
    assert (result.status_code, result.attempts, result.error_code) == (404, 1, "NOT_FOUND")


def test_a_second_delete_is_not_found(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_twice"], workspace_id=WORKSPACE)
    client = make_client(extend, StaticCredentials(key))
    assert client.delete("pr_twice", Deadline.after(10)).outcome is Outcome.DELETED
    assert client.delete("pr_twice", Deadline.after(10)).outcome is Outcome.NOT_FOUND


def test_workspace_header_comes_from_message_then_secret_then_settings(extend: ExtendEmulator) -> None:
    org_key = new_api_key()
    extend.add_key(org_key, org_scoped=True)
    extend.seed(["pr_a", "pr_b", "pr_c"], workspace_id="ws_org")
    from_settings = make_client(extend, StaticCredentials(org_key), extend_workspace_id="ws_org")
    assert from_settings.delete("pr_a", Deadline.after(10)).outcome is Outcome.DELETED
    from_secret = make_client(extend, StaticCredentials(org_key, workspace_id="ws_org"), extend_workspace_id="ws_x")
    assert from_secret.delete("pr_b", Deadline.after(10)).outcome is Outcome.DELETED
    result = from_secret.delete("pr_c", Deadline.after(10), workspace_id="ws_org")
    assert result.outcome is Outcome.DELETED
    assert [r.headers["x-extend-workspace-id"] for r in extend.requests] == ["ws_org"] * 3


def test_org_key_without_workspace_fails_permanently(extend: ExtendEmulator) -> None:
    org_key = new_api_key()
    extend.add_key(org_key, org_scoped=True)
    result = make_client(extend, StaticCredentials(org_key)).delete("pr_1", Deadline.after(10))
    assert result.outcome is Outcome.FAILED
    assert (result.status_code, result.retryable, result.attempts) == (400, False, 1)
    assert result.error_code == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "fault",
    [Fault.status(500), Fault.status(503), Fault.rate_limited(retry_after=None), Fault.reset(), Fault.non_json(502)],
    ids=["500", "503", "429", "reset", "html-502"],
)
def test_transient_faults_are_retried_until_success(extend: ExtendEmulator, key: str, fault: Fault) -> None:
    extend.seed(["pr_flaky"], workspace_id=WORKSPACE)
    extend.inject("pr_flaky", fault, fault)
    result = make_client(extend, StaticCredentials(key)).delete("pr_flaky", Deadline.after(10))
    assert result.outcome is Outcome.DELETED
    assert result.attempts == 3
    assert result.retries == 2


def test_retries_are_bounded(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_down"], workspace_id=WORKSPACE)
    extend.inject("pr_down", *[Fault.status(500)] * 5)
    client = make_client(extend, StaticCredentials(key), max_attempts=2)
    result = client.delete("pr_down", Deadline.after(10))
    assert result.outcome is Outcome.FAILED
    assert (result.attempts, result.status_code, result.retryable) == (2, 500, True)
    assert result.reason and "gave up after 2 attempts" in result.reason
    assert extend.exists("pr_down", workspace_id=WORKSPACE)


@pytest.mark.parametrize("status", [400, 402, 403, 422])
def test_other_client_errors_are_permanent_and_not_retried(extend: ExtendEmulator, key: str, status: int) -> None:
    extend.inject("pr_bad", Fault.status(status))
    result = make_client(extend, StaticCredentials(key)).delete("pr_bad", Deadline.after(10))
    assert (result.outcome, result.attempts, result.retryable, result.status_code) == (
        Outcome.FAILED,
        1,
        False,
        status,
    )


def test_retryable_flag_in_the_body_wins_over_the_status(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_r"], workspace_id=WORKSPACE)
    extend.inject("pr_r", Fault.error(409, "CONFLICT", retryable=True))
    result = make_client(extend, StaticCredentials(key)).delete("pr_r", Deadline.after(10))
    assert (result.outcome, result.attempts) == (Outcome.DELETED, 2)


def test_removed_endpoint_is_a_failure_not_a_silent_not_found(extend: ExtendEmulator, key: str) -> None:
    # A misconfigured path must not be read as "already deleted": the message would be consumed.
    extend.seed(["pr_keep"], workspace_id=WORKSPACE)
    extend.inject("pr_keep", Fault.error(404, "ENDPOINT_REMOVED"))
    result = make_client(extend, StaticCredentials(key)).delete("pr_keep", Deadline.after(10))
    assert result.outcome is Outcome.FAILED
    assert result.error_code == "ENDPOINT_REMOVED"


def test_html_404_is_a_failure(extend: ExtendEmulator, key: str) -> None:
    extend.inject("pr_html", Fault.non_json(404))
    result = make_client(extend, StaticCredentials(key)).delete("pr_html", Deadline.after(10))
    assert result.outcome is Outcome.FAILED
    assert result.retryable is False


@pytest.mark.parametrize(
    ("fault", "body_kind"),
    [
        (Fault.json(404, {}), "JSON without Extend's error code"),
        (Fault.json(404, {"message": "Not Found"}), "JSON without Extend's error code"),
        (Fault.json(404, {"error": "Not Found", "statusCode": 404}), "JSON without Extend's error code"),
        # Extend's legacy shape, but not from Extend: no request id
        (Fault.json(404, {"success": False, "error": "Parser run not found"}), "JSON without Extend's error code"),
        (Fault.json(404, {"code": "NOT_FOUND_ROUTE", "message": "no route"}), "NOT_FOUND_ROUTE"),
        (Fault.non_json(404), "a non-JSON body (text/html)"),
        # Extend's own envelope, copied by a proxy or a route-level 404 behind a path: no request id of Extend's
        (Fault.json(404, {"code": "NOT_FOUND", "message": "Not found."}), "NOT_FOUND"),
    ],
    ids=[
        "empty-object",
        "message-only",
        "framework-default",
        "legacy-shape-without-request-id",
        "other-code",
        "html",
        "not-found-code-without-request-id",
    ],
)
def test_a_404_that_is_not_demonstrably_extends_is_a_permanent_failure_not_a_deletion(
    extend: ExtendEmulator, key: str, fault: Fault, body_kind: str
) -> None:
    # Given a run that exists, and something in front of Extend answering 404 for it
    extend.seed(["pr_proxy"], workspace_id=WORKSPACE)
    extend.inject("pr_proxy", fault)
    # When it is deleted
    result = make_client(extend, StaticCredentials(key)).delete("pr_proxy", Deadline.after(10))
    # Then the customer is never told it is gone: a permanent failure, whose reason names the status and the body
    assert (result.outcome, result.retryable, result.attempts) == (Outcome.FAILED, False, 1)
    assert result.reason is not None and result.reason.startswith(f"Extend answered 404 {body_kind}")
    assert extend.exists("pr_proxy", workspace_id=WORKSPACE)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.json(404, {"code": "NOT_FOUND", "message": "Parser run not found."}, with_request_id=True),
        Fault.json(404, {"success": False, "error": "Parser run not found"}, with_request_id=True),
    ],
    ids=["not-found-code-with-extends-request-id", "legacy-shape-with-extends-request-id"],
)
def test_a_404_from_extend_is_not_found(extend: ExtendEmulator, key: str, fault: Fault) -> None:
    extend.inject("pr_gone", fault)
    result = make_client(extend, StaticCredentials(key)).delete("pr_gone", Deadline.after(10))
    assert (result.outcome, result.attempts) == (Outcome.NOT_FOUND, 1)


def test_retry_after_is_honoured_and_throttles_are_counted(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_429"], workspace_id=WORKSPACE)
    extend.inject("pr_429", Fault.rate_limited(retry_after=2))
    sleeps: list[float] = []
    result = make_client(extend, StaticCredentials(key), sleeps=sleeps).delete("pr_429", Deadline.after(10))
    assert result.outcome is Outcome.DELETED
    assert result.throttled_responses == 1
    assert sum(sleeps) >= 2.0


def test_retry_after_past_the_deadline_gives_up_without_sleeping(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_late"], workspace_id=WORKSPACE)
    extend.inject("pr_late", Fault.rate_limited(retry_after=30))
    sleeps: list[float] = []
    client = make_client(extend, StaticCredentials(key), sleeps=sleeps)
    result = client.delete("pr_late", Deadline.after(3))
    assert result.outcome is Outcome.FAILED
    assert result.retryable is True
    assert result.reason and "out of time" in result.reason
    assert sleeps == []
    assert len(extend.requests) == 1


def test_read_timeout_is_retryable_and_bounded_by_the_deadline(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_stall"], workspace_id=WORKSPACE)
    extend.inject("pr_stall", Fault.stall(3.0))
    client = make_client(extend, StaticCredentials(key), read_timeout_s=5.0)
    deadline = Deadline.after(1.0)
    result = client.delete("pr_stall", deadline)
    assert result.outcome is Outcome.FAILED
    assert result.retryable is True
    assert result.status_code is None
    # The attempt's timeout was cut to the remaining budget: the call returned while Extend was still stalling (the
    # emulator had not answered yet), and it did not start another attempt it could not finish.
    assert (result.attempts, extend.stats()) == (1, {})
    assert result.reason == "out of time after 1 attempt(s) (last: connection error: ReadTimeoutError)"


def test_connection_refused_is_retryable(key: str) -> None:
    with ExtendEmulator() as extend:
        base_url = extend.base_url
    client = make_client(extend, StaticCredentials(key), extend_api_base_url=base_url, max_attempts=2)
    result = client.delete("pr_1", Deadline.after(5))
    assert (result.outcome, result.retryable, result.attempts, result.status_code) == (
        Outcome.FAILED,
        True,
        2,
        None,
    )
    assert result.reason and "connection error" in result.reason


def test_a_401_refreshes_the_key_once_and_retries(extend: ExtendEmulator, key: str) -> None:
    old_key = new_api_key()
    extend.add_key(old_key, workspace_id=WORKSPACE)
    extend.revoke_key(old_key)
    extend.seed(["pr_rot"], workspace_id=WORKSPACE)
    credentials = StaticCredentials(old_key, key)
    result = make_client(extend, credentials).delete("pr_rot", Deadline.after(10))
    assert result.outcome is Outcome.DELETED
    assert credentials.refreshes == 1
    assert [r.status for r in extend.requests] == [401, 200]


def test_a_401_with_no_new_key_fails_permanently(extend: ExtendEmulator) -> None:
    bad = new_api_key()
    credentials = StaticCredentials(bad)
    result = make_client(extend, credentials).delete("pr_1", Deadline.after(10))
    assert (result.outcome, result.status_code, result.retryable, result.attempts) == (
        Outcome.FAILED,
        401,
        False,
        1,
    )
    assert credentials.refreshes == 1


def test_secret_rotation_through_secrets_manager(moto_endpoint: str, extend: ExtendEmulator, key: str) -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    secret_arn = put_secret(moto_endpoint, f'{{"apiKey": "{key}", "workspaceId": "{WORKSPACE}"}}')
    secrets = SecretsManagerSource(AwsClients().secretsmanager, max_age_s=300)
    provider = SecretCredentialsProvider(secrets, secret_arn, max_age_s=300)
    assert provider.current(Deadline.after(10)) == ExtendCredentials(key, WORKSPACE)
    new_key = new_api_key()
    extend.add_key(new_key, workspace_id=WORKSPACE)
    rotate_secret(moto_endpoint, secret_arn, new_key)
    extend.revoke_key(key)
    extend.seed(["pr_s"], workspace_id=WORKSPACE)
    client = make_client(extend, provider)  # type: ignore[arg-type]
    assert client.delete("pr_s", Deadline.after(10)).outcome is Outcome.DELETED
    assert provider.current(Deadline.after(10)) == ExtendCredentials(new_key)


def test_keep_alive_connections_are_reused(extend: ExtendEmulator, key: str) -> None:
    extend.seed([f"pr_{i}" for i in range(5)], workspace_id=WORKSPACE)
    pool = urllib3.PoolManager(maxsize=1)
    client = make_client(extend, StaticCredentials(key))
    client._pool = pool
    for i in range(5):
        assert client.delete(f"pr_{i}", Deadline.after(5)).outcome is Outcome.DELETED
    connection_pool = pool.connection_from_url(extend.base_url)
    assert connection_pool.num_connections == 1


@pytest.mark.parametrize("bad_id", ["../admin", "a/b", "a%2Fb", "a?b=1", "a#b", "", "é", "a b"])
def test_invalid_ids_never_reach_extend(extend: ExtendEmulator, key: str, bad_id: str) -> None:
    with pytest.raises(InvalidParserRunId):
        make_client(extend, StaticCredentials(key)).delete(bad_id, Deadline.after(5))
    assert extend.requests == []


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after("-5") == 0
    assert parse_retry_after("9999") == 60
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(formatdate(1000.0 + 7, usegmt=True), now=lambda: 1000.0) == pytest.approx(7)


# ---------------------------------------------------------------- answers that must never read as done


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_permanent_failure_never_a_deletion(extend: ExtendEmulator, key: str, status: int) -> None:
    # Given a run that exists, and something answering its DELETE with a redirect (a moved host, a proxy)
    extend.seed(["pr_moved"], workspace_id=WORKSPACE)
    extend.inject("pr_moved", Fault.redirect(status))
    # When it is deleted, then the redirect is not followed, and nothing says the run is gone
    result = make_client(extend, StaticCredentials(key)).delete("pr_moved", Deadline.after(10))
    assert (result.outcome, result.status_code, result.retryable) == (Outcome.FAILED, status, False)
    assert [request.path for request in extend.requests] == ["/parser_runs/pr_moved"]
    assert extend.exists("pr_moved", workspace_id=WORKSPACE)


def test_a_refused_connection_then_a_404_is_not_found_not_deleted_on_retry(extend: ExtendEmulator, key: str) -> None:
    # Given Extend refusing connections (down), then back up before the retry, and the run already gone
    base_url = extend.base_url
    extend.refuse_connections()
    retried: list[float] = []

    def back_up_then_sleep(seconds: float) -> None:
        retried.append(seconds)
        extend.accept_connections()

    settings = ExtendSettings(extend_api_key_secret_id="unused", extend_api_base_url=base_url, backoff_base_s=0.01)
    client = ExtendClient(
        settings,
        StaticCredentials(key),
        AdaptiveRateLimiter(1000),
        pool=urllib3.PoolManager(),
        sleep=back_up_then_sleep,
    )

    # When it is deleted
    result = client.delete("pr_never_existed", Deadline.after(10))

    # Then the refused attempt cannot have done anything: the 404 is "not found", never "deleted, confirmed"
    assert retried and result.attempts == 2
    assert (result.outcome, result.answer_lost_before, result.reason) == (Outcome.NOT_FOUND, False, None)


def test_a_reset_after_the_request_left_then_a_404_is_deleted_confirmed_on_retry(
    extend: ExtendEmulator, key: str
) -> None:
    # the contrast: an answer lost after the request reached Extend may have been Extend's deletion
    extend.seed(["pr_lost"], workspace_id=WORKSPACE)
    extend.inject("pr_lost", Fault.answer_lost())
    result = make_client(extend, StaticCredentials(key)).delete("pr_lost", Deadline.after(10))
    assert (result.outcome, result.answer_lost_before) == (Outcome.NOT_FOUND, True)


@pytest.mark.parametrize(
    "document", [{}, {"message": "Not Found"}, {"success": True}, {"code": "NOT_FOUND_ROUTE"}], ids=str
)
def test_a_404_with_extends_request_id_but_not_its_envelope_is_a_failure(
    extend: ExtendEmulator, key: str, document: dict[str, object]
) -> None:
    extend.seed(["pr_odd"], workspace_id=WORKSPACE)
    extend.inject("pr_odd", Fault.json(404, document, with_request_id=True))
    result = make_client(extend, StaticCredentials(key)).delete("pr_odd", Deadline.after(10))
    assert result.outcome is Outcome.FAILED and extend.exists("pr_odd", workspace_id=WORKSPACE)


def test_a_read_of_a_run_can_fail_apart_from_its_delete(extend: ExtendEmulator, key: str) -> None:
    # the emulator faults a GET on its own script: the ownership read can be failed while the DELETE would work
    extend.seed(["pr_read"], workspace_id=WORKSPACE)
    extend.inject("pr_read", Fault.status(500), Fault.status(500), Fault.status(500), method="GET")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    read = client.read("pr_read", Deadline.after(10))
    assert (read.outcome.value, read.status_code, read.retryable) == ("failed", 500, True)
    assert client.delete("pr_read", Deadline.after(10)).outcome is Outcome.DELETED


def test_a_read_answered_2xx_without_a_json_run_is_a_failure_never_a_run_without_metadata(
    extend: ExtendEmulator, key: str
) -> None:
    # A proxy's HTML page with a 200 is not a run: taken for one, it would read as a run that names no owner
    extend.seed(["pr_html"], workspace_id=WORKSPACE, metadata={"tenant": "acme"})
    extend.inject("pr_html", Fault.non_json(200), method="GET")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    read = client.read("pr_html", Deadline.after(10))
    assert (read.outcome.value, read.metadata) == ("failed", None)
    assert read.reason == "Extend answered 2xx without a JSON object"


@pytest.mark.parametrize("metadata", [["tenant", "acme"], "acme", 7])
def test_metadata_that_is_not_an_object_names_no_owner(extend: ExtendEmulator, key: str, metadata: object) -> None:
    extend.seed(["pr_odd_meta"], workspace_id=WORKSPACE)
    extend.inject("pr_odd_meta", Fault.json(200, {"id": "pr_odd_meta", "metadata": metadata}), method="GET")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    read = client.read("pr_odd_meta", Deadline.after(10))
    assert (read.outcome.value, read.metadata) == ("found", None)


def test_a_found_run_carries_its_metadata_and_a_missing_one_none(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_tagged"], workspace_id=WORKSPACE, metadata={"tenant": "acme"})
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    assert client.read("pr_tagged", Deadline.after(10)).metadata == {"tenant": "acme"}
    missing = client.read("pr_nowhere_read", Deadline.after(10))
    assert (missing.outcome.value, missing.metadata) == ("not_found", None)


# ---------------------------------------------------------------- every resource type


@pytest.mark.parametrize(
    ("resource", "item_id"),
    [(Resource.EXTRACT_RUNS, "exr_1"), (Resource.WORKFLOW_RUNS, "workflow_run_1"), (Resource.FILES, "file_1")],
)
def test_each_type_is_deleted_and_read_at_its_own_path(
    extend: ExtendEmulator, key: str, resource: Resource, item_id: str
) -> None:
    metadata = None if resource is Resource.FILES else {"tenant": "acme"}
    extend.seed([item_id], workspace_id=WORKSPACE, resource=resource.value, metadata=metadata)
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    read = client.read(item_id, Deadline.after(10), resource=resource)
    deleted = client.delete(item_id, Deadline.after(10), resource=resource)
    assert [(r.method, r.path) for r in extend.requests] == [
        ("GET", f"/{resource.value}/{item_id}"),
        ("DELETE", f"/{resource.value}/{item_id}"),
    ]
    assert read.outcome is ReadOutcome.FOUND and deleted.outcome is Outcome.DELETED
    assert read.metadata == metadata


def test_a_runs_read_names_its_source_file_and_status(extend: ExtendEmulator, key: str) -> None:
    extend.seed(["pr_doc"], workspace_id=WORKSPACE, file_id="file_doc", status="PROCESSING")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    read = client.read("pr_doc", Deadline.after(10))
    assert (read.source_file_id, read.status) == ("file_doc", "PROCESSING")
    # and under 2025-04-21, where the run comes in an envelope
    legacy = make_client(extend, StaticCredentials(key)).read("pr_doc", Deadline.after(10))
    assert legacy.source_file_id == "file_doc"


def test_a_run_refused_while_processing_is_cancelled_then_deleted(extend: ExtendEmulator, key: str) -> None:
    extend.processing_delete = "refuse"
    extend.seed(["exr_busy"], workspace_id=WORKSPACE, resource="extract_runs", status="PROCESSING")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    result = client.delete("exr_busy", Deadline.after(10), resource=Resource.EXTRACT_RUNS)
    assert [(r.method, r.path, r.status) for r in extend.requests] == [
        ("DELETE", "/extract_runs/exr_busy", 409),
        ("POST", "/extract_runs/exr_busy/cancel", 200),
        ("DELETE", "/extract_runs/exr_busy", 200),
    ]
    assert (result.outcome, result.attempts) == (Outcome.DELETED, 3)
    assert not extend.exists("exr_busy", WORKSPACE)


def test_a_processing_edit_run_has_no_cancel_and_its_refusal_stands(extend: ExtendEmulator, key: str) -> None:
    extend.processing_delete = "refuse"
    extend.seed(["edr_busy"], workspace_id=WORKSPACE, resource="edit_runs", status="PROCESSING")
    client = make_client(extend, StaticCredentials(key), extend_api_version="2026-02-09")
    result = client.delete("edr_busy", Deadline.after(10), resource=Resource.EDIT_RUNS)
    assert [(r.method, r.status) for r in extend.requests] == [("DELETE", 409)]
    assert result.outcome is Outcome.FAILED and not result.retryable
