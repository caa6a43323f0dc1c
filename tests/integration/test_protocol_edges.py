"""Edges of the protocol that an attacker (or a sloppy peer) walks: a CN posing as a host
name, talking after saying goodbye, and the last line of a line-framed stream."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.servers import ServerThread
from trustwire.client import connect
from trustwire.errors import HandshakeError
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.server.server import Server
from trustwire.services import upper
from trustwire.tls.context import ClientTLS, ServerTLS
from trustwire.wire import LengthCodec, RemoteError


def test_a_common_name_is_not_taken_as_the_host_name(pki: Pki, tmp_path: Path) -> None:
    """Break 9: with no DNS SAN, OpenSSL fell back to the CN: CN=localhost passed for localhost."""
    home = Home(tmp_path / "home")
    home.init_ca(name="cn CA")
    home.issue("localhost", kind=CertKind.SERVER, sans=SubjectAltNames.parse(ips=["127.0.0.1"]))
    home.issue("alice", kind=CertKind.CLIENT)
    tls = ClientTLS.from_identity(home, "alice")
    with ServerThread(lambda audit: Server(upper, tls=ServerTLS.from_identity(home, "localhost"))
                      ) as st:
        with pytest.raises(HandshakeError) as info:
            connect("localhost", st.port, tls=tls)
        assert info.value.diagnosis.reason == "hostname-mismatch"
        with connect("127.0.0.1", st.port, tls=tls) as c:  # the name it does hold
            assert c.request(b"hi") == b"HI"
        lenient = tls.context()
        lenient.hostname_checks_common_name = True  # what contexts did before: it passes
        with connect("localhost", st.port, tls=lenient) as c:
            assert c.request(b"hi") == b"HI"


def _raw(pki: Pki, port: int) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    return pki.client("alice").context().wrap_socket(raw, server_hostname="localhost")


def test_a_message_right_after_the_clients_error_frame_does_not_stall(pki: Pki) -> None:
    """Break 10: the server stopped reading at the client's error frame and never closed."""
    codec = LengthCodec()
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls())) as st, \
            _raw(pki, st.port) as tls:
        tls.sendall(codec.send(RemoteError(reason="client giving up")) + codec.encode(b"and this"))
        started = time.monotonic()
        received = b""
        while chunk := tls.recv(4096):
            received += chunk
        assert time.monotonic() - started < 1.0
        assert b"AND THIS" not in received  # a peer that said goodbye is not answered


def _half_close_exchange(pki: Pki, port: int, payload: bytes, *, clean: bool) -> bytes:
    """Send ``payload`` then end our side (close_notify, or a bare FIN); read what comes back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = pki.client("alice").context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))
    tls.write(payload)
    if clean:
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()  # queues our close_notify; the server's comes later
    sock.sendall(outgoing.read())
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while data := sock.recv(65536):
        incoming.write(data)
    try:
        while chunk := tls.read(65536):
            received += chunk
    except (ssl.SSLZeroReturnError, ssl.SSLWantReadError, ssl.SSLError):
        pass
    sock.close()
    return received


def test_line_framing_answers_a_last_line_without_newline_after_close_notify(pki: Pki) -> None:
    """Its docstring promised it; the server dropped it (printf hello | s_client)."""
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), framing="line")) as st:
        assert _half_close_exchange(pki, st.port, b"first\nlast", clean=True) == b"FIRST\nLAST\n"


def test_line_framing_drops_a_last_line_cut_off_by_a_bare_fin(pki: Pki) -> None:
    """Without close_notify the stream may have been truncated mid-line: no answer to it."""
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), framing="line")) as st:
        assert _half_close_exchange(pki, st.port, b"first\nDELETE ALL EXC", clean=False) == b"FIRST\n"
