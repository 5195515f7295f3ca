"""The API's request bodies, read as HTTP sends them: the bulk route's JSON, and bodies where none belongs.

Errors are ``InvalidRequestBody``, whose message is precise and safe to return to the caller (400).
"""

from __future__ import annotations

import json
from typing import Any

from parser_run_deleter.logic.api_use_cases import MAX_BULK_IDS, echo, json_type


class InvalidRequestBody(ValueError):
    """The body is not what the route accepts. The message is precise and safe to return to the caller."""


def parse_bulk_body(body: str | None) -> list[Any]:
    """``{"parserRunIds": [...]}`` with 1 to ``MAX_BULK_IDS`` entries; the entries themselves are not checked."""
    if body is None or not body.strip():
        raise InvalidRequestBody('the body must be JSON {"parserRunIds": [...]}; it is empty')
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidRequestBody(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequestBody("the body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidRequestBody(f'the body must be a JSON object {{"parserRunIds": [...]}}, got {json_type(document)}')
    if "parserRunIds" not in document:
        raise InvalidRequestBody("the body has no 'parserRunIds'")
    unknown = sorted(name for name in document if name != "parserRunIds")
    if unknown:
        raise InvalidRequestBody(f"unknown field(s): {', '.join(echo(name) for name in unknown[:5])}")
    ids = document["parserRunIds"]
    if not isinstance(ids, list):
        raise InvalidRequestBody(f"'parserRunIds' must be an array, got {json_type(ids)}")
    if not ids:
        raise InvalidRequestBody("'parserRunIds' must hold at least 1 id")
    if len(ids) > MAX_BULK_IDS:
        raise InvalidRequestBody(f"'parserRunIds' must hold at most {MAX_BULK_IDS} ids, got {len(ids)}")
    return ids
