"""B1 floor for the queue function: the calls its first record needs, made by hand with boto3 and urllib3. The
Extend key (one GetSecretValue), the record confirmed as its queue's (one ChangeMessageVisibilityBatch), one raw
DELETE, and its outcome in the ledger (the run, then its request's counters: two UpdateItem)."""

import json
import os
import time

import _child
import boto3
import urllib3

[event] = _child.delivered()
[record] = event["Records"]
parser_run_id = json.loads(record["body"])["parserRunId"]
key = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["EXTEND_API_KEY_SECRET_ID"])["SecretString"]
boto3.client("sqs").change_message_visibility_batch(
    QueueUrl=os.environ["DELETION_QUEUE_URL"],
    Entries=[{"Id": "0", "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": 30}],
)
response = urllib3.PoolManager().request(
    "DELETE",
    f"{os.environ['EXTEND_API_BASE_URL']}/parser_runs/{parser_run_id}",
    headers={"Authorization": f"Bearer {key}", "x-extend-api-version": "2025-04-21"},
)
dynamodb = boto3.client("dynamodb")
request_key = {"pk": {"S": f"REQ#dr_{record['messageId']}"}}
now = {":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
dynamodb.update_item(
    TableName=os.environ["LEDGER_TABLE_NAME"],
    Key={**request_key, "sk": {"S": f"RUN#{parser_run_id}"}},
    UpdateExpression="SET outcome = :outcome, completedAt = :now ADD attempts :one",
    ExpressionAttributeValues={":outcome": {"S": "deleted"}, ":one": {"N": "1"}, **now},
)
dynamodb.update_item(
    TableName=os.environ["LEDGER_TABLE_NAME"],
    Key={**request_key, "sk": {"S": "REQUEST"}},
    UpdateExpression="SET updatedAt = :now, completedAt = :now ADD n_deleted :one, transitions :one",
    ExpressionAttributeValues={":one": {"N": "1"}, **now},
)
_child.report(failures=int(response.status != 200), rss_kb=_child.rss_kb())
_child.done()
