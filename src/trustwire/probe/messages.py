"""Parse the TLS handshake messages a probe observes. Pure.

The probe records every handshake message (``SSLContext._msg_callback``
hands them over decrypted, TLS 1.3 included) and reads here what Python's
``ssl`` does not expose: the version, suite and group the server chose
(ServerHello, ServerKeyExchange), whether it asked for a client certificate
(CertificateRequest), the whole certificate chain it sent (Certificate) and
a stapled OCSP response (CertificateStatus in TLS 1.2, a Certificate entry
extension in TLS 1.3). Messages arrive whole, with their 4-byte header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["GROUP_BITS", "GROUP_NAMES", "LOG_BYTES", "LOG_MESSAGES", "HandshakeLog", "ServerHello",
           "parse_server_hello"]

CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET = 1, 2, 4
CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, CERTIFICATE_STATUS = 11, 12, 13, 22

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

GROUP_NAMES = {
    0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1", 0x001D: "x25519",
    0x001E: "x448", 0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",
    0x0103: "ffdhe6144", 0x0104: "ffdhe8192", 0x11EC: "X25519MLKEM768",
}
VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
                 0x0304: "TLSv1.3"}


@dataclass(frozen=True)
class ServerHello:
    version: str
    cipher_id: int
    group: str | None
    """TLS 1.3: the key_share group."""
    retry: bool
    """A HelloRetryRequest: the server wants another group."""


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">H", data, offset)[0])


def _u24(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 3], "big")


def _extensions(data: bytes, offset: int) -> dict[int, bytes]:
    result: dict[int, bytes] = {}
    if offset + 2 > len(data):
        return result
    end = offset + 2 + _u16(data, offset)
    offset += 2
    while offset + 4 <= end:
        kind, length = _u16(data, offset), _u16(data, offset + 2)
        result[kind] = data[offset + 4:offset + 4 + length]
        offset += 4 + length
    return result


def parse_server_hello(message: bytes) -> ServerHello:
    """Raises ValueError on a malformed message."""
    body = message[4:]
    legacy_version = _u16(body, 0)
    random = body[2:34]
    sid_len = body[34]
    offset = 35 + sid_len
    cipher_id = _u16(body, offset)
    extensions = _extensions(body, offset + 3)
    version = legacy_version
    if 43 in extensions and len(extensions[43]) >= 2:  # supported_versions
        version = _u16(extensions[43], 0)
    group = None
    if 51 in extensions and len(extensions[51]) >= 2:  # key_share (group first)
        group = GROUP_NAMES.get(_u16(extensions[51], 0), f"0x{_u16(extensions[51], 0):04x}")
    return ServerHello(version=VERSION_NAMES.get(version, f"0x{version:04x}"), cipher_id=cipher_id,
                       group=group, retry=random == HRR_RANDOM)


def parse_certificate(message: bytes, tls13: bool) -> tuple[list[bytes], bytes | None]:
    """The DER certificates (leaf first) and, for TLS 1.3, a stapled OCSP response."""
    body = message[4:]
    offset = 0
    if tls13:
        offset = 1 + body[0]  # certificate_request_context
    end = offset + 3 + _u24(body, offset)
    if end > len(body):
        raise ValueError("certificate list longer than the message")
    offset += 3
    certs: list[bytes] = []
    ocsp: bytes | None = None
    while offset + 3 <= end:
        length = _u24(body, offset)
        if length == 0 or offset + 3 + length > end:
            raise ValueError("truncated certificate entry")
        certs.append(body[offset + 3:offset + 3 + length])
        offset += 3 + length
        if tls13:
            extensions = _extensions(body, offset)
            if len(certs) == 1 and 5 in extensions:  # status_request on the leaf
                ocsp = _ocsp_from_status(extensions[5])
            offset += 2 + _u16(body, offset)
    return certs, ocsp


def _ocsp_from_status(data: bytes) -> bytes | None:
    """CertificateStatus: status_type (1 = ocsp), then a 3-byte length and the response."""
    if len(data) < 4 or data[0] != 1:
        return None
    return data[4:4 + _u24(data, 1)] or None


def parse_server_key_exchange_group(message: bytes) -> str | None:
    """TLS 1.2 ECDHE: curve_type 3 (named_curve) and the group; None for DHE and others."""
    body = message[4:]
    if len(body) >= 3 and body[0] == 3:
        return GROUP_NAMES.get(_u16(body, 1), f"0x{_u16(body, 1):04x}")
    return None


def parse_server_key_exchange_dh_bits(message: bytes) -> int | None:
    """TLS <= 1.2 DHE: the size in bits of the server's prime ``dh_p`` (its first field)."""
    body = message[4:]
    if len(body) < 3:
        return None
    length = _u16(body, 0)
    prime = body[2:2 + length]
    if length == 0 or len(prime) < length:
        return None
    return int.from_bytes(prime, "big").bit_length()


GROUP_BITS = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521, "x25519": 256, "x448": 448,
              "X25519MLKEM768": 256, "ffdhe2048": 2048, "ffdhe3072": 3072, "ffdhe4096": 4096,
              "ffdhe6144": 6144, "ffdhe8192": 8192}
"""Key exchange strength per group, in the units profiles use: an EC group's field size
(X25519 counts as 256, like P-256, as Mozilla's ``ecdh_param_size`` does), a finite-field
group's prime size."""


LOG_MESSAGES = 256
"""Most handshake messages and alerts a :class:`HandshakeLog` keeps. A real server sends
under a dozen (ServerHello to ServerHelloDone or Finished, a few tickets); OpenSSL silently
skips some kinds (HelloRequest) without returning to Python, so a server that streams them
would otherwise grow the log without end."""
LOG_BYTES = 1 << 20
"""Most bytes of messages a :class:`HandshakeLog` keeps: a chain of ten 16 KiB certificates
(RSA-8192 with long names) is under a fifth of it."""


@dataclass
class HandshakeLog:
    """Messages seen in one handshake, by direction, up to :data:`LOG_MESSAGES` and
    :data:`LOG_BYTES`: past either, nothing more is kept and :attr:`overflowed` is set."""

    received: list[tuple[int, bytes]] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    """Descriptions of the alerts the server sent (an alert is a TLS answer, too)."""
    size: int = 0
    """Bytes kept in :attr:`received`."""
    overflowed: bool = False
    """The server sent more than the log keeps: no real handshake does."""

    def record(self, direction: str, content_type: int, msg_type: int, data: bytes) -> None:
        if direction != "read" or self.overflowed or content_type not in (21, 22):
            return
        if (len(self.received) + len(self.alerts) >= LOG_MESSAGES
                or self.size + len(data) > LOG_BYTES):
            self.overflowed = True
        elif content_type == 22 and len(data) >= 4:
            self.received.append((data[0], bytes(data)))
            self.size += len(data)
        elif content_type == 21 and len(data) >= 2:
            self.alerts.append(data[1])

    def first(self, kind: int) -> bytes | None:
        for msg_type, data in self.received:
            if msg_type == kind:
                return data
        return None

    def server_hello(self) -> ServerHello | None:
        """The last ServerHello: after a HelloRetryRequest, the real one (``retry`` is only
        true when the handshake stopped at the HelloRetryRequest)."""
        data = next((d for kind, d in reversed(self.received) if kind == SERVER_HELLO), None)
        if data is None:
            return None
        try:
            return parse_server_hello(data)
        except (ValueError, IndexError, struct.error):
            return None

    @property
    def certificate_requested(self) -> bool:
        return self.first(CERTIFICATE_REQUEST) is not None

    @property
    def ticket_received(self) -> bool:
        return self.first(NEW_SESSION_TICKET) is not None

    def chain_and_ocsp(self) -> tuple[list[bytes], bytes | None]:
        data = self.first(CERTIFICATE)
        hello = self.server_hello()
        if data is None:
            return [], None
        try:
            certs, ocsp = parse_certificate(data, tls13=bool(hello and hello.version == "TLSv1.3"))
        except (ValueError, IndexError, struct.error):
            return [], None
        status = self.first(CERTIFICATE_STATUS)
        if status is not None and ocsp is None:
            ocsp = _ocsp_from_status(status[4:])
        return certs, ocsp

    def dh_bits(self) -> int | None:
        kx = self.first(SERVER_KEY_EXCHANGE)
        return parse_server_key_exchange_dh_bits(kx) if kx is not None else None

    def group(self) -> str | None:
        hello = self.server_hello()
        if hello is not None and hello.group:
            return hello.group
        kx = self.first(SERVER_KEY_EXCHANGE)
        return parse_server_key_exchange_group(kx) if kx is not None else None
