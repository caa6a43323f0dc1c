"""Hand-built ClientHellos and the server-flight reader: round trips, fragmentation, garbage."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from trustwire.probe.hello import (
    ALERT,
    FLIGHT_BYTES,
    FLIGHT_ITEMS,
    HANDSHAKE,
    HelloSpec,
    ServerFlight,
    client_hello,
    record,
    sslv2_client_hello,
)


def server_hello(version: int = 0x0303, cipher: int = 0xC02F, extensions: bytes = b"") -> bytes:
    body = struct.pack(">H", version) + b"\x11" * 32 + b"\x00" + struct.pack(">HB", cipher, 0)
    body += struct.pack(">H", len(extensions)) + extensions
    return b"\x02" + len(body).to_bytes(3, "big") + body


def test_client_hello_has_the_suites_and_extensions_asked_for() -> None:
    data = client_hello(HelloSpec(ciphers=(0xC02F, 0x0005), server_name="example.com",
                                  heartbeat=True, compression=(1, 0)))
    assert data[0] == HANDSHAKE and data[5] == 1  # a handshake record carrying a ClientHello
    body = data[9:]
    assert body[:2] == b"\x03\x03"
    suites_len = struct.unpack_from(">H", body, 35)[0]
    assert body[37:37 + suites_len] == b"\xc0\x2f\x00\x05"
    assert body[37 + suites_len:37 + suites_len + 3] == b"\x02\x01\x00"
    assert b"example.com" in body and b"\x00\x0f\x00\x01\x01" in body  # SNI, heartbeat
    assert struct.unpack_from(">H", data, 3)[0] == len(data) - 5


def test_an_ssl3_hello_has_ssl3_record_and_no_extensions() -> None:
    data = client_hello(HelloSpec(version=0x0300, ciphers=(0x000A,), server_name="x"))
    assert data[1:3] == b"\x03\x00"
    body = data[9:]
    assert len(body) == 2 + 32 + 1 + 2 + 2 + 2  # version, random, sid, suites, compression


def test_sslv2_client_hello_layout() -> None:
    data = sslv2_client_hello((0x010080, 0x0700C0), challenge=b"c" * 16)
    assert data[0] & 0x80 and ((data[0] & 0x7F) << 8 | data[1]) == len(data) - 2
    assert data[2] == 1 and data[3:5] == b"\x00\x02"
    assert data[11:17] == bytes.fromhex("0100800700c0") and data.endswith(b"c" * 16)


def test_server_flight_reads_hello_and_extensions() -> None:
    ext = struct.pack(">HH", 0xFF01, 1) + b"\x00" + struct.pack(">HH", 23, 0)
    flight = ServerFlight()
    flight.feed(record(HANDSHAKE, 0x0303, server_hello(extensions=ext) + b"\x0e\x00\x00\x00"))
    hello = flight.server_hello
    assert hello is not None and hello.cipher == 0xC02F and hello.version == 0x0303
    assert set(hello.extensions) == {0xFF01, 23}
    assert flight.hello_done


def test_server_flight_reads_alerts_and_refuses_garbage() -> None:
    flight = ServerFlight()
    flight.feed(record(ALERT, 0x0303, b"\x02\x28"))
    assert flight.alert is not None and flight.alert.fatal and flight.alert.description == 40
    garbage = ServerFlight()
    garbage.feed(b"HTTP/1.1 400 Bad Request\r\n")
    assert garbage.malformed and garbage.hello_done


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_server_flight_is_independent_of_fragmentation(cuts: list[int]) -> None:
    data = (record(HANDSHAKE, 0x0303, server_hello()[:20]) + record(HANDSHAKE, 0x0303,
            server_hello()[20:] + b"\x0e\x00\x00\x00") + record(ALERT, 0x0303, b"\x01\x00"))
    flight = ServerFlight()
    offset = 0
    for cut in cuts:
        flight.feed(data[offset:offset + cut])
        offset += cut
    flight.feed(data[offset:])
    assert [m for m, _ in flight.messages] == [2, 14]
    assert flight.server_hello is not None and flight.alerts[0].description == 0


@given(st.binary(max_size=300))
def test_server_flight_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    flight = ServerFlight()
    flight.feed(data)
    _ = flight.server_hello, flight.hello_done, flight.alert


def test_server_flight_stops_past_its_byte_and_item_limits() -> None:
    endless = ServerFlight()
    endless.feed(record(HANDSHAKE, 0x0303, b"\x02\xff\xff\xff" + bytes(16380)))
    filler = record(HANDSHAKE, 0x0303, bytes(16384))
    for _ in range(FLIGHT_BYTES // len(filler) + 2):
        endless.feed(filler)
    assert endless.malformed == "more than 1 MiB from the server" and endless.hello_done
    assert len(endless.buffer) + len(endless._handshake) <= FLIGHT_BYTES
    tiny = ServerFlight()
    tiny.feed(record(HANDSHAKE, 0x0303, b"\x00\x00\x00\x00" * 4096))
    tiny.feed(record(HANDSHAKE, 0x0303, server_hello()))
    assert tiny.malformed is not None and tiny.malformed.startswith(f"more than {FLIGHT_ITEMS}")
    assert len(tiny.messages) <= FLIGHT_ITEMS + 1
