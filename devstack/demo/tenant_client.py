"""A tenant's client of the API, over real HTTP: its API key on every request, and each request signed with its
own secret."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from opscli.tenants import AddedTenant
from parser_run_deleter.logic.authentication import signed_payload
from parser_run_deleter.logic.webhook_signature import signature_headers


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def http(method: str, url: str, *, headers: dict[str, str], body: bytes | None = None) -> HttpReply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            status, raw, answered = response.status, response.read(), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        status, raw, answered = error.code, error.read(), dict(error.headers.items())
    try:
        return HttpReply(status, json.loads(raw) if raw else None, answered)
    except ValueError:
        return HttpReply(status, raw.decode(errors="replace"), answered)


@dataclass(frozen=True)
class TenantClient:
    """One tenant's client of the API: its API key, its signing secret, and the secret its callbacks are signed with
    (a key of their own, so that no callback can pass for a request)."""

    tenant_id: str
    api_url: str
    api_key: str
    signing_secret: str
    callback_signing_secret: str

    @classmethod
    def of(cls, added: AddedTenant, api_url: str) -> TenantClient:
        assert added.api_key_value is not None
        return cls(
            added.tenant.tenant_id, api_url, added.api_key_value, added.signing_secret, added.callback_signing_secret
        )

    def headers(
        self, method: str, path: str, body: bytes = b"", *, secret: str | None = None, api_key: bool = True
    ) -> dict[str, str]:
        """The API key, and the Standard Webhooks headers signing the request (signing contract v2: its method and
        path, and its body when it has one)."""
        headers = signature_headers(secret or self.signing_secret, signed_payload(method, path, body))
        if api_key:
            headers["x-api-key"] = self.api_key
        if body:
            headers["content-type"] = "application/json"
        return headers

    def send(self, method: str, path: str, body: bytes | None = None, **signing: Any) -> HttpReply:
        headers = self.headers(method, path, body or b"", **signing)
        return http(method, self.api_url + path, headers=headers, body=body)

    def status(self, request_id: str) -> HttpReply:
        """``GET /deletions/{id}``: every page of the request's runs, signed as ``GET /deletions/{id}``."""
        path = f"/deletions/{request_id}"
        reply = self.send("GET", path)
        items = list(reply.body.get("items", [])) if isinstance(reply.body, dict) else []
        while isinstance(reply.body, dict) and reply.body.get("nextToken"):
            headers = self.headers("GET", path)
            reply = http("GET", f"{self.api_url}{path}?nextToken={reply.body['nextToken']}", headers=headers)
            items += reply.body.get("items", []) if isinstance(reply.body, dict) else []
        if isinstance(reply.body, dict):
            reply.body["items"] = items
        return reply
