"""Hostile and broken clients: each gets a clear refusal; everyone else is still served."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.servers import ServerThread
from trustwire.client import connect
from trustwire.errors import ConnectionBroken, HandshakeError
from trustwire.server import Connection, Limits, Server
from trustwire.services import echo, upper
from trustwire.wire import NEED_DATA, LengthCodec, RemoteError


def tls_socket(pki: Pki, port: int, name: str = "alice", rcvbuf: int | None = None) -> ssl.SSLSocket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    return pki.client(name).context().wrap_socket(raw, server_hostname="localhost")


def assert_still_serving(pki: Pki, port: int, expected: bytes = b"OK?") -> None:
    with connect("127.0.0.1", port, tls=pki.client("bob")) as c:
        assert c.request(b"ok?") == expected


@pytest.fixture
def st(pki: Pki, tmp_path: Path):  # type: ignore[no-untyped-def]
    limits = Limits(handshake_timeout=1.0, idle_timeout=60)
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), limits=limits),
                      audit_path=tmp_path / "audit.jsonl") as thread:
        yield thread


@pytest.mark.parametrize("payload", [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
                                     b"SSH-2.0-OpenSSH_9.2\r\n"])
def test_plain_text_to_the_tls_port(pki: Pki, st: ServerThread, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", st.port), timeout=5) as s:
        s.sendall(payload)
        answer = s.recv(4096)
        assert b"HTTP" not in answer  # a TLS alert at most, then close
    event = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
    assert event["reason"] == "not-tls"
    assert_still_serving(pki, st.port)


def test_random_bytes(pki: Pki, st: ServerThread) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", st.port), timeout=5) as s:
            s.sendall(os.urandom(2000))
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    failures = [e for e in st.audit_events() if e["event"] == "handshake_failed"]
    assert len(failures) >= 1
    assert_still_serving(pki, st.port)


def read_error_frame(sock: ssl.SSLSocket) -> str:
    codec = LengthCodec()
    while True:
        event = codec.next_event()
        if isinstance(event, RemoteError):
            return event.reason
        assert event is NEED_DATA, event
        codec.receive_data(sock.recv(4096))


def test_frame_header_announcing_four_gibibytes(pki: Pki, st: ServerThread) -> None:
    with tls_socket(pki, st.port) as s:
        s.sendall(struct.pack(">I", 0xFFFFFFFE))
        reason = read_error_frame(s)
        assert reason == "message of 4294967294 bytes exceeds the 1048576-byte limit"
        assert s.recv(10) == b""  # then the server closes
    event = st.wait_for_event(lambda e: e["event"] == "closed" and e.get("cn") == "alice")
    assert "protocol error" in event["reason"]
    assert_still_serving(pki, st.port)


def test_silent_client_hits_the_handshake_timeout(pki: Pki, st: ServerThread) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", st.port), timeout=10) as s:
        assert s.recv(10) == b""  # closed by the server, not by our timeout
    assert 0.9 < time.monotonic() - started < 4
    event = st.wait_for_event(lambda e: e["event"] == "handshake_failed" and e["reason"] == "timeout")
    assert "1s" in event["diagnosis"]
    assert_still_serving(pki, st.port)


def test_reset_in_the_middle_of_a_frame(pki: Pki, st: ServerThread) -> None:
    s = tls_socket(pki, st.port)
    s.sendall(struct.pack(">I", 1000) + b"only part of it")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST
    st.wait_for_event(lambda e: e["event"] == "closed" and e.get("cn") == "alice")
    assert st.server is not None
    assert st.call(lambda: len(st.server.sessions)) == 0  # type: ignore[union-attr]
    assert_still_serving(pki, st.port)


def test_client_that_stops_reading_cannot_grow_server_memory(pki: Pki, tmp_path: Path) -> None:
    limits = Limits(write_high_water=128 * 1024)
    with ServerThread(lambda audit: Server(echo, tls=pki.server_tls(), limits=limits)) as st:
        s = tls_socket(pki, st.port, rcvbuf=64 * 1024)
        s.settimeout(3)
        frame = struct.pack(">I", 65536) + b"x" * 65536
        sent = 0
        try:
            while sent < 200 * len(frame):  # 13 MiB if nobody pushed back
                s.sendall(frame)
                sent += len(frame)
        except TimeoutError:
            pass  # the server stopped reading us: backpressure works
        time.sleep(0.5)
        assert st.server is not None
        held = st.call(lambda: [(c.tls.get_write_buffer_size(), c.channel.buffered)
                                for c in st.server.sessions])  # type: ignore[union-attr]
        assert len(held) == 1
        write_buffer, decoded_backlog = held[0]
        assert sent < 200 * len(frame), "the server never pushed back"
        assert write_buffer <= limits.write_high_water + 256 * 1024 + len(frame)
        assert decoded_backlog <= 256 * 1024 + len(frame)
        assert_still_serving(pki, st.port, expected=b"ok?")  # the echo service
        s.close()


def test_max_connections(pki: Pki, tmp_path: Path) -> None:
    limits = Limits(max_connections=3)
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), limits=limits),
                      audit_path=tmp_path / "a.jsonl") as st:
        held = [connect("127.0.0.1", st.port, tls=pki.client("alice")) for _ in range(3)]
        with pytest.raises((HandshakeError, ConnectionBroken)):
            connect("127.0.0.1", st.port, tls=pki.client("alice"), timeout=5)
        event = st.wait_for_event(lambda e: e["event"] == "refused")
        assert event["reason"] == "max connections reached"
        for c in held:
            assert c.request(b"still fine") == b"STILL FINE"
            c.close()
        time.sleep(0.3)
        assert_still_serving(pki, st.port)


def test_idle_timeout(pki: Pki, tmp_path: Path) -> None:
    limits = Limits(idle_timeout=1.0)
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), limits=limits),
                      audit_path=tmp_path / "a.jsonl") as st, \
            connect("127.0.0.1", st.port, tls=pki.client("alice"), timeout=5) as c:
        assert c.request(b"a") == b"A"
        time.sleep(2.5)
        with pytest.raises(ConnectionBroken, match="idle for 1 seconds"):
            c.recv()
        event = st.wait_for_event(lambda e: e["event"] == "closed")
        assert event["reason"] == "idle timeout"


def test_a_busy_connection_is_never_idle(pki: Pki, tmp_path: Path) -> None:
    """Activity is noticed by the sweep from byte counters, not stamped per message."""
    limits = Limits(idle_timeout=1.0)
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), limits=limits)) as st, \
            connect("127.0.0.1", st.port, tls=pki.client("alice"), timeout=5) as c:
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            assert c.request(b"still here") == b"STILL HERE"
            time.sleep(0.4)
        time.sleep(2.5)  # now really idle
        with pytest.raises(ConnectionBroken, match="idle for 1 seconds"):
            c.recv()


def test_graceful_shutdown_finishes_the_message_in_flight(pki: Pki) -> None:
    async def slow(conn: Connection) -> None:
        async for message in conn:
            await asyncio.sleep(0.5)
            await conn.send(message[::-1])

    st = ServerThread(lambda audit: Server(slow, tls=pki.server_tls()))
    with st, connect("127.0.0.1", st.port, tls=pki.client("alice"), timeout=10) as c:
        c.send(b"in flight")
        time.sleep(0.1)
        assert st.server is not None and st._loop is not None
        closing = asyncio.run_coroutine_threadsafe(st.server.close(grace=5), st._loop)
        assert c.recv() == b"thgilf ni"  # the reply still arrives
        closing.result(10)
        with pytest.raises((ConnectionBroken, Exception)):
            c.request(b"after shutdown")
