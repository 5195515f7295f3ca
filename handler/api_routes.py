"""The API Gateway trigger. Placeholder until the customer API lands: every request is refused clearly."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext


def handle_api_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "no such route"}),
    }
