"""PROXY protocol v2: golden bytes from the spec's layout, round trips, malformed input."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.errors import RemoteProtocolError
from trustwire.wire.events import NEED_DATA
from trustwire.wire.proxyv2 import SIGNATURE, ProxyDecoder, ProxyHeader, encode


def decode(data: bytes) -> tuple[ProxyHeader, bytes]:
    decoder = ProxyDecoder()
    decoder.receive_data(data)
    header = decoder.next_event()
    assert isinstance(header, ProxyHeader)
    return header, decoder.remainder


def test_ipv4_layout_matches_the_specification() -> None:
    data = encode(ProxyHeader(source=("192.0.2.1", 56324), destination=("198.51.100.7", 443)))
    assert data == (SIGNATURE + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 1, 198, 51, 100, 7])
                    + (56324).to_bytes(2, "big") + (443).to_bytes(2, "big"))


def test_local_command_for_health_checks() -> None:
    data = encode(ProxyHeader(source=None, destination=None))
    assert data == SIGNATURE + b"\x20\x00\x00\x00"
    header, _ = decode(data)
    assert header.source is None


def test_tls_identity_roundtrip_with_payload_after() -> None:
    header = ProxyHeader(source=("2001:db8::1", 40000), destination=("::1", 8443),
                         tls_version="TLSv1.3", common_name="alice", cipher="TLS_AES_128_GCM_SHA256",
                         client_cert=True, fingerprint="ab" * 32,
                         uris=("spiffe://example.org/alice",), extra=((0x04, b"noop"),))
    decoded, rest = decode(encode(header) + b"GET / HTTP/1.1\r\n")
    assert decoded == header
    assert rest == b"GET / HTTP/1.1\r\n"


def test_mixed_families_are_mapped_to_ipv6() -> None:
    decoded, _ = decode(encode(ProxyHeader(source=("127.0.0.1", 1), destination=("::1", 2))))
    assert decoded.source is not None
    assert ipaddress.ip_address(decoded.source[0]) == ipaddress.ip_address("::ffff:127.0.0.1")


def test_partial_input_needs_more_data() -> None:
    data = encode(ProxyHeader(source=("10.0.0.1", 1), destination=("10.0.0.2", 2), common_name="x"))
    decoder = ProxyDecoder()
    for i in range(len(data) - 1):
        decoder.receive_data(data[i:i + 1])
        assert decoder.next_event() is NEED_DATA
    decoder.receive_data(data[-1:])
    assert isinstance(decoder.next_event(), ProxyHeader)


@pytest.mark.parametrize(("data", "message"), [
    (b"GET / HTTP/1.1\r\n\r\n", "signature"),
    (SIGNATURE + b"\x11\x11\x00\x00", "version/command"),
    (SIGNATURE + b"\x21\x31\x00\x00", "address family"),
    (SIGNATURE + b"\x21\x11\x00\x04abcd", "shorter than its addresses"),
    (SIGNATURE + b"\x21\x00\x00\x02\x20\x00", "truncated"),
])
def test_malformed_headers(data: bytes, message: str) -> None:
    decoder = ProxyDecoder()
    decoder.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=message):
        decoder.next_event()


ips = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))


@given(src=ips, dst=ips, sport=st.integers(0, 65535), dport=st.integers(0, 65535),
       cn=st.none() | st.text(min_size=1, max_size=40), fp=st.none() | st.binary(min_size=32, max_size=32),
       uris=st.lists(st.text(min_size=1, max_size=50), max_size=3))
def test_roundtrip_property(src: str, dst: str, sport: int, dport: int, cn: str | None,
                            fp: bytes | None, uris: list[str]) -> None:
    header = ProxyHeader(source=(src, sport), destination=(dst, dport), common_name=cn,
                         client_cert=cn is not None, fingerprint=fp.hex() if fp else None,
                         uris=tuple(uris))
    decoded, _ = decode(encode(header))
    assert decoded.common_name == cn and decoded.fingerprint == header.fingerprint
    assert decoded.uris == header.uris and decoded.source is not None
    assert decoded.source[1] == sport and decoded.destination is not None


@given(st.binary(max_size=200))
def test_decoder_never_crashes_on_garbage(data: bytes) -> None:
    decoder = ProxyDecoder()
    decoder.receive_data(SIGNATURE + data)
    with contextlib.suppress(RemoteProtocolError):
        decoder.next_event()
