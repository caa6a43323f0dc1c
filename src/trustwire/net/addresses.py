"""Network addresses, parsed and printed in one place: ``host:port``, ``[v6]:port``, ``:port``."""

from __future__ import annotations

import asyncio
import ipaddress

from trustwire.errors import ConfigError

__all__ = ["format_addresses", "format_hostport", "is_loopback", "parse_hostport", "peer_of",
           "source_key"]


def parse_hostport(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces); brackets are removed.

    Raises:
        ConfigError: malformed, or the port is outside 0-65535.
    """
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ConfigError(f"{value!r} is not [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ConfigError(f"{value!r} is not HOST:PORT")
        if ":" in host:
            raise ConfigError(f"write IPv6 addresses in brackets: [{host}]:{port_text}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{port_text!r} is not a port number (0-65535)")
    return host, int(port_text)


def format_hostport(host: str, port: int | str) -> str:
    """The printable form: IPv6 addresses get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_addresses(addresses: list[tuple[str, int]]) -> str:
    return ", ".join(format_hostport(h, p) for h, p in addresses)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP: where listening is safe without an --unsafe-* flag."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def peer_of(transport: asyncio.BaseTransport) -> tuple[str, str] | None:
    """``(host, "host:port")`` of a connected transport's peer, or None (a Unix socket)."""
    address = transport.get_extra_info("peername")
    if not address or not isinstance(address, tuple):
        return None
    host = str(address[0])
    return host, format_hostport(host, address[1])


def source_key(host: str) -> str:
    """Who a connection comes from, for per-source limits: an IPv4 address, or an IPv6
    /64 (one host routinely owns a whole /64, so single v6 addresses would be free to
    spend); IPv4-mapped IPv6 counts as its IPv4 address, loopback as itself."""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.is_loopback:
        return str(address)
    return str(ipaddress.IPv6Network((address, 64), strict=False))
