"""Adapter for completion callbacks: one POST to a tenant's URL, guarded against server-side request forgery.

The URL's host is resolved here, and the request goes to an address that was checked, not to whatever the name
resolves to a moment later: every address must be public (not private, loopback, link-local, the metadata
service's, multicast, reserved or unspecified), unless ``allow_loopback`` (local use) admits loopback ones.
TLS is verified against the host's name. Redirects are never followed: a 3xx is a failed delivery.

A tenant's endpoint cannot hold the function up or fill its memory: the whole exchange has one wall-clock
deadline (a watchdog shuts the socket when it passes, however slowly the answer drips), and only the status line
and headers of the answer are read, never its body.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection

from parser_run_deleter.logic.ports import CallbackRefused, DeliveryAnswer

__all__ = ["CallbackRefused", "DeliveryAnswer", "HttpCallbackTransport", "checked_target", "post"]

# Resolve a host and port to addresses, as socket.getaddrinfo does (injectable: tests name what a host resolves to).
Resolver = Callable[[str, int], Sequence[str]]
USER_AGENT: Final = "extend-parser-run-deleter-callbacks"
# Connecting may take at most this long, within the delivery's deadline.
CONNECT_TIMEOUT_S: Final = 2.0
# Never a callback's target, public or not: the instance metadata services (AWS's, in IPv4 and IPv6).
_METADATA_ADDRESSES: Final = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


def resolve(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def allowed_address(address: str, *, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return False
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local)


def checked_target(url: str, *, allow_loopback: bool, resolver: Resolver = resolve) -> tuple[str, int, str]:
    """(scheme, port, address) to send ``url``'s request to; ``CallbackRefused`` when it may not be called."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password or not host:
        raise CallbackRefused("the callback URL has no host, or carries credentials")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_loopback):
        raise CallbackRefused("the callback URL must use https")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = list(resolver(host, port))
    except OSError as error:
        raise CallbackRefused(f"the callback host does not resolve: {type(error).__name__}") from None
    if not addresses:
        raise CallbackRefused("the callback host does not resolve")
    refused = [address for address in addresses if not allowed_address(address, allow_loopback=allow_loopback)]
    if refused:
        # One bad address is enough: a name that resolves to a private address among public ones is not called.
        raise CallbackRefused(f"the callback host resolves to an address that may not be called ({refused[0]})")
    if parts.scheme == "http" and not all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses):
        raise CallbackRefused("plain http is allowed only to a loopback host")
    return parts.scheme, port, addresses[0]


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float,
    allow_loopback: bool = False,
    resolver: Resolver = resolve,
) -> DeliveryAnswer:
    """POST ``body`` to ``url`` (after ``checked_target``), all within ``timeout_s``: the status, or why there is
    none."""
    started = time.monotonic()
    scheme, port, address = checked_target(url, allow_loopback=allow_loopback, resolver=resolver)
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    request_headers = {
        **headers,
        "Host": host if port == default_port else f"{host}:{port}",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
    remaining = max(timeout_s - (time.monotonic() - started), 0.01)
    timeout = min(CONNECT_TIMEOUT_S, remaining)
    connection: HTTPConnection
    if scheme == "https":
        # Connect to the checked address; the certificate must still name the host.
        connection = HTTPSConnection(
            address, port, timeout=timeout, server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED"
        )
    else:
        connection = HTTPConnection(address, port, timeout=timeout)
    watchdog = threading.Timer(remaining, _cut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", target, body=body, headers=request_headers, preload_content=False)
        response = connection.getresponse()  # the status line and headers; the body is never read
        status = response.status
    except Exception as error:  # only the type: a message can quote the URL
        late = time.monotonic() - started >= timeout_s
        return DeliveryAnswer(None, "no answer within the deadline" if late else type(error).__name__)
    finally:
        watchdog.cancel()
        connection.close()
    if 300 <= status < 400:
        return DeliveryAnswer(status, "redirects are not followed")
    return DeliveryAnswer(status)


def _cut(connection: HTTPConnection) -> None:
    """Shut the connection's socket: whatever call is waiting on it returns at once, with an error."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # closed already


class HttpCallbackTransport:
    """``logic.ports.CallbackTransport``: ``post`` to checked addresses only (``allow_loopback`` for local use)."""

    def __init__(self, *, allow_loopback: bool = False, resolver: Resolver = resolve) -> None:
        self._allow_loopback = allow_loopback
        self._resolver = resolver

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> DeliveryAnswer:
        return post(
            url, body, headers, timeout_s=timeout_s, allow_loopback=self._allow_loopback, resolver=self._resolver
        )
