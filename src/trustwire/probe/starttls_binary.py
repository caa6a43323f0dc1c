"""The STARTTLS dialogues of the binary protocols: LDAP, PostgreSQL, MySQL. Pure, sans-IO.

The LDAP messages are BER-encoded by hand: one ExtendedRequest and its ExtendedResponse are
all the dialogue needs, and a general ASN.1 library would be a dependency for 30 lines.
"""

from __future__ import annotations

import struct

from trustwire.probe.starttls_dialogue import (
    MAX_DIALOGUE,
    Negotiation,
    Send,
    StartTLS,
    Step,
    quote,
)
from trustwire.wire.events import NEED_DATA

__all__ = ["LDAP_STARTTLS_OID", "Ldap", "Mysql", "Postgres", "ldap_starttls_request",
           "mysql_ssl_request", "postgres_ssl_request"]

LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"  # RFC 4511 4.14.1
_POSTGRES_SSL_REQUEST_CODE = 80877103  # 1234 << 16 | 5679, PostgreSQL protocol 53.2.9

# MySQL capability flags (include/mysql_com.h)
_CLIENT_LONG_PASSWORD, _CLIENT_LONG_FLAG, _CLIENT_PROTOCOL_41 = 0x1, 0x4, 0x200
_CLIENT_SSL, _CLIENT_TRANSACTIONS, _CLIENT_SECURE_CONNECTION = 0x800, 0x2000, 0x8000
_CLIENT_MULTI_RESULTS, _CLIENT_PLUGIN_AUTH = 0x20000, 0x80000
_MYSQL_FLAGS = (_CLIENT_LONG_PASSWORD | _CLIENT_LONG_FLAG | _CLIENT_PROTOCOL_41 | _CLIENT_SSL
                | _CLIENT_TRANSACTIONS | _CLIENT_SECURE_CONNECTION | _CLIENT_MULTI_RESULTS
                | _CLIENT_PLUGIN_AUTH)
_MYSQL_MAX_PACKET = 1 << 24
_MYSQL_UTF8 = 33  # utf8_general_ci: every server since 4.1 has it


# --- LDAP: BER by hand, just enough for one ExtendedRequest and its ExtendedResponse ---

class _Malformed(Exception):
    pass


def _ber_length(length: int) -> bytes:
    """X.690 8.1.3: short form below 128, else 0x80|n and n big-endian bytes."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _ber_length(len(value)) + value


def _read_tlv(data: bytes | bytearray, at: int) -> tuple[int, bytes, int] | None:
    """The (tag, value, end) at ``at``; None when more bytes are needed.

    Raises:
        _Malformed: indefinite lengths (RFC 4511 5.1 forbids them), multi-byte tags, or
            lengths over :data:`MAX_DIALOGUE`.
    """
    if len(data) < at + 2:
        return None
    tag, first = data[at], data[at + 1]
    if tag & 0x1F == 0x1F or first == 0x80 or first > 0x84:
        raise _Malformed
    at += 2
    length = first
    if first > 0x80:
        count = first & 0x7F
        if len(data) < at + count:
            return None
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if length > MAX_DIALOGUE:
        raise _Malformed
    if len(data) < at + length:
        return None
    return tag, bytes(data[at:at + length]), at + length


def ldap_starttls_request(message_id: int = 1) -> bytes:
    """``LDAPMessage { messageID, extendedReq [APPLICATION 23] { requestName [0] OID } }``."""
    integer = message_id.to_bytes((message_id.bit_length() + 8) // 8, "big")
    op = _tlv(0x77, _tlv(0x80, LDAP_STARTTLS_OID))
    return _tlv(0x30, _tlv(0x02, integer) + op)


_LDAP_RESULTS = {1: "operationsError", 2: "protocolError", 7: "authMethodNotSupported",
                 8: "strongerAuthRequired", 12: "unavailableCriticalExtension", 51: "busy",
                 52: "unavailable", 53: "unwillingToPerform", 80: "other"}


class Ldap(Negotiation):
    """RFC 4511 4.14 / RFC 4513 3: ExtendedRequest for 1.3.6.1.4.1.1466.20037, then an
    ExtendedResponse ``[APPLICATION 24]`` whose resultCode must be 0 (success)."""

    protocol = "LDAP"
    implicit_port = 636

    def __init__(self) -> None:
        super().__init__()
        self._sent = False
        self.awaiting = "the reply to the StartTLS request"

    def _advance(self) -> Step:
        if not self._sent:
            self._sent = True
            return Send(data=ldap_starttls_request())
        try:
            return self._response()
        except _Malformed:
            return self._not_this_protocol(bytes(self._buffer[:16]).hex(" "))

    def _response(self) -> Step:
        if self._buffer and self._buffer[0] != 0x30:  # LDAPMessage is a SEQUENCE
            raise _Malformed
        message = _read_tlv(self._buffer, 0)
        if message is None:
            return NEED_DATA
        _, body, end = message
        del self._buffer[:end]
        parts = _read_tlv(body, 0)
        if parts is None or parts[0] != 0x02 or not 1 <= len(parts[1]) <= 4:  # MessageID INTEGER
            raise _Malformed
        message_id = int.from_bytes(parts[1], "big", signed=True)
        op = _read_tlv(body, parts[2])
        if op is None:
            raise _Malformed
        if op[0] != 0x78:  # not an ExtendedResponse
            return self._not_this_protocol(f"a protocolOp with tag 0x{op[0]:02x}")
        code_tlv = _read_tlv(op[1], 0)
        if code_tlv is None or code_tlv[0] != 0x0A:
            raise _Malformed
        code = int.from_bytes(code_tlv[1], "big")
        matched = _read_tlv(op[1], code_tlv[2])
        diagnostic = _read_tlv(op[1], matched[2]) if matched is not None else None
        message_text = f": {quote(diagnostic[1])}" if diagnostic and diagnostic[1] else ""
        result = f"resultCode {code} {_LDAP_RESULTS.get(code, '')}".rstrip() + message_text
        if message_id == 0:  # RFC 4511 4.4: an unsolicited notification, usually a disconnect
            return self._turned_away(f"a notice of disconnection, {result}")
        if message_id != 1:
            return self._not_this_protocol(f"a reply to message {message_id}")
        if code != 0:
            return self._unsupported(f"StartTLS ({result})")
        return StartTLS()



# --- PostgreSQL ---

def postgres_ssl_request() -> bytes:
    """SSLRequest: an Int32 length (8) and the Int32 code 80877103."""
    return struct.pack(">II", 8, _POSTGRES_SSL_REQUEST_CODE)


class Postgres(Negotiation):
    """PostgreSQL protocol 53.2.9: SSLRequest, one byte back: ``S`` yes, ``N`` no, or an
    ErrorResponse from a server too old to know the request."""

    protocol = "PostgreSQL"

    def __init__(self) -> None:
        super().__init__()
        self._sent = False
        self.awaiting = "the reply to the SSLRequest"

    def _advance(self) -> Step:
        if not self._sent:
            self._sent = True
            return Send(data=postgres_ssl_request())
        if not self._buffer:
            return NEED_DATA
        answer = self._buffer[:1]
        if answer == b"S":
            del self._buffer[:1]
            return StartTLS()
        if answer == b"N":
            del self._buffer[:1]
            return self._unsupported("TLS (it answered N to the SSLRequest)",
                                     hint="set ssl = on in postgresql.conf, with ssl_cert_file "
                                          "and ssl_key_file")
        if answer == b"E":
            return self._error()
        return self._not_this_protocol(bytes(self._buffer[:16]).hex(" "))

    def _error(self) -> Step:
        if len(self._buffer) < 5 and not self._eof:
            return NEED_DATA
        length = int.from_bytes(self._buffer[1:5], "big") if len(self._buffer) >= 5 else 0
        if len(self._buffer) < 1 + length and not self._eof:
            return NEED_DATA
        fields = bytes(self._buffer[5:1 + length]).split(b"\0")
        text = next((f[1:] for f in fields if f[:1] == b"M"), b"no message")
        self._buffer.clear()
        return self._unsupported(f"TLS (it answered the SSLRequest with an error: {quote(text)})",
                                 hint="PostgreSQL servers before 7.1 cannot do TLS: upgrade it")



# --- MySQL ---

def mysql_ssl_request(sequence: int) -> bytes:
    """The SSL request packet (Protocol::SSLRequest): capabilities with CLIENT_SSL, max
    packet size, character set, 23 zero bytes; ``sequence`` follows the server's."""
    payload = struct.pack("<IIB23x", _MYSQL_FLAGS, _MYSQL_MAX_PACKET, _MYSQL_UTF8)
    return len(payload).to_bytes(3, "little") + bytes([sequence & 0xFF]) + payload


class Mysql(Negotiation):
    """MySQL/MariaDB: the server's Protocol::HandshakeV10 must list CLIENT_SSL; the client
    answers with the SSL request packet and starts TLS at once, without waiting."""

    protocol = "MySQL"

    def __init__(self) -> None:
        super().__init__()
        self.awaiting = "its handshake packet"

    def _advance(self) -> Step:
        if len(self._buffer) < 4:
            return NEED_DATA
        length = int.from_bytes(self._buffer[:3], "little")
        if length > MAX_DIALOGUE or length == 0:
            return self._not_this_protocol(bytes(self._buffer[:16]).hex(" "))
        if len(self._buffer) < 4 + length:
            return NEED_DATA
        sequence = self._buffer[3]
        payload = bytes(self._buffer[4:4 + length])
        del self._buffer[:4 + length]
        if payload[0] == 0xFF:  # ERR_Packet: error code, optional '#' + SQL state, message
            code = int.from_bytes(payload[1:3], "little")
            text = payload[9:] if payload[3:4] == b"#" else payload[3:]
            return self._turned_away(f"error {code}: {quote(text)}")
        if payload[0] != 10:
            return self._not_this_protocol(f"protocol version {payload[0]}")
        nul = payload.find(b"\0", 1)
        if nul < 0 or len(payload) < nul + 16:
            return self._not_this_protocol(payload[:32])
        # after the version: connection id (4), auth data part 1 (8), filler (1), flags (2)
        capabilities = int.from_bytes(payload[nul + 14:nul + 16], "little")
        if len(payload) >= nul + 21:  # then charset (1), status (2), upper flags (2)
            capabilities |= int.from_bytes(payload[nul + 19:nul + 21], "little") << 16
        if not capabilities & _CLIENT_SSL:
            version = payload[1:nul].decode("ascii", "replace")
            return self._unsupported(
                f"TLS (the handshake of {quote(version)} lacks the CLIENT_SSL capability)",
                hint="configure ssl_cert and ssl_key on the server")
        return StartTLS(send=mysql_ssl_request(sequence + 1))
