"""Who may talk FastAGI to the daemon: the ``[agi] allowed_peers`` addresses and networks.

A peer is an address, not an address and port: Asterisk connects from ephemeral ports. On one
host every local process shares 127.0.0.1 with Asterisk, so this list keeps out other hosts,
not other local users; the shared secret is what tells Asterisk from them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_ALLOWED_PEERS = ("127.0.0.1", "::1")


def parse_peers(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses ("127.0.0.1") or networks ("10.1.2.0/24"); ValueError naming a bad one."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"allowed peer {value!r} is not an IP address or network (e.g. 127.0.0.1, "
                "::1, 10.0.0.0/24)"
            ) from None
    return tuple(networks)


def peer_of(peername: Any) -> tuple[str, str]:
    """(address, "address:port" for the log) from a socket's peername."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        address = _normal(str(peername[0]))
        shown = f"[{address}]:{peername[1]}" if ":" in address else f"{address}:{peername[1]}"
        return address, shown
    return "", str(peername)


def _normal(address: str) -> str:
    """The address as one peer: a dual-stack socket's ::ffff:127.0.0.1 is 127.0.0.1."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # no IPv6 zone ("fe80::1%lo")
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class AllowedPeers:
    def __init__(self, values: Iterable[str] = DEFAULT_ALLOWED_PEERS) -> None:
        self.networks = parse_peers(values)

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(_normal(address))
        except ValueError:
            return False  # not an IP socket at all
        return any(ip in net for net in self.networks)
