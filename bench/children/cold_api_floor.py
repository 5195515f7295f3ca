"""B1 API floor: the API function's first request done by hand, call for call, with nothing but boto3 and urllib3:
the tenant from its key (two reads), its signing secret and the signature check, the replay record, the Extend
key, the DELETE, the ledger's run and request, the request completed, and the replay record finished."""

import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import _child
import boto3
import urllib3

[parser_run_id] = _child.ids()
event = _child.api_event(parser_run_id)
dynamodb, secrets = boto3.client("dynamodb"), boto3.client("secretsmanager")
registry, replays, ledger = (
    os.environ[name] for name in ("TENANTS_TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "LEDGER_TABLE_NAME")
)
key_item = dynamodb.get_item(TableName=registry, Key={"pk": {"S": "APIKEY#" + os.environ["BENCH_API_KEY_ID"]}})
tenant_id = key_item["Item"]["tenantId"]["S"]
dynamodb.get_item(TableName=registry, Key={"pk": {"S": "TENANT#" + tenant_id}})
signing = json.loads(
    secrets.get_secret_value(SecretId=f"{os.environ['TENANT_SECRET_PREFIX']}/{tenant_id}/signing")["SecretString"]
)
headers = event["headers"]
signing_key = base64.b64decode(signing["secrets"][0]["secret"].removeprefix("whsec_"))
signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.DELETE {event['path']}".encode()
expected = "v1," + base64.b64encode(hmac.new(signing_key, signed, hashlib.sha256).digest()).decode()
assert hmac.compare_digest(expected, headers["webhook-signature"])
replay_id = {"S": "signed-request#" + hashlib.md5(headers["webhook-id"].encode(), usedforsecurity=False).hexdigest()}
dynamodb.put_item(
    TableName=replays,
    Item={"id": replay_id, "status": {"S": "INPROGRESS"}},
    ConditionExpression="attribute_not_exists(id)",
)
key = secrets.get_secret_value(SecretId=os.environ["EXTEND_API_KEY_SECRET_ID"])["SecretString"]
response = urllib3.PoolManager().request(
    "DELETE",
    f"{os.environ['EXTEND_API_BASE_URL']}/parser_runs/{parser_run_id}",
    headers={"Authorization": f"Bearer {key}", "x-extend-api-version": "2025-04-21"},
)
request_id, now = f"dr_{uuid.uuid4().hex[:26]}", str(time.time())
dynamodb.put_item(
    TableName=ledger,
    Item={"pk": {"S": "REQ#" + request_id}, "sk": {"S": "RUN#" + parser_run_id}, "outcome": {"S": "deleted"}},
)
dynamodb.put_item(
    TableName=ledger, Item={"pk": {"S": "REQ#" + request_id}, "sk": {"S": "REQUEST"}, "createdAt": {"S": now}}
)
dynamodb.update_item(
    TableName=ledger,
    Key={"pk": {"S": "REQ#" + request_id}, "sk": {"S": "REQUEST"}},
    UpdateExpression="SET completedAt = :t",
    ExpressionAttributeValues={":t": {"S": now}},
)
dynamodb.update_item(
    TableName=replays,
    Key={"id": replay_id},
    UpdateExpression="SET #s = :done",
    ExpressionAttributeNames={"#s": "status"},
    ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
)
_child.report(failures=int(response.status != 200), rss_kb=_child.rss_kb())
_child.done()
