"""openapi.yaml as a contract: find the operation for a request and check a response against it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    validate_spec(document)
    return document


def resolve(node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (the spec has no recursive schemas)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec()
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target)
        return {key: resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item) for item in node]
    return node


def operations() -> set[tuple[str, str]]:
    """Every (METHOD, path template) the spec declares."""
    return {(method.upper(), path) for path, item in spec()["paths"].items() for method in item if method in METHODS}


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)))


def find_operation(method: str, path: str) -> tuple[str | None, dict[str, Any] | None]:
    """The path template matching ``path``, and the operation for ``method`` on it (None when absent). A literal
    segment wins over a variable one, as in API Gateway: ``/deletions/{id}`` before ``/{resource}/{id}``."""
    for template, item in sorted(spec()["paths"].items(), key=lambda entry: entry[0].count("{")):
        if _template_regex(template).fullmatch(path):
            operation = item.get(method.lower())
            return template, resolve(operation) if operation else None
    return None, None


def check_response(method: str, path: str, status: int, headers: dict[str, str], body: Any) -> None:
    """Fail unless the response is one the spec documents (or the documented 404/405 for undeclared ones)."""
    assert headers.get("content-type") == "application/json", headers
    template, operation = find_operation(method, path)
    error_schema = resolve(spec()["components"]["schemas"]["Error"])
    if operation is None:
        expected = 405 if template is not None else 404
        if status == 401:  # signatures are checked before routing
            expected = 401
        if status == 400 and method.upper() in ("DELETE", "GET"):  # so are bodies where none belongs
            expected = 400
        assert status == expected, f"{method} {path}: got {status}, the spec implies {expected}"
        OAS30Validator(error_schema).validate(body)
        if status == 405:
            allowed = {m.upper() for m in spec()["paths"][template] if m in METHODS}
            assert set(headers["allow"].split(", ")) == allowed
        return
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template}: status {status} is not in openapi.yaml"
    documented = responses[str(status)]
    schema = documented["content"]["application/json"]["schema"]
    OAS30Validator(schema).validate(body)
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            value = headers.get(name.lower())
            assert value is not None, f"{status} must carry {name}"
            OAS30Validator(header["schema"]).validate(value)
