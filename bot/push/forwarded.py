"""Who sent a request: the connecting address, or, behind a trusted reverse proxy, the client it names.

``X-Forwarded-For`` is a comma-separated list each proxy appends its own peer to, so only its right-hand end
can be believed: entries are read from the right, skipping proxies listed in ``[server] trusted_proxies``, and
the first address not in that list is the client. Anything further left was written by the client itself and
is ignored. The header means nothing unless the connecting peer is a trusted proxy (anyone can send it).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN_ADDRESS = "unknown"


# Parsing an address costs a few microseconds, and the same few peers (socket addresses, never header text) send
# every request: their parsed forms are kept, in a bounded cache.
_PEERS_REMEMBERED = 1024


def parse_ip(text: str | None) -> IPAddress | None:
    """An IP address from a peer name or an ``X-Forwarded-For`` entry, or None if it holds none.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]:443``; an IPv4-mapped IPv6
    address (``::ffff:1.2.3.4``, seen on dual-stack sockets) becomes the IPv4 address it maps.
    """
    if not text:
        return None
    candidate = text.strip()
    if candidate.startswith("["):
        candidate = candidate[1 : candidate.find("]")] if "]" in candidate else ""
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The address the throttle and the logs should know a request by.

    ``peer`` is the connecting address; ``forwarded_for`` every ``X-Forwarded-For`` header, in order.
    """
    if not trusted:
        return _peer_address(peer)
    peer_ip = _parse_peer(peer)
    if peer_ip is None:
        return peer or UNKNOWN_ADDRESS
    if not is_trusted(peer_ip, trusted):
        return str(peer_ip)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer_ip
    for hop in reversed(hops):
        hop_ip = parse_ip(hop)
        if hop_ip is None:
            # A trusted proxy wrote something that is not an address (e.g. "unknown"): the nearest address
            # a trusted hop vouched for is the best there is.
            break
        client = hop_ip
        if not is_trusted(hop_ip, trusted):
            break
    return str(client)


_parse_peer = functools.lru_cache(maxsize=_PEERS_REMEMBERED)(parse_ip)


@functools.lru_cache(maxsize=_PEERS_REMEMBERED)
def _peer_address(peer: str | None) -> str:
    """The connecting address as the throttle and the logs know it (``::ffff:1.2.3.4`` as ``1.2.3.4``)."""
    peer_ip = _parse_peer(peer)
    return (peer or UNKNOWN_ADDRESS) if peer_ip is None else str(peer_ip)
