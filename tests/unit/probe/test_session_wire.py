"""NewSessionTicket and SCT list parsing: round trips, and malformed input raises ValueError only."""

from __future__ import annotations

import contextlib
import datetime as dt
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID
from hypothesis import given
from hypothesis import strategies as st

from tests.zoo import Spec, build
from trustwire.probe.session_wire import (
    SIGNED_CERTIFICATE_TIMESTAMP,
    Sct,
    SessionTicket,
    build_new_session_ticket,
    build_sct,
    build_sct_list,
    embedded_scts,
    encrypted_extensions,
    leaf_entry_extensions,
    must_staple,
    ocsp_scts,
    parse_new_session_ticket,
    parse_sct_list,
    server_hello_extensions,
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(ticket=st.binary(min_size=1, max_size=300), lifetime=u32, age_add=u32,
       nonce=st.binary(max_size=255), early=st.none() | u32)
def test_tls13_ticket_round_trip(ticket: bytes, lifetime: int, age_add: int, nonce: bytes,
                                 early: int | None) -> None:
    message = build_new_session_ticket(ticket, lifetime, tls13=True, age_add=age_add, nonce=nonce,
                                       max_early_data=early)
    assert parse_new_session_ticket(message, tls13=True) == SessionTicket(
        lifetime=lifetime, max_early_data=early, size=len(ticket))


@given(ticket=st.binary(max_size=300), lifetime=u32)
def test_tls12_ticket_round_trip(ticket: bytes, lifetime: int) -> None:
    message = build_new_session_ticket(ticket, lifetime, tls13=False)
    assert parse_new_session_ticket(message, tls13=False) == SessionTicket(
        lifetime=lifetime, max_early_data=None, size=len(ticket))


@given(data=st.binary(max_size=200), tls13=st.booleans())
def test_malformed_tickets_raise_value_error_only(data: bytes, tls13: bool) -> None:
    message = bytes([4]) + len(data).to_bytes(3, "big") + data
    with contextlib.suppress(ValueError):  # anything else fails the test
        parse_new_session_ticket(message, tls13=tls13)


def test_truncated_ticket_and_wrong_type_are_refused() -> None:
    message = build_new_session_ticket(b"t" * 10, 60, tls13=True, max_early_data=16384)
    with pytest.raises(ValueError):
        parse_new_session_ticket(message[:-3], tls13=True)
    with pytest.raises(ValueError):
        parse_new_session_ticket(b"\x02" + message[1:], tls13=True)


@given(entries=st.lists(st.tuples(st.binary(min_size=32, max_size=32),
                                  st.integers(min_value=0, max_value=2**41),
                                  st.binary(max_size=80), st.binary(max_size=20)),
                        min_size=1, max_size=5))
def test_sct_list_round_trip(entries: list[tuple[bytes, int, bytes, bytes]]) -> None:
    data = build_sct_list([build_sct(log, ms, sig, ext) for log, ms, sig, ext in entries])
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert parse_sct_list(data) == [
        Sct(version=0, log_id=log, timestamp=epoch + dt.timedelta(milliseconds=ms))
        for log, ms, _, _ in entries]


@given(data=st.binary(max_size=300))
def test_malformed_sct_lists_raise_value_error_only(data: bytes) -> None:
    with contextlib.suppress(ValueError):  # anything else fails the test
        parse_sct_list(data)


def test_sct_list_with_trailing_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_sct_list(build_sct_list([build_sct(b"\x01" * 32, 1)]) + b"\x00")


def test_sct_json_uses_the_base64_log_id() -> None:
    sct = parse_sct_list(build_sct_list([build_sct(b"\xff" * 32, 0)]))[0]
    assert sct.as_json() == {"version": 0, "log_id": "/" * 42 + "8=",
                             "timestamp": "1970-01-01T00:00:00+00:00"}


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


def test_extensions_of_server_hello_encrypted_extensions_and_certificate_entry() -> None:
    scts = build_sct_list([build_sct(b"\x07" * 32, 5)])
    block = _ext(SIGNED_CERTIFICATE_TIMESTAMP, scts) + _ext(0xFF01, b"\x00")
    hello = (b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2b\x00"
             + struct.pack(">H", len(block)) + block)
    assert server_hello_extensions(_handshake(2, hello))[SIGNED_CERTIFICATE_TIMESTAMP] == scts
    assert server_hello_extensions(_handshake(2, hello[:38])) == {}  # no extensions at all
    assert encrypted_extensions(_handshake(8, struct.pack(">H", len(block)) + block))[
        SIGNED_CERTIFICATE_TIMESTAMP] == scts
    entry = b"\x00\x00\x03der" + struct.pack(">H", len(block)) + block
    certificate = b"\x00" + len(entry).to_bytes(3, "big") + entry
    assert leaf_entry_extensions(_handshake(11, certificate))[SIGNED_CERTIFICATE_TIMESTAMP] == scts
    with pytest.raises(ValueError):
        leaf_entry_extensions(_handshake(11, certificate[:-2]))


def _precert_scts(data: bytes) -> x509.UnrecognizedExtension:
    # extnValue is an OCTET STRING holding the TLS-encoded list (RFC 6962 3.3)
    return x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS,
                                      b"\x04" + bytes([len(data)]) + data)


def test_embedded_scts_and_must_staple_read_from_the_certificate() -> None:
    scts = build_sct_list([build_sct(b"\x05" * 32, 1_700_000_000_000)])
    leaf = build(Spec(extra=[(_precert_scts(scts), False),
                             (x509.TLSFeature([x509.TLSFeatureType.status_request]), False)]))
    found = embedded_scts(leaf)
    assert [s.log_id for s in found] == [b"\x05" * 32]
    assert found[0].timestamp == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert must_staple(leaf)
    plain = build(Spec())
    assert embedded_scts(plain) == [] and not must_staple(plain)


def test_ocsp_response_without_scts() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(Spec(self_signed=True, key=key))
    now = dt.datetime.now(dt.UTC)
    response = (ocsp.OCSPResponseBuilder()
                .add_response(cert=leaf, issuer=leaf, algorithm=hashes.SHA256(),
                              cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                              next_update=now + dt.timedelta(days=1), revocation_time=None,
                              revocation_reason=None)
                .responder_id(ocsp.OCSPResponderEncoding.HASH, leaf).sign(key, hashes.SHA256()))
    assert ocsp_scts(response.public_bytes(Encoding.DER)) == []
    assert ocsp_scts(ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(Encoding.DER)) == []
    with pytest.raises(ValueError):
        ocsp_scts(b"\x30\x03junk")
