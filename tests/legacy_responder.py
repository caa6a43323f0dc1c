"""A TLS server's first flight, answered the way old or careless implementations do.

Debian has no server that speaks SSL 2.0/3.0, RC4, EXPORT or DEFLATE any more, nor one that
ignores TLS_FALLBACK_SCSV or renegotiation_info, so :class:`LegacyResponder` plays one: a
thread listening on 127.0.0.1 that reads each ClientHello (hand-built or OpenSSL's) and
answers as its :class:`Behaviour` says, with a ServerHello and ServerHelloDone (no
certificate: the probe only reads the server's choices), an alert, or an SSL 2.0
SERVER-HELLO. It never finishes a handshake; an OpenSSL client gives up after the
ServerHello, which its message callback has already recorded.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from trustwire.probe.hello import ALERT, HANDSHAKE, record

FALLBACK_SCSV, EMPTY_RENEGOTIATION_INFO_SCSV = 0x5600, 0x00FF


@dataclass(frozen=True)
class ClientHello:
    version: int
    ciphers: tuple[int, ...]
    compression: tuple[int, ...]
    extensions: dict[int, bytes]
    session_id: bytes = b""

    @property
    def max_version(self) -> int:
        """The highest version offered, supported_versions (TLS 1.3 clients) included."""
        versions = self.extensions.get(43)
        if versions:
            offered = [struct.unpack_from(">H", versions, 1 + i)[0]
                       for i in range(0, versions[0], 2)]
            return max(v for v in offered if 0x0300 <= v <= 0x0304)  # GREASE aside
        return self.version


@dataclass(frozen=True)
class SSLv2ClientHello:
    ciphers: tuple[int, ...]


def parse_client_hello(data: bytes) -> ClientHello | SSLv2ClientHello:
    """One ClientHello record (or SSL 2.0 CLIENT-HELLO). Raises ValueError if malformed."""
    if data and data[0] & 0x80:
        body = data[2:]
        if body[0] != 1:
            raise ValueError("not an SSL 2.0 CLIENT-HELLO")
        specs_len = struct.unpack_from(">H", body, 3)[0]
        specs = body[9:9 + specs_len]
        return SSLv2ClientHello(tuple(int.from_bytes(specs[i:i + 3], "big")
                                      for i in range(0, specs_len, 3)))
    if len(data) < 9 or data[0] != HANDSHAKE or data[5] != 1:
        raise ValueError("not a ClientHello record")
    body = data[9:]
    version = struct.unpack_from(">H", body, 0)[0]
    offset = 34
    session_id = body[offset + 1:offset + 1 + body[offset]]
    offset += 1 + body[offset]
    suites_len = struct.unpack_from(">H", body, offset)[0]
    ciphers = tuple(struct.unpack_from(">H", body, offset + 2 + i)[0]
                    for i in range(0, suites_len, 2))
    offset += 2 + suites_len
    compression = tuple(body[offset + 1:offset + 1 + body[offset]])
    offset += 1 + body[offset]
    extensions: dict[int, bytes] = {}
    if offset + 2 <= len(body):
        end = offset + 2 + struct.unpack_from(">H", body, offset)[0]
        offset += 2
        while offset + 4 <= end:
            kind, length = struct.unpack_from(">HH", body, offset)
            extensions[kind] = body[offset + 4:offset + 4 + length]
            offset += 4 + length
    return ClientHello(version, ciphers, compression, extensions, session_id)


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    versions: tuple[int, ...] = (0x0303,)
    """The versions it accepts (0x0300 SSL 3.0 ... 0x0303 TLS 1.2; no TLS 1.3)."""
    suites: tuple[int, ...] = (0xC02F,)
    """The suites it accepts, in its order of preference."""
    sslv2_specs: tuple[int, ...] = ()
    """Answer an SSL 2.0 CLIENT-HELLO with these cipher specs (none: close)."""
    compression: bool = False
    """Pick DEFLATE when offered."""
    extended_master_secret: bool = True
    renegotiation_info: bool = True
    honours_fallback_scsv: bool = True
    silent_to_sslv2: bool = False
    """Say nothing to an SSL 2.0 CLIENT-HELLO (until the client gives up)."""


def server_hello(version: int, cipher: int, compression: int, extensions: bytes,
                 session_id: bytes = b"") -> bytes:
    body = (struct.pack(">H", version) + b"\x42" * 32 + bytes([len(session_id)]) + session_id
            + struct.pack(">HB", cipher, compression))
    if extensions:
        body += struct.pack(">H", len(extensions)) + extensions
    return b"\x02" + len(body).to_bytes(3, "big") + body


def answer(behaviour: Behaviour, hello: ClientHello | SSLv2ClientHello) -> bytes | None:
    """What this server sends back to ``hello`` (empty: close without a word; None: say
    nothing and wait)."""
    if isinstance(hello, SSLv2ClientHello):
        if behaviour.silent_to_sslv2:
            return None
        if not behaviour.sslv2_specs:
            return b""
        specs = [s for s in behaviour.sslv2_specs if s in hello.ciphers]
        cert, spec_bytes, conn_id = b"\x30\x03\x02\x01\x00", b"".join(
            s.to_bytes(3, "big") for s in specs), b"c" * 16
        body = (b"\x04\x00\x01" + struct.pack(">HHHH", 0x0002, len(cert), len(spec_bytes),
                                               len(conn_id)) + cert + spec_bytes + conn_id)
        return struct.pack(">H", 0x8000 | len(body)) + body
    wanted = min(hello.max_version, 0x0303)
    usable = [v for v in behaviour.versions if v <= wanted]
    if not usable:
        return record(ALERT, 0x0301, b"\x02\x46")  # protocol_version
    version = max(usable)
    if (FALLBACK_SCSV in hello.ciphers and behaviour.honours_fallback_scsv
            and version < max(behaviour.versions)):
        return record(ALERT, version, b"\x02\x56")  # inappropriate_fallback
    cipher = next((s for s in behaviour.suites if s in hello.ciphers), None)
    if cipher is None:
        return record(ALERT, version, b"\x02\x28")  # handshake_failure
    extensions = b""
    if version > 0x0300:
        if behaviour.renegotiation_info and (0xFF01 in hello.extensions
                                              or EMPTY_RENEGOTIATION_INFO_SCSV in hello.ciphers):
            extensions += struct.pack(">HHB", 0xFF01, 1, 0)
        if behaviour.extended_master_secret and 23 in hello.extensions:
            extensions += struct.pack(">HH", 23, 0)
    compression = 1 if behaviour.compression and 1 in hello.compression else 0
    flight = server_hello(version, cipher, compression, extensions) + b"\x0e\x00\x00\x00"
    return record(HANDSHAKE, version, flight)


def _read_hello(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 5:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    need = (((data[0] & 0x7F) << 8 | data[1]) + 2 if data[0] & 0x80
            else struct.unpack_from(">H", data, 3)[0] + 5)
    while len(data) < need:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 64  # the probe opens up to --concurrency connections at once


@dataclass
class LegacyResponder:
    """Listens on 127.0.0.1 (``port``) while in a ``with`` block."""

    behaviour: Behaviour
    port: int = 0
    hellos: list[ClientHello | SSLv2ClientHello] = field(default_factory=list)
    _server: _Server | None = None

    def __enter__(self) -> LegacyResponder:
        responder = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5)
                with contextlib.suppress(OSError, ValueError, IndexError, struct.error):
                    hello = parse_client_hello(_read_hello(sock))
                    responder.hellos.append(hello)
                    reply = answer(responder.behaviour, hello)
                    if reply is None or reply:
                        sock.sendall(reply or b"")
                        while sock.recv(65536):  # until the client gives up (or 5 s)
                            pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def responder(**behaviour: object) -> Iterator[LegacyResponder]:
    with LegacyResponder(Behaviour(**behaviour)) as running:  # type: ignore[arg-type]
        yield running
