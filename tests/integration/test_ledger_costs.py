"""What the ledger costs in DynamoDB calls per deletion, counted at the wire (a proxy in front of moto), on each
path. docs/ledger.md quotes these numbers; this test keeps them true."""

from __future__ import annotations

import json
from collections import Counter

from tests.integration.test_ledger import consume_queue
from tests.support.api import invoke, rest_event
from tests.support.aws_fault_proxy import AwsFaultProxy
from tests.support.stacks import InProcessStack

WS = "ws_test"
LEDGER_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems", "Query")


def counted(proxy: AwsFaultProxy) -> Counter[str]:
    return Counter({operation: proxy.calls[operation] for operation in LEDGER_OPERATIONS if proxy.calls[operation]})


def test_the_ledger_calls_of_each_path(stack: InProcessStack, moto_endpoint: str) -> None:
    ids = [f"pr_cost_{n:02d}" for n in range(30)]
    stack.extend.seed([*ids, "pr_cost_sync"], workspace_id=WS)
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        invoke(rest_event("DELETE", "/parser_runs/pr_cost_warm"))  # the tenant and its secret cached
        proxy.calls.clear()

        # A synchronous delete: the run and its request, completed, in one transaction
        assert invoke(rest_event("DELETE", "/parser_runs/pr_cost_sync")).status == 200
        sync = counted(proxy)
        proxy.calls.clear()

        # A bulk request of 30: the reservation (1 update), the request (1 put), the runs (2 batches of 25) and
        # the request's counters (1 update)
        assert invoke(rest_event("POST", "/deletions", body=json.dumps({"parserRunIds": ids}))).status == 202
        bulk = counted(proxy)
        proxy.calls.clear()

        # Its 30 deletions through the queue function (3 batches of 10): each run's outcome, then once per batch its
        # request's counters and its tenant's outstanding runs
        for _ in range(3):
            assert consume_queue(stack) == {"batchItemFailures": []}
        queue = counted(proxy)

    # A warm synchronous delete makes 3 DynamoDB calls in all: the replay guard's two (a PutItem and an UpdateItem
    # per API request, Powertools') and the ledger's one
    assert sync == Counter({"PutItem": 1, "UpdateItem": 1, "TransactWriteItems": 1})
    assert sum(sync.values()) == 3
    assert bulk == Counter({"PutItem": 1 + 1, "UpdateItem": 2 + 1, "BatchWriteItem": 2})
    # a batch of n runs of one request: n reads of each run's state before its DELETE (a cancelled run is never
    # sent) and n + 2 writes (the runs, the request's counters, the tenant's outstanding runs); once per request,
    # its completion; and once per container, the tenant's registry read (its workers share it)
    assert queue == Counter({"UpdateItem": 3 * (10 + 2) + 1, "GetItem": 30 + 1})


def test_a_batch_out_of_time_writes_nothing_past_its_deadline(stack: InProcessStack, moto_endpoint: str) -> None:
    # Given ten queued runs of a request, and a batch that arrives with less time left than the safety margin
    ids = [f"pr_late_{n}" for n in range(10)]
    stack.extend.seed(ids, workspace_id=WS)
    assert invoke(rest_event("POST", "/deletions", body=json.dumps({"parserRunIds": ids}))).status == 202
    with AwsFaultProxy(moto_endpoint) as proxy, stack.aws_through(proxy.url):
        invoke(rest_event("DELETE", "/parser_runs/pr_late_warm"))  # the tenant cached, as on a warm instance
        proxy.calls.clear()

        # When the queue function gets them
        result = consume_queue(stack, timeout_s=0.5)
        late = counted(proxy)

    # Then every message comes back untried, and no DynamoDB write ate into the time left to answer
    assert len(result["batchItemFailures"]) == 10
    assert late == Counter()
    assert all(stack.extend.exists(parser_run_id, workspace_id=WS) for parser_run_id in ids)
