"""Property: whatever a client sends, the answer is a documented JSON 2xx/4xx, never a 5xx."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import http_event, invoke, rest_event
from tests.support.stacks import InProcessStack

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
    json_values.map(json.dumps),
    st.lists(json_values, min_size=1, max_size=5).map(lambda ids: json.dumps({"parserRunIds": ids})),
)


@FUZZ
@given(body=bodies, v2=st.booleans())
def test_any_bulk_body_gets_a_documented_4xx_or_202(stack: InProcessStack, body: str, v2: bool) -> None:
    make_event = http_event if v2 else rest_event
    answer = invoke(make_event("POST", "/deletions", body=body))
    assert answer.status in {202, 400}


@FUZZ
@given(raw_id=st.text(min_size=1, max_size=300).filter(lambda text: "/" not in text), v2=st.booleans())
def test_any_path_id_gets_a_documented_answer(stack: InProcessStack, raw_id: str, v2: bool) -> None:
    make_event = http_event if v2 else rest_event
    answer = invoke(make_event("DELETE", f"/parser_runs/{quote(raw_id, safe='')}"))
    assert answer.status in {400, 404}


def test_a_rest_event_without_any_headers_is_answered_not_crashed_on(stack: InProcessStack) -> None:
    event = rest_event("DELETE", "/parser_runs/pr_none")
    event["headers"] = None
    event["multiValueHeaders"] = None
    assert invoke(event).status == 401  # no signature headers: refused, never a 5xx
