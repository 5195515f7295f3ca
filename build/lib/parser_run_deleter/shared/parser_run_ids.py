"""Id validation: the one gate every parser run id passes before it can reach a URL, the same rule for the
workspace ids sent in ``x-extend-workspace-id``, and the rule for tenant ids."""

from __future__ import annotations

import re
from typing import Final

# Extend ids are opaque and prefixes may change; the alphabet and the 255-character bound are what holds.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
MAX_ID_LENGTH = 255


# Tenant ids name secrets, SQS message groups and log fields: a short, plain alphabet.
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def is_valid_tenant_id(value: object) -> bool:
    return isinstance(value, str) and _TENANT_ID.fullmatch(value) is not None


def is_valid_workspace_id(value: object) -> bool:
    """Workspace ids are Extend ids too: the same alphabet and bound, checked before they reach a header."""
    return isinstance(value, str) and _VALID_ID.fullmatch(value) is not None


class InvalidParserRunId(ValueError):
    """The id is not a string of 1 to 255 characters from [A-Za-z0-9_-]."""


def validate_parser_run_id(value: object) -> str:
    """Return ``value`` unchanged when it is a valid id, else raise with a reason safe to show the caller."""
    if not isinstance(value, str):
        raise InvalidParserRunId(f"parserRunId must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidParserRunId("parserRunId must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidParserRunId(f"parserRunId must be at most {MAX_ID_LENGTH} characters, got {len(value)}")
    if not _VALID_ID.fullmatch(value):
        raise InvalidParserRunId("parserRunId may contain only letters, digits, '_' and '-'")
    return value


# Deletion request ids (the ledger's): "dr_" and 26 characters of Crockford's base32 (no I, L, O, U).
REQUEST_ID_PREFIX: Final = "dr_"
REQUEST_ID_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"


def is_request_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == len(REQUEST_ID_PREFIX) + 26
        and value.startswith(REQUEST_ID_PREFIX)
        and all(character in REQUEST_ID_ALPHABET for character in value[len(REQUEST_ID_PREFIX) :])
    )
