"""B2 floor with the ledger: the raw loop's DELETEs, each followed by the two DynamoDB writes the queue function
makes for an operator's message (its run, then its request's counters, completed), one after another, by hand."""

import os
import time
import uuid

import _child
import boto3
import urllib3

warmup, *ids = _child.ids()
key = os.environ["BENCH_API_KEY"]
table = os.environ["LEDGER_TABLE_NAME"]
base = os.environ["EXTEND_API_BASE_URL"] + "/parser_runs/"
headers = {"Authorization": f"Bearer {key}", "x-extend-api-version": "2025-04-21"}
http = urllib3.PoolManager()
dynamodb = boto3.client("dynamodb")


def delete_and_record(parser_run_id: str) -> bool:
    response = http.request("DELETE", base + parser_run_id, headers=headers)
    request_key = {"pk": {"S": f"REQ#dr_{uuid.uuid4().hex}"}}
    now = {":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    dynamodb.update_item(
        TableName=table,
        Key={**request_key, "sk": {"S": f"RUN#{parser_run_id}"}},
        UpdateExpression="SET outcome = :outcome, extendStatus = :status, completedAt = :now ADD attempts :one",
        ConditionExpression="attribute_not_exists(outcome)",
        ExpressionAttributeValues={":outcome": {"S": "deleted"}, ":status": {"N": "200"}, ":one": {"N": "1"}, **now},
    )
    dynamodb.update_item(
        TableName=table,
        Key={**request_key, "sk": {"S": "REQUEST"}},
        UpdateExpression="SET updatedAt = :now, completedAt = :now ADD n_deleted :one, transitions :one",
        ExpressionAttributeValues={":one": {"N": "1"}, **now},
    )
    return response.status == 200


delete_and_record(warmup)
failures = 0
started, cpu_started = time.perf_counter(), time.process_time()
for parser_run_id in ids:
    failures += not delete_and_record(parser_run_id)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
_child.report(elapsed_s=elapsed, cpu_s=cpu, failures=failures, rss_kb=_child.rss_kb())
_child.done()
