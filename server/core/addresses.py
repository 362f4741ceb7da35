"""Whether a host is a public internet address: the guard for URLs the server fetches on a client's word.

A phone names its Web Push endpoint (and a charity will name webhooks), and the server connects there. A URL
naming 127.0.0.1, a private network or a cloud's metadata address would make the server reach into its own
network for the client (server-side request forgery). So such hosts are refused when the URL is registered,
and again when a connection is made: then the name is resolved here, every address it resolves to is
checked, and the connection goes to an address that was checked, so a name that answers with a public
address first and a private one a moment later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Final

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[Address]]

# Names that never mean a host on the internet (RFC 6761, RFC 6762, RFC 8375, and the customary ones).
LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")


class NotPublic(Exception):
    """The host is, or resolves to, an address that is not a public internet address."""


def why_not_public(address: Address) -> str | None:
    """What kind of address this is if it is not public ('a loopback address', ...), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address written as IPv6 (mapped, NAT64, 6to4) is judged as the IPv4 address it reaches.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return why_not_public(embedded)
    v6 = address if isinstance(address, ipaddress.IPv6Address) else None
    kinds = (
        ("a loopback address", address.is_loopback),
        ("the unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a unique-local address", v6 is not None and v6 in _UNIQUE_LOCAL),
        ("a site-local address", v6 is not None and v6.is_site_local),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("an address not routed on the internet", not address.is_global),  # e.g. carrier-grade NAT
    )
    return next((kind for kind, applies in kinds if applies), None)


def why_not_public_host(host: str) -> str | None:
    """Why a URL's host is refused before any lookup (an IP literal that is not public, or a local name),
    or None when it may be public; names are checked again, resolved, when a connection is made."""
    name = host.strip("[]").rstrip(".").lower().partition("%")[0]
    try:
        address: Address = ipaddress.ip_address(name)
    except ValueError:
        try:  # the resolver also reads IPv4 shorthands: 127.1, 0x7f.0.0.1, 2130706433
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            if name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES):
                return f"{name} is a local name"
            if "." not in name:
                return f"{name} is a name without a domain, which resolves inside the local network"
            return None
    reason = why_not_public(address)
    return None if reason is None else f"{name} is {reason}"


def resolve(host: str, port: int) -> list[Address]:
    """Every address the system resolver gives for the host, in its order."""
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


def public_addresses(host: str, port: int, resolver: Resolver = resolve) -> list[Address]:
    """The host's addresses if every one of them is public; else NotPublic, naming one that is not."""
    addresses = resolver(host, port)
    for address in addresses:
        reason = why_not_public(address)
        if reason is not None:
            raise NotPublic(f"{host} resolves to {address}, {reason}")
    return addresses


class PublicOnlyBackend(httpcore.NetworkBackend):
    """httpcore's network backend that connects to public addresses only, resolving names itself."""

    def __init__(self, resolver: Resolver = resolve) -> None:
        self._resolver = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = public_addresses(host, port, self._resolver)
        except OSError as exc:  # the name does not resolve now: a network failure, worth another try
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:  # TLS still verifies the certificate against the name: httpcore passes it as SNI
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise NotPublic("a Unix socket is not a public address")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PublicOnlyTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection goes through PublicOnlyBackend. Env proxies do not apply
    (a proxy would make the connection for us, unchecked)."""

    def __init__(
        self, *, http2: bool = False, resolver: Resolver = resolve, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(http2=http2)
        # httpx takes no network backend of its own; the pool it would have made is replaced by one that
        # has ours (tests/test_push_addresses.py fails if a newer httpx stops using this pool).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            http1=True,
            http2=http2,
            network_backend=PublicOnlyBackend(resolver),
        )
