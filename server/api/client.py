"""The caller's address, for every rate limit, lockout and (when the operator turns it on) the access log.

uvicorn's own reading of X-Forwarded-For is turned off wherever the app is served
(`server/core/serving.py`), so the TCP peer reaches this function unchanged and `NAHBAR_TRUSTED_PROXIES`
alone decides whom to believe.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import HTTPConnection

Network = IPv4Network | IPv6Network


def _is_trusted(host: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def client_address(connection: HTTPConnection, trusted_proxies: Sequence[Network]) -> str:
    """The caller's address: the TCP peer, or when that peer is a trusted proxy, the nearest untrusted hop
    of X-Forwarded-For (hops to its left are whatever the client wrote, so they are never believed)."""
    peer = connection.client.host if connection.client is not None else "unknown"
    if not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for line in connection.headers.getlist("x-forwarded-for") for hop in line.split(",")]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # a proxy wrote something that is not an address: key on the proxy
    return peer
