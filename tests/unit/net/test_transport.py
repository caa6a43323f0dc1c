"""The TLS transport's edge cases over memory transports: real OpenSSL, no sockets."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest

from tests.conftest import Pki
from tests.memory import MemoryLink
from trustwire.errors import ConnectionClosed, Diagnosis
from trustwire.net.transport import TLS_CLOSED, TLS_OPEN, TLSTransport

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


class Recorder:
    """A TLSApp that writes down what happened."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.diagnosis: Diagnosis | None = None
        self.after_handshake: bool | None = None

    def tls_connected(self, tls: TLSTransport) -> None:
        self.events.append("connected")

    def tls_established(self, tls: TLSTransport) -> None:
        self.events.append("established")

    def tls_data(self, data: memoryview) -> None:
        self.data += data

    def tls_eof(self, clean: bool) -> None:
        self.events.append(f"eof clean={clean}")

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        self.events.append("failed")
        self.diagnosis, self.after_handshake = diagnosis, after_handshake

    def tls_closed(self, exc: BaseException | None) -> None:
        self.events.append("closed")

    def tls_pause_writing(self) -> None: ...
    def tls_resume_writing(self) -> None: ...


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()  # resume_reading schedules on the running loop
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


def pair(pki: Pki, version: ssl.TLSVersion) -> tuple[TLSTransport, Recorder, TLSTransport, Recorder]:
    server_app, client_app = Recorder(), Recorder()
    server = TLSTransport(pki.server_tls(maximum_version=version).context(), server_app,
                          server_side=True)
    client = TLSTransport(pki.client("alice", maximum_version=version).context(), client_app,
                          server_side=False, server_hostname="localhost", presents_cert=True)
    return server, server_app, client, client_app


@pytest.mark.parametrize("version", VERSIONS)
def test_handshake_and_data_both_ways(pki: Pki, version: ssl.TLSVersion,
                                      loop: asyncio.AbstractEventLoop) -> None:
    server, server_app, client, client_app = pair(pki, version)
    link = MemoryLink(client, server)
    link.pump()
    assert server.state is TLS_OPEN and client.state is TLS_OPEN
    assert server.peer is not None and server.peer.common_name == "alice"
    assert server.peername == "127.0.0.1:40000" and server.peer_host == "127.0.0.1"
    client.write(b"hello")
    server.write(b"HELLO")
    link.pump()
    assert bytes(server_app.data) == b"hello" and bytes(client_app.data) == b"HELLO"
    assert server.bytes_in == 5 and server.bytes_out == 5
    assert not server.resumed


def test_eof_before_the_handshake_is_a_closed_diagnosis(pki: Pki,
                                                        loop: asyncio.AbstractEventLoop) -> None:
    server, server_app, client, _ = pair(pki, ssl.TLSVersion.TLSv1_3)
    link = MemoryLink(client, server)
    link.client.outbox.clear()  # the ClientHello never arrives
    link.client.close()
    link.pump()
    assert server_app.events == ["connected", "failed", "closed"]
    assert server_app.diagnosis is not None and server_app.diagnosis.reason == "closed"
    assert not server_app.diagnosis.refused and server.state is TLS_CLOSED


@pytest.mark.parametrize("version", VERSIONS)
def test_a_fin_without_close_notify_is_an_unclean_end(pki: Pki, version: ssl.TLSVersion,
                                                      loop: asyncio.AbstractEventLoop) -> None:
    server, server_app, client, _ = pair(pki, version)
    link = MemoryLink(client, server)
    link.pump()
    client.write(b"partial")
    link.client.write_eof()  # TCP FIN, no close_notify: a truncation
    link.pump()
    assert bytes(server_app.data) == b"partial"
    assert server_app.events[-1] == "eof clean=False"


@pytest.mark.parametrize("version", VERSIONS)
def test_close_notify_is_a_clean_end_and_the_other_direction_stays_open(
        pki: Pki, version: ssl.TLSVersion, loop: asyncio.AbstractEventLoop) -> None:
    server, server_app, client, client_app = pair(pki, version)
    link = MemoryLink(client, server)
    link.pump()
    client.write_eof()  # our side is done (TLS half-close), reading goes on
    link.pump()
    assert server_app.events[-1] == "eof clean=True"
    server.write(b"late answer")
    link.pump()
    assert bytes(client_app.data) == b"late answer"
    assert client.write_closed
    with pytest.raises(ConnectionClosed):
        client.write(b"more")


def test_write_of_nothing_sends_nothing(pki: Pki, loop: asyncio.AbstractEventLoop) -> None:
    server, _, client, _ = pair(pki, ssl.TLSVersion.TLSv1_3)
    link = MemoryLink(client, server)
    link.pump()
    sent = link.client.sent
    client.write(b"")
    client.write(bytearray())
    assert link.client.sent == sent and client.bytes_out == 0


def test_close_twice_abort_after_close_and_write_after_close(
        pki: Pki, loop: asyncio.AbstractEventLoop) -> None:
    server, server_app, client, _ = pair(pki, ssl.TLSVersion.TLSv1_3)
    link = MemoryLink(client, server)
    link.pump()
    server.close()
    server.close()
    server.abort()
    assert server.closed
    with pytest.raises(ConnectionClosed):
        server.write(b"x")
    link.pump()
    assert server_app.events.count("closed") == 1


def test_nothing_is_delivered_after_close(pki: Pki, loop: asyncio.AbstractEventLoop) -> None:
    """A session being cut must not get another message processed while the close completes."""
    server, server_app, client, _ = pair(pki, ssl.TLSVersion.TLSv1_3)
    link = MemoryLink(client, server)
    link.pump()
    server.close()
    server.resume_reading()  # cannot undo the close
    client.write(b"one more request")
    link._deliver(link.client)  # the bytes reach the server before its close completes
    assert bytes(server_app.data) == b""


def test_a_refused_connection_gets_no_handshake(pki: Pki, loop: asyncio.AbstractEventLoop) -> None:
    """An app that aborts in tls_connected (a limit) stops the handshake before it starts."""

    class Refuser(Recorder):
        def tls_connected(self, tls: TLSTransport) -> None:
            super().tls_connected(tls)
            tls.abort()

    refuser = Refuser()
    client_app = Recorder()
    client = TLSTransport(pki.client("alice").context(), client_app, server_side=False,
                          server_hostname="localhost")
    server = TLSTransport(pki.server_tls().context(), refuser, server_side=True)
    link = MemoryLink(client, server)
    link.pump()
    assert refuser.events == ["connected", "closed"]  # no failed: nobody was refused by TLS
    assert client.state is TLS_CLOSED


def test_records_waiting_while_paused_are_delivered_before_the_fin(
        pki: Pki, loop: asyncio.AbstractEventLoop) -> None:
    """A tunnel pauses its TLS side until the target is connected; data and a FIN that
    arrive meanwhile must come out in that order (the data was once lost to the reset)."""
    server, server_app, client, _ = pair(pki, ssl.TLSVersion.TLSv1_3)
    link = MemoryLink(client, server)
    link.pump()
    server.pause_reading()
    client.write(b"before the end")
    link.client.write_eof()  # FIN, no close_notify
    link.pump()
    assert bytes(server_app.data) == b"" and "eof clean=False" not in server_app.events

    async def resume() -> None:
        server.resume_reading()
        await asyncio.sleep(0)  # _resume_drive runs

    loop.run_until_complete(resume())
    assert bytes(server_app.data) == b"before the end"
    assert server_app.events[-1] == "eof clean=False"
