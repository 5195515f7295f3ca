"""The API's request bodies, read as HTTP sends them: the bulk route's JSON, and bodies where none belongs.

Errors are ``InvalidRequestBody``, whose message is precise and safe to return to the caller (400).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from parser_run_deleter.logic.api_use_cases import MAX_BULK_IDS, echo, json_type


class InvalidRequestBody(ValueError):
    """The body is not what the route accepts. The message is precise and safe to return to the caller."""


@dataclass(frozen=True, slots=True)
class BulkBody:
    values: list[Any]  # the ids as sent, each checked later
    typed_by_prefix: bool  # ``ids``: each id's prefix names its resource type; ``parserRunIds``: parse runs
    dry_run: bool
    include_file: bool = False  # each run's source file is deleted after it, as an item of its own


_FIELDS: Final = ("parserRunIds", "ids", "dryRun", "include")
_SHAPE: Final = '{"ids": [...]} or {"parserRunIds": [...]}'


def parse_bulk_body(body: str | None) -> BulkBody:
    """``{"ids": [...]}`` (typed by prefix) or ``{"parserRunIds": [...]}`` with 1 to ``MAX_BULK_IDS`` entries, and
    ``"dryRun": true`` for a dry run; the entries themselves are not checked here."""
    if body is None or not body.strip():
        raise InvalidRequestBody(f"the body must be JSON {_SHAPE}; it is empty")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidRequestBody(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequestBody("the body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidRequestBody(f"the body must be a JSON object {_SHAPE}, got {json_type(document)}")
    unknown = sorted(name for name in document if name not in _FIELDS)
    if unknown:
        raise InvalidRequestBody(f"unknown field(s): {', '.join(echo(name) for name in unknown[:5])}")
    named = [name for name in ("ids", "parserRunIds") if name in document]
    if len(named) != 1:
        raise InvalidRequestBody(
            "the body has no 'ids' nor 'parserRunIds'" if not named else "send 'ids' or 'parserRunIds', not both"
        )
    field = named[0]
    ids = document[field]
    if not isinstance(ids, list):
        raise InvalidRequestBody(f"'{field}' must be an array, got {json_type(ids)}")
    if not ids:
        raise InvalidRequestBody(f"'{field}' must hold at least 1 id")
    if len(ids) > MAX_BULK_IDS:
        raise InvalidRequestBody(f"'{field}' must hold at most {MAX_BULK_IDS} ids, got {len(ids)}")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidRequestBody(f"'dryRun' must be true or false, got {json_type(dry_run)}")
    include = document.get("include", [])
    if not isinstance(include, list) or any(value != "file" for value in include):
        raise InvalidRequestBody("'include' must be an array of \"file\" (delete each run's source file too)")
    return BulkBody(ids, typed_by_prefix=field == "ids", dry_run=dry_run, include_file=bool(include))
