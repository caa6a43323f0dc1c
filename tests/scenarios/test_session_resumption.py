"""TLS 1.3 session resumption: one ticket per handshake, valid on every worker and
after a reload, and a ticket from another server is simply not honoured."""

from __future__ import annotations

import signal
import socket
import ssl
import time

import pytest

from tests.conftest import Pki
from tests.servers import children_of, running
from trustwire.tls import native
from trustwire.tls.context import ClientTLS


def _client_context(pki: Pki) -> ssl.SSLContext:
    return ClientTLS.from_identity(pki.home, "alice").context()


def _request(ctx: ssl.SSLContext, port: int,
             session: ssl.SSLSession | None = None) -> tuple[ssl.SSLSession, bool, int]:
    """One framed request; returns the session to resume with, whether this connection
    resumed, and how many tickets arrived."""
    tickets = 0

    def count(conn: object, direction: str, version: object, content_type: object,
              msg_type: object, data: bytes) -> None:
        nonlocal tickets
        if direction == "read" and msg_type == ssl._TLSMessageType.NEWSESSION_TICKET:  # type: ignore[attr-defined]
            tickets += 1

    ctx._msg_callback = count  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
        s.sendall(len(b"hi").to_bytes(4, "big") + b"hi")
        reply = b""
        while len(reply) < 6:
            chunk = s.recv(100)
            assert chunk, "the server closed early"
            reply += chunk
        assert reply == b"\x00\x00\x00\x02HI"
        assert s.version() == "TLSv1.3"
        assert s.session is not None
        return s.session, s.session_reused, tickets


def test_resumption_works_on_every_worker_and_after_a_reload(pki: Pki) -> None:
    with running(pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--workers", "2", "--reload-interval", "0") as server:
        deadline = time.monotonic() + 20
        while len(children_of(server.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        ctx = _client_context(pki)
        session, resumed, tickets = _request(ctx, server.port)
        assert not resumed
        assert tickets == 1  # one ticket per handshake, not OpenSSL's default two
        # SO_REUSEPORT spreads connections over both workers by their source port:
        # with per-worker ticket keys about half of these would be full handshakes.
        outcomes = [_request(ctx, server.port, session)[1] for _ in range(24)]
        assert all(outcomes), f"{outcomes.count(False)} of 24 resumptions failed"
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("reloaded", count=2)
        outcomes = [_request(ctx, server.port, session)[1] for _ in range(8)]
        assert all(outcomes), "tickets issued before the reload are no longer accepted"


def test_a_ticket_from_another_server_falls_back_to_a_full_handshake(pki: Pki) -> None:
    ctx = _client_context(pki)
    with running(pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server") as one:
        session, _, _ = _request(ctx, one.port)
    with running(pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server") as two:
        _, resumed, tickets = _request(ctx, two.port, session)
        assert not resumed and tickets == 1  # a new process, a new key: full handshake, new ticket


def test_ticket_keys_must_be_the_right_size() -> None:
    with pytest.raises(ValueError, match="80 bytes"):
        native.set_ticket_keys(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), b"short")
