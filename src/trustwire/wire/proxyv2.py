"""PROXY protocol version 2 header, sans-IO (haproxy's proxy-protocol.txt, section 2.2).

A tunnel server writes this header to the backend before any client byte, so
the backend learns who is really calling: the client's address, and in TLVs
the TLS facts and the verified client identity.

Layout: 12-byte signature, version/command byte (0x21: v2, PROXY; 0x20:
LOCAL), family/transport byte (0x11 TCP/IPv4, 0x21 TCP/IPv6, 0x00 unspecified),
2-byte length of what follows, the addresses (IPv4: 4+4+2+2 bytes, IPv6:
16+16+2+2), then TLVs (type, 2-byte length, value).

TLVs trustwire sends:

* ``PP2_TYPE_SSL`` (0x20): client flags (SSL, certificate on this connection),
  verify result 0, and sub-TLVs ``SSL_VERSION`` (0x21), ``SSL_CN`` (0x22),
  ``SSL_CIPHER`` (0x23), as haproxy's ``send-proxy-v2-ssl-cn`` does;
* ``0xE0`` (application range): the client certificate's SHA-256, 32 raw bytes;
* ``0xE1``: one per URI SAN of the client certificate (SPIFFE IDs).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from trustwire.errors import RemoteProtocolError
from trustwire.wire.events import NEED_DATA, NeedData

__all__ = [
    "SIGNATURE",
    "TYPE_FINGERPRINT",
    "TYPE_SSL",
    "TYPE_URI",
    "ProxyDecoder",
    "ProxyHeader",
    "encode",
]

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
TYPE_ALPN = 0x01
TYPE_AUTHORITY = 0x02
TYPE_SSL = 0x20
SUBTYPE_SSL_VERSION = 0x21
SUBTYPE_SSL_CN = 0x22
SUBTYPE_SSL_CIPHER = 0x23
TYPE_FINGERPRINT = 0xE0
TYPE_URI = 0xE1
CLIENT_SSL = 0x01
CLIENT_CERT_CONN = 0x02
CLIENT_CERT_SESS = 0x04

MAX_HEADER = 16 + 65535
_FAMILY_V4 = 0x11
_FAMILY_V6 = 0x21


@dataclass(frozen=True, kw_only=True)
class ProxyHeader:
    """What a PROXY v2 header says."""

    source: tuple[str, int] | None
    """Client address and port; None for a LOCAL (health check) header."""
    destination: tuple[str, int] | None
    """The address the client connected to."""
    tls_version: str | None = None
    common_name: str | None = None
    cipher: str | None = None
    client_cert: bool = False
    """The client presented a certificate on this connection (and it verified)."""
    fingerprint: str | None = None
    """SHA-256 of the client certificate, lower-case hex."""
    uris: tuple[str, ...] = ()
    extra: tuple[tuple[int, bytes], ...] = ()
    """TLVs this codec does not interpret, as (type, value)."""


def _tlv(kind: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("a TLV value is at most 65535 bytes")
    return struct.pack(">BH", kind, len(value)) + value


def encode(header: ProxyHeader) -> bytes:
    """The header's bytes.

    Raises:
        ValueError: mixed address families, or the header would exceed 64 KiB.
    """
    if header.source is None or header.destination is None:
        command, family, addresses = 0x20, 0x00, b""
    else:
        src = ipaddress.ip_address(header.source[0].strip("[]"))
        dst = ipaddress.ip_address(header.destination[0].strip("[]"))
        if src.version != dst.version:
            src, dst = _same_family(src, dst)
        family = _FAMILY_V4 if src.version == 4 else _FAMILY_V6
        addresses = src.packed + dst.packed + struct.pack(">HH", header.source[1],
                                                          header.destination[1])
        command = 0x21
    tlvs = b""
    if header.tls_version is not None or header.common_name is not None or header.client_cert:
        subs = b""
        if header.tls_version:
            subs += _tlv(SUBTYPE_SSL_VERSION, header.tls_version.encode())
        if header.common_name:
            subs += _tlv(SUBTYPE_SSL_CN, header.common_name.encode())
        if header.cipher:
            subs += _tlv(SUBTYPE_SSL_CIPHER, header.cipher.encode())
        flags = CLIENT_SSL | (CLIENT_CERT_CONN | CLIENT_CERT_SESS if header.client_cert else 0)
        tlvs += _tlv(TYPE_SSL, struct.pack(">BI", flags, 0) + subs)
    if header.fingerprint:
        tlvs += _tlv(TYPE_FINGERPRINT, bytes.fromhex(header.fingerprint))
    for uri in header.uris:
        tlvs += _tlv(TYPE_URI, uri.encode())
    for kind, value in header.extra:
        tlvs += _tlv(kind, value)
    body = addresses + tlvs
    if len(body) > 0xFFFF:
        raise ValueError("the PROXY header would exceed 64 KiB")
    return SIGNATURE + struct.pack(">BBH", command, family, len(body)) + body


def _same_family(
    src: ipaddress.IPv4Address | ipaddress.IPv6Address, dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]:
    """Map an IPv4 address into IPv6 (::ffff:a.b.c.d) so both fit one family."""
    def six(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
        return a if isinstance(a, ipaddress.IPv6Address) else ipaddress.IPv6Address(f"::ffff:{a}")
    return six(src), six(dst)


class ProxyDecoder:
    """Parse a PROXY v2 header at the start of a stream (for backends and tests).

    ``receive_data`` bytes until ``next_event`` returns a :class:`ProxyHeader`;
    ``remainder`` then holds the bytes after the header (the client's data).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.remainder = b""

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> ProxyHeader | NeedData:
        """Raises RemoteProtocolError for anything that is not a valid v2 header."""
        buf = self._buffer
        if len(buf) < 16:
            if not SIGNATURE.startswith(bytes(buf[:12])):
                raise RemoteProtocolError("the stream does not start with a PROXY v2 signature")
            return NEED_DATA
        if bytes(buf[:12]) != SIGNATURE:
            raise RemoteProtocolError("the stream does not start with a PROXY v2 signature")
        command, family, length = struct.unpack_from(">BBH", buf, 12)
        if command >> 4 != 2 or command & 0x0F not in (0, 1):
            raise RemoteProtocolError(f"unsupported PROXY version/command byte 0x{command:02x}")
        if len(buf) < 16 + length:
            return NEED_DATA
        body = bytes(buf[16:16 + length])
        self.remainder = bytes(buf[16 + length:])
        self._buffer = bytearray()
        if command & 0x0F == 0 or family == 0:
            return self._tlvs(body, None, None)
        sizes = {_FAMILY_V4: 12, _FAMILY_V6: 36}
        if family not in sizes:
            raise RemoteProtocolError(f"unsupported PROXY address family 0x{family:02x}")
        size = sizes[family]
        if length < size:
            raise RemoteProtocolError("the PROXY header is shorter than its addresses")
        half = (size - 4) // 2
        src = str(ipaddress.ip_address(body[:half]))
        dst = str(ipaddress.ip_address(body[half:2 * half]))
        sport, dport = struct.unpack_from(">HH", body, 2 * half)
        return self._tlvs(body[size:], (src, sport), (dst, dport))

    @staticmethod
    def _tlvs(data: bytes, source: tuple[str, int] | None,
              destination: tuple[str, int] | None) -> ProxyHeader:
        fields: dict[str, object] = {}
        uris: list[str] = []
        extra: list[tuple[int, bytes]] = []
        for kind, value in _iter_tlvs(data):
            if kind == TYPE_SSL:
                if len(value) < 5:
                    raise RemoteProtocolError("a PP2_TYPE_SSL TLV is too short")
                flags = value[0]
                fields["client_cert"] = bool(flags & CLIENT_CERT_CONN)
                for sub, sub_value in _iter_tlvs(value[5:]):
                    text = sub_value.decode("utf-8", "replace")
                    if sub == SUBTYPE_SSL_VERSION:
                        fields["tls_version"] = text
                    elif sub == SUBTYPE_SSL_CN:
                        fields["common_name"] = text
                    elif sub == SUBTYPE_SSL_CIPHER:
                        fields["cipher"] = text
            elif kind == TYPE_FINGERPRINT:
                fields["fingerprint"] = value.hex()
            elif kind == TYPE_URI:
                uris.append(value.decode("utf-8", "replace"))
            else:
                extra.append((kind, value))
        return ProxyHeader(source=source, destination=destination, uris=tuple(uris),
                           extra=tuple(extra), **fields)  # type: ignore[arg-type]


def _iter_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    result = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise RemoteProtocolError("a PROXY TLV header is truncated")
        kind, length = struct.unpack_from(">BH", data, offset)
        offset += 3
        if offset + length > len(data):
            raise RemoteProtocolError("a PROXY TLV value is truncated")
        result.append((kind, data[offset:offset + length]))
        offset += length
    return result
