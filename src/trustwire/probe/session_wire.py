"""Parse and build what the session checks read off the wire: NewSessionTicket messages,
SCT lists and the extensions that carry them. Pure, sans-IO.

Handshake messages arrive whole, with their 4-byte header, as
:class:`~trustwire.probe.messages.HandshakeLog` records them. Every parser raises
``ValueError`` (and only that) on malformed input; the builders exist so the parsers can
be property-tested, and so tests can serve real SCTs.

- NewSessionTicket (RFC 5077 3.3 for TLS 1.2, RFC 8446 4.6.1 for TLS 1.3): the lifetime
  and, in TLS 1.3, the early_data extension whose ``max_early_data_size`` says the server
  will take 0-RTT data on a connection resumed with this ticket.
- SignedCertificateTimestampList (RFC 6962 3.3): the SCTs a server sends in its
  signed_certificate_timestamp extension (18): in the TLS 1.2 ServerHello, in TLS 1.3 in
  the leaf's CertificateEntry (RFC 8446 4.4.2); some servers put it in
  EncryptedExtensions, which the probe reads too.
"""

from __future__ import annotations

import base64
import datetime as dt
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509 import ocsp

from trustwire.pki.extensions import find_extension, unparsable

__all__ = [
    "EARLY_DATA",
    "SIGNED_CERTIFICATE_TIMESTAMP",
    "Sct",
    "SessionTicket",
    "build_new_session_ticket",
    "build_sct",
    "build_sct_list",
    "embedded_scts",
    "must_staple",
    "ocsp_scts",
    "encrypted_extensions",
    "leaf_entry_extensions",
    "parse_new_session_ticket",
    "parse_sct_list",
    "server_hello_extensions",
]

SIGNED_CERTIFICATE_TIMESTAMP, EARLY_DATA = 18, 42
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SessionTicket:
    """One NewSessionTicket."""

    lifetime: int
    """Seconds: TLS 1.2's ticket_lifetime_hint (0: unspecified), TLS 1.3's ticket_lifetime."""
    max_early_data: int | None
    """TLS 1.3 early_data extension: bytes of 0-RTT data the server takes (None: absent)."""
    size: int
    """Length of the opaque ticket."""


@dataclass(frozen=True)
class Sct:
    """One signed certificate timestamp (the signature is not checked: no log list here)."""

    version: int
    """0 is v1; other versions carry no log ID we can read (``log_id`` is empty)."""
    log_id: bytes
    timestamp: dt.datetime | None

    def as_json(self) -> dict[str, str | int | None]:
        return {"version": self.version, "log_id": base64.b64encode(self.log_id).decode(),
                "timestamp": self.timestamp.isoformat() if self.timestamp else None}


class _Reader:
    """Reads big-endian fields, raising ValueError past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.offset + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def vector(self, width: int) -> bytes:
        return self.take(self.uint(width))

    @property
    def done(self) -> bool:
        return self.offset == len(self.data)


def _extension_block(data: bytes) -> dict[int, bytes]:
    """``Extension extensions<..2^16-1>``: type -> body (the first of a repeated type)."""
    reader = _Reader(data)
    found: dict[int, bytes] = {}
    while not reader.done:
        kind = reader.uint(2)
        body = reader.vector(2)
        found.setdefault(kind, body)
    return found


def _body(message: bytes, msg_type: int) -> bytes:
    if len(message) < 4 or message[0] != msg_type:
        raise ValueError(f"not a handshake message of type {msg_type}")
    body = message[4:]
    if int.from_bytes(message[1:4], "big") != len(body):
        raise ValueError("handshake length does not match")
    return body


def parse_new_session_ticket(message: bytes, *, tls13: bool) -> SessionTicket:
    """A NewSessionTicket (type 4). Raises ValueError."""
    reader = _Reader(_body(message, 4))
    lifetime = reader.uint(4)
    max_early_data = None
    if tls13:
        reader.take(4)  # ticket_age_add
        reader.vector(1)  # ticket_nonce
        ticket = reader.vector(2)
        extensions = _extension_block(reader.vector(2))
        if EARLY_DATA in extensions:
            if len(extensions[EARLY_DATA]) != 4:
                raise ValueError("early_data extension is not a uint32")
            max_early_data = int.from_bytes(extensions[EARLY_DATA], "big")
    else:
        ticket = reader.vector(2)
    if not reader.done:
        raise ValueError("bytes after the ticket")
    return SessionTicket(lifetime=lifetime, max_early_data=max_early_data, size=len(ticket))


def build_new_session_ticket(ticket: bytes, lifetime: int, *, tls13: bool, age_add: int = 0,
                             nonce: bytes = b"", max_early_data: int | None = None) -> bytes:
    """The inverse of :func:`parse_new_session_ticket`."""
    body = struct.pack(">I", lifetime)
    if tls13:
        extensions = b"" if max_early_data is None else struct.pack(
            ">HHI", EARLY_DATA, 4, max_early_data)
        body += (struct.pack(">IB", age_add, len(nonce)) + nonce
                 + struct.pack(">H", len(ticket)) + ticket
                 + struct.pack(">H", len(extensions)) + extensions)
    else:
        body += struct.pack(">H", len(ticket)) + ticket
    return bytes([4]) + len(body).to_bytes(3, "big") + body


def parse_sct_list(data: bytes) -> list[Sct]:
    """A SignedCertificateTimestampList. Raises ValueError."""
    outer = _Reader(data)
    entries = _Reader(outer.vector(2))
    if not outer.done:
        raise ValueError("bytes after the SCT list")
    scts = []
    while not entries.done:
        sct = _Reader(entries.vector(2))
        version = sct.uint(1)
        if version != 0:
            scts.append(Sct(version=version, log_id=b"", timestamp=None))
            continue
        log_id = sct.take(32)
        millis = sct.uint(8)
        sct.vector(2)  # extensions
        sct.take(2)  # SignatureAndHashAlgorithm
        sct.vector(2)  # signature
        if not sct.done:
            raise ValueError("bytes after an SCT")
        try:
            stamp: dt.datetime | None = _EPOCH + dt.timedelta(milliseconds=millis)
        except OverflowError:
            stamp = None
        scts.append(Sct(version=0, log_id=log_id, timestamp=stamp))
    return scts


def build_sct(log_id: bytes, millis: int, signature: bytes = b"\x30\x00",
              extensions: bytes = b"") -> bytes:
    """One v1 SCT (ecdsa_sha256 signature field; the signature is not a real one)."""
    if len(log_id) != 32:
        raise ValueError("a log ID is 32 bytes")
    return (b"\x00" + log_id + struct.pack(">QH", millis, len(extensions)) + extensions
            + b"\x04\x03" + struct.pack(">H", len(signature)) + signature)


def build_sct_list(scts: list[bytes]) -> bytes:
    """A SignedCertificateTimestampList of serialized SCTs (see :func:`build_sct`)."""
    inner = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    return struct.pack(">H", len(inner)) + inner


def server_hello_extensions(message: bytes) -> dict[int, bytes]:
    """The extensions of a ServerHello (type 2). Raises ValueError."""
    reader = _Reader(_body(message, 2))
    reader.take(2 + 32)  # legacy_version, random
    reader.vector(1)  # session id
    reader.take(3)  # cipher suite, compression
    if reader.done:
        return {}
    return _extension_block(reader.vector(2))


def encrypted_extensions(message: bytes) -> dict[int, bytes]:
    """The extensions of a TLS 1.3 EncryptedExtensions (type 8). Raises ValueError."""
    reader = _Reader(_body(message, 8))
    return _extension_block(reader.vector(2))


def leaf_entry_extensions(message: bytes) -> dict[int, bytes]:
    """The extensions of the first CertificateEntry of a TLS 1.3 Certificate (type 11).
    Raises ValueError."""
    reader = _Reader(_body(message, 11))
    reader.vector(1)  # certificate_request_context
    entries = _Reader(reader.vector(3))
    if entries.done:
        return {}
    entries.vector(3)  # the leaf's DER
    return _extension_block(entries.vector(2))


def _from_cryptography(entries: x509.PrecertificateSignedCertificateTimestamps
                       | x509.SignedCertificateTimestamps) -> list[Sct]:
    return [Sct(version=sct.version.value, log_id=sct.log_id,
                timestamp=sct.timestamp.replace(tzinfo=dt.UTC)) for sct in entries]


def embedded_scts(cert: x509.Certificate) -> list[Sct]:
    """The SCTs embedded in a certificate (RFC 6962 3.3, OID 1.3.6.1.4.1.11129.2.4.2).
    Raises ValueError when the extension is malformed."""
    try:
        value = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        return []
    return _from_cryptography(value)


def ocsp_scts(der: bytes) -> list[Sct]:
    """The SCTs in a stapled OCSP response's single extension (OID 1.3.6.1.4.1.11129.2.4.5).
    Raises ValueError when the response is malformed."""
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return []
    try:
        value = response.single_extensions.get_extension_for_class(
            x509.SignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        return []
    return _from_cryptography(value)


def must_staple(cert: x509.Certificate) -> bool | None:
    """The TLS Feature extension (RFC 7633, OID 1.3.6.1.5.5.7.1.24) lists status_request:
    the certificate promises a stapled OCSP response on every handshake. None when the
    certificate's extensions cannot be parsed (:func:`trustwire.pki.extensions.unparsable`)."""
    if unparsable(cert) is not None:
        return None
    features = find_extension(cert, x509.TLSFeature)
    return features is not None and x509.TLSFeatureType.status_request in features
