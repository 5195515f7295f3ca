"""The local stack the demo runs on: moto, the seeded Extend emulator and the local deployment, with the two
tenants registered as an operator would, and a loopback endpoint that takes their completion callbacks."""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.demo.plan import ACME_WORKSPACE, METADATA_KEY, SHARED_WORKSPACE, Plan, seed_extend
from devstack.demo.tenant_client import TenantClient
from devstack.extend_emulator import ExtendEmulator
from devstack.local_deployment import LocalDeployment, LocalDeploymentOptions
from devstack.logs import LogSink
from devstack.moto_stack import moto_server
from devstack.stack_outputs import publish_outputs

LOCAL_PARAMETERS = {"ExtendMaxRequestsPerSecondPerInstance": "50", "ExtendApiVersion": "2026-02-09"}
LOCAL_ENVIRONMENT = {
    "EXTEND_BACKOFF_BASE_SECONDS": "0.05",
    "EXTEND_BACKOFF_CAP_SECONDS": "0.5",
}


def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class CallbackReceiver:
    """The tenants' callback endpoint, on loopback: records each completion callback it is sent, answers 204."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, tenant_id: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callbacks/{tenant_id}"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def running_stack(
    options: LocalDeploymentOptions, sink: LogSink, plan: Plan, prewarm: bool = True
) -> Iterator[tuple[LocalDeployment, ExtendEmulator, str, dict[str, TenantClient]]]:
    _quiet_moto()
    extend_key = f"sk_local_{secrets.token_hex(16)}"
    receiver = CallbackReceiver()
    stack_receivers.append(receiver)
    with moto_server() as endpoint, ExtendEmulator() as emulator:
        emulator.add_key(extend_key, org_scoped=True)
        seed_extend(emulator, plan)
        stack = LocalDeployment(endpoint, emulator.base_url, extend_key, sink, options)
        try:
            stack.start()
            publish_outputs(stack)  # extend-deleter --stack-name finds it, as it finds a deployed stack
            acme = stack.register_tenant("acme", ownership="workspace", workspace_id=ACME_WORKSPACE)
            globex = stack.register_tenant("globex", ownership="metadata", metadata_key=METADATA_KEY)
            clients = {added.tenant.tenant_id: TenantClient.of(added, stack.api_url) for added in (acme, globex)}
            for tenant_id in clients:  # each tenant is told, on loopback, when one of its requests completes
                stack.tenant_admin().set_callback(tenant_id, receiver.url(tenant_id))
            if prewarm:
                stack.prewarm()
            yield stack, emulator, endpoint, clients
        finally:
            stack.stop()
            receiver.close()


# The callback receiver of the running stack (one at a time), for the script to read what tenants were told.
stack_receivers: list[CallbackReceiver] = []


def stack_options(args: argparse.Namespace) -> LocalDeploymentOptions:
    return LocalDeploymentOptions(
        parameter_overrides={**LOCAL_PARAMETERS, **args.parameter},
        environment_overrides=dict(LOCAL_ENVIRONMENT),
        visibility_timeout_s=args.visibility_timeout,
        workspace_id=SHARED_WORKSPACE,
    )
