"""Hand-built ClientHellos and a reader for what the server sends back. Pure, sans-IO.

OpenSSL 3 cannot offer SSL 2.0, SSL 3.0, EXPORT or RC4 suites any more, and it will not
send the malformed messages some checks need (Heartbleed, CCS injection). For those
questions the probe writes the records itself: :func:`client_hello` builds a TLS
ClientHello record from a :class:`HelloSpec` (any version, suites, compression methods
and extensions), :func:`sslv2_client_hello` the SSL 2.0 form, and :class:`ServerFlight`
turns the bytes that come back into records, handshake messages and alerts, whatever
order or fragmentation they arrive in.

Nothing here does IO; :mod:`trustwire.probe.connect` opens the connection.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

__all__ = [
    "ALERT",
    "APPLICATION_DATA",
    "CHANGE_CIPHER_SPEC",
    "DEFAULT_GROUPS",
    "DEFAULT_SIGNATURE_ALGORITHMS",
    "FLIGHT_BYTES",
    "FLIGHT_ITEMS",
    "HANDSHAKE",
    "HEARTBEAT",
    "Alert",
    "HelloSpec",
    "ParsedServerHello",
    "Record",
    "ServerFlight",
    "client_hello",
    "extension",
    "record",
    "sslv2_client_hello",
]

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE, SERVER_HELLO_DONE = 2, 11, 12, 14

DEFAULT_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x0101)
DEFAULT_SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
    0x0402, 0x0202,
)
_MAX_RECORD = 16384 + 2048  # RFC 5246 6.2.3: TLSCiphertext at most 2^14 + 2048
FLIGHT_BYTES = 1 << 20
"""Most bytes a :class:`ServerFlight` reads: a first flight with a chain of ten 16 KiB
certificates is under a fifth of it."""
FLIGHT_ITEMS = 1024
"""Most records plus handshake messages a :class:`ServerFlight` keeps: a real first
flight has a few of each (tiny messages, a HelloRequest stream, would otherwise pile up
by the hundred thousand within the byte limit)."""


def extension(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


def record(content_type: int, version: int, body: bytes) -> bytes:
    return struct.pack(">BHH", content_type, version, len(body)) + body


def _vector(data: bytes, width: int) -> bytes:
    return len(data).to_bytes(width, "big") + data


def _u16s(values: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack(">H", v) for v in values)


@dataclass(frozen=True, kw_only=True)
class HelloSpec:
    """What a hand-built ClientHello offers."""

    version: int = 0x0303
    """client_version: 0x0300 SSL 3.0 ... 0x0303 TLS 1.2."""
    ciphers: tuple[int, ...]
    server_name: str | None = None
    record_version: int | None = None
    """The record layer's version (default: TLS 1.0, or SSL 3.0 for an SSL 3.0 hello)."""
    compression: tuple[int, ...] = (0,)
    """Compression methods: 0 null, 1 DEFLATE (CRIME)."""
    groups: tuple[int, ...] = DEFAULT_GROUPS
    signature_algorithms: tuple[int, ...] = DEFAULT_SIGNATURE_ALGORITHMS
    renegotiation_info: bool = True
    extended_master_secret: bool = True
    session_ticket: bool = True
    heartbeat: bool = False
    """Offer the heartbeat extension (RFC 6520), peer allowed to send."""
    extensions: tuple[tuple[int, bytes], ...] = ()
    """Any further extensions, as (type, body)."""
    random: bytes | None = None


def client_hello(spec: HelloSpec) -> bytes:
    """One handshake record carrying a ClientHello built from ``spec``."""
    extensions = b""
    if spec.version > 0x0300:  # SSL 3.0 servers may choke on extensions
        if spec.server_name:
            name = spec.server_name.encode("idna")
            extensions += extension(0, _vector(b"\x00" + _vector(name, 2), 2))
        if spec.groups:
            extensions += extension(10, _vector(_u16s(spec.groups), 2))
            extensions += extension(11, b"\x01\x00")  # ec_point_formats: uncompressed
        if spec.signature_algorithms and spec.version >= 0x0303:
            extensions += extension(13, _vector(_u16s(spec.signature_algorithms), 2))
        if spec.renegotiation_info:
            extensions += extension(0xFF01, b"\x00")
        if spec.extended_master_secret:
            extensions += extension(23, b"")
        if spec.session_ticket:
            extensions += extension(35, b"")
        if spec.heartbeat:
            extensions += extension(15, b"\x01")
        for kind, body in spec.extensions:
            extensions += extension(kind, body)
    random = spec.random if spec.random is not None else os.urandom(32)
    body = (struct.pack(">H", spec.version) + random + b"\x00"
            + _vector(_u16s(spec.ciphers), 2) + _vector(bytes(spec.compression), 1))
    if extensions:
        body += _vector(extensions, 2)
    message = bytes([1]) + len(body).to_bytes(3, "big") + body
    version = spec.record_version or (0x0300 if spec.version == 0x0300 else 0x0301)
    return record(HANDSHAKE, version, message)


def sslv2_client_hello(cipher_specs: tuple[int, ...], challenge: bytes | None = None) -> bytes:
    """An SSL 2.0 CLIENT-HELLO (3-byte cipher specs, e.g. 0x010080 SSL_CK_RC4_128_WITH_MD5)."""
    challenge = challenge if challenge is not None else os.urandom(16)
    specs = b"".join(spec.to_bytes(3, "big") for spec in cipher_specs)
    body = (b"\x01" + struct.pack(">HHHH", 0x0002, len(specs), 0, len(challenge))
            + specs + challenge)
    return struct.pack(">H", 0x8000 | len(body)) + body


@dataclass(frozen=True)
class Record:
    content_type: int
    version: int
    body: bytes


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def fatal(self) -> bool:
        return self.level == 2


@dataclass(frozen=True)
class ParsedServerHello:
    """A TLS ServerHello with its extensions, or an SSL 2.0 SERVER-HELLO."""

    version: int
    cipher: int
    compression: int
    extensions: dict[int, bytes]
    session_id: bytes = b""
    sslv2_ciphers: tuple[int, ...] = ()
    """For SSL 2.0: the cipher specs the server offered."""

    @property
    def sslv2(self) -> bool:
        return self.version == 0x0002


def parse_server_hello_body(body: bytes) -> ParsedServerHello:
    """The body of a ServerHello (after the 4-byte header). Raises ValueError if malformed."""
    if len(body) < 38:
        raise ValueError("ServerHello too short")
    version = struct.unpack_from(">H", body, 0)[0]
    sid_len = body[34]
    offset = 35 + sid_len
    if offset + 3 > len(body):
        raise ValueError("ServerHello truncated")
    session_id = body[35:offset]
    cipher = struct.unpack_from(">H", body, offset)[0]
    compression = body[offset + 2]
    offset += 3
    extensions: dict[int, bytes] = {}
    if offset + 2 <= len(body):
        end = offset + 2 + struct.unpack_from(">H", body, offset)[0]
        if end > len(body):
            raise ValueError("ServerHello extensions truncated")
        offset += 2
        while offset + 4 <= end:
            kind, length = struct.unpack_from(">HH", body, offset)
            if offset + 4 + length > end:
                raise ValueError("ServerHello extension truncated")
            extensions[kind] = body[offset + 4:offset + 4 + length]
            offset += 4 + length
    if 43 in extensions and len(extensions[43]) == 2:  # supported_versions: TLS 1.3
        version = struct.unpack(">H", extensions[43])[0]
    return ParsedServerHello(version=version, cipher=cipher, compression=compression,
                             extensions=extensions, session_id=session_id)


def _parse_sslv2_server_hello(body: bytes) -> ParsedServerHello:
    # msg type 4, session-id-hit, certificate type, version(2), cert len, specs len, conn-id len
    if len(body) < 11 or body[0] != 4:
        raise ValueError("not an SSL 2.0 SERVER-HELLO")
    version, cert_len, specs_len = struct.unpack_from(">HHH", body, 3)
    start = 11 + cert_len
    specs = body[start:start + specs_len]
    ciphers = tuple(int.from_bytes(specs[i:i + 3], "big") for i in range(0, len(specs) - 2, 3))
    return ParsedServerHello(version=version, cipher=0, compression=0, extensions={},
                             sslv2_ciphers=ciphers)


@dataclass
class ServerFlight:
    """Sans-IO reader of the server's side: feed bytes, read records, messages and alerts.

    It stops at the first thing that makes the rest unreadable (an unparseable record, a
    record over the size limit) or more than any first flight holds (:data:`FLIGHT_BYTES`,
    :data:`FLIGHT_ITEMS`), and says so in :attr:`malformed`.
    """

    buffer: bytearray = field(default_factory=bytearray)
    records: list[Record] = field(default_factory=list)
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    """Handshake messages, (type, body), reassembled across records."""
    alerts: list[Alert] = field(default_factory=list)
    malformed: str | None = None
    sslv2_hello: ParsedServerHello | None = None
    received: int = 0
    """Bytes fed so far."""
    _handshake: bytearray = field(default_factory=bytearray)
    _first: bool = True

    def feed(self, data: bytes) -> None:
        if self.malformed is not None:
            return
        self.received += len(data)
        if self.received > FLIGHT_BYTES:
            self.malformed = f"more than {FLIGHT_BYTES >> 20} MiB from the server"
            return
        self.buffer += data
        while self.malformed is None:
            if len(self.records) + len(self.messages) > FLIGHT_ITEMS:
                self.malformed = f"more than {FLIGHT_ITEMS} records and messages from the server"
                return
            if self._first and self.buffer and self.buffer[0] & 0x80:
                if not self._read_sslv2():
                    return
                continue
            if len(self.buffer) < 5:
                return
            content_type, version, length = struct.unpack_from(">BHH", self.buffer, 0)
            if content_type not in (20, 21, 22, 23, 24) or length > _MAX_RECORD:
                self.malformed = "not a TLS record"
                return
            if len(self.buffer) < 5 + length:
                return
            self._first = False
            body = bytes(self.buffer[5:5 + length])
            del self.buffer[:5 + length]
            self.records.append(Record(content_type, version, body))
            if content_type == HANDSHAKE:
                self._handshake += body
                self._split_messages()
            elif content_type == ALERT and len(body) >= 2:
                self.alerts.append(Alert(body[0], body[1]))

    def _read_sslv2(self) -> bool:
        if len(self.buffer) < 2:
            return False
        length = ((self.buffer[0] & 0x7F) << 8) | self.buffer[1]
        if len(self.buffer) < 2 + length:
            return False
        body = bytes(self.buffer[2:2 + length])
        del self.buffer[:2 + length]
        self._first = False
        try:
            self.sslv2_hello = _parse_sslv2_server_hello(body)
        except (ValueError, struct.error):
            self.malformed = "not an SSL 2.0 SERVER-HELLO"
        return True

    def _split_messages(self) -> None:
        while len(self._handshake) >= 4 and len(self.messages) <= FLIGHT_ITEMS:
            length = int.from_bytes(self._handshake[1:4], "big")
            if len(self._handshake) < 4 + length:
                return
            self.messages.append((self._handshake[0], bytes(self._handshake[4:4 + length])))
            del self._handshake[:4 + length]

    def first(self, kind: int) -> bytes | None:
        for msg_type, body in self.messages:
            if msg_type == kind:
                return body
        return None

    @property
    def server_hello(self) -> ParsedServerHello | None:
        if self.sslv2_hello is not None:
            return self.sslv2_hello
        body = self.first(SERVER_HELLO)
        if body is None:
            return None
        try:
            return parse_server_hello_body(body)
        except (ValueError, struct.error):
            return None

    @property
    def hello_done(self) -> bool:
        """The server's first flight is complete (or ended): nothing more comes unasked."""
        if self.alerts or self.malformed or self.sslv2_hello is not None:
            return True
        hello = self.server_hello
        if hello is not None and hello.version == 0x0304:
            return True  # the rest is encrypted
        return self.first(SERVER_HELLO_DONE) is not None

    @property
    def alert(self) -> Alert | None:
        return self.alerts[0] if self.alerts else None
