"""B1 floor: the minimum by hand. Import boto3 and urllib3, one GetSecretValue, one raw DELETE."""

import os

import _child
import boto3
import urllib3

[parser_run_id] = _child.ids()
key = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["EXTEND_API_KEY_SECRET_ID"])["SecretString"]
response = urllib3.PoolManager().request(
    "DELETE",
    f"{os.environ['EXTEND_API_BASE_URL']}/parser_runs/{parser_run_id}",
    headers={"Authorization": f"Bearer {key}", "x-extend-api-version": "2025-04-21"},
)
_child.report(failures=int(response.status != 200), rss_kb=_child.rss_kb())
_child.done()
