"""An HTTP front end on the IO core gets the one admission decision without writing any.

trustwire has no HTTP server yet; the IO core is shaped so that one can sit on it
(``Listener.make_protocol`` makes a ``Session`` subclass; the session only parses
bytes). This test builds the smallest such front end, h11 over a ``Session``, and
checks that everything the listener promises holds for it as it does for ``serve``
and the tunnel: the policy refuses in the handshake, a reload that revokes a client
cuts its kept-alive connection within the bound, and the client's ticket from before
the revocation does not resume. A real client (httpx) talks to it.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import h11
import httpx
import pytest

from tests.servers import ServerThread
from tests.trust import client_context, trust_home
from trustwire.authz.policy import Policy
from trustwire.net.listener import Listener
from trustwire.net.session import CUT_BOUND, Session
from trustwire.ops.reload import Reloader, TrustSource
from trustwire.pki.store import Home
from trustwire.tls.context import ServerTLS


class HttpSession(Session):
    """HTTP/1.1 with keep-alive: every request is answered with who asked for what."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(listener)
        self.http = h11.Connection(h11.SERVER)
        self.target = b""

    def tls_data(self, data: memoryview) -> None:
        self.http.receive_data(bytes(data))
        self._answer()

    def on_data_end(self, clean: bool) -> None:
        self.http.receive_data(b"")
        self._answer()

    def _answer(self) -> None:
        while not self.tls.closed:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError:
                self.tls.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.target = event.target
            elif isinstance(event, h11.EndOfMessage):
                assert self.peer is not None  # admitted sessions always have a peer
                body = f"hello {self.peer.common_name}, you asked for {self.target.decode()}"
                send = self.http.send
                self.tls.write(send(h11.Response(status_code=200, headers=[
                    ("content-type", "text/plain"), ("content-length", str(len(body)))])) or b"")
                self.tls.write(send(h11.Data(data=body.encode())) or b"")
                self.tls.write(send(h11.EndOfMessage()) or b"")
                self.messages += 1
                self.http.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                self.tls.close()
                return


class HttpListener(Listener):
    def __init__(self, source: TrustSource) -> None:
        super().__init__(source.build())
        self.reloader = Reloader(self, source)

    def make_protocol(self) -> HttpSession:  # type: ignore[override]
        session = HttpSession(self)
        self.track(session)
        return session.tls  # type: ignore[return-value]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return trust_home(tmp_path)


def _client(home: Home, name: str) -> httpx.Client:
    return httpx.Client(verify=client_context(home, name), timeout=5)


def _serve(home: Home, tmp_path: Path) -> ServerThread:
    source = TrustSource.of(ServerTLS.from_identity(home, "server"),
                            Policy(cn={"alice", "carol"}))
    return ServerThread(lambda audit: HttpListener(source), audit_path=tmp_path / "audit.jsonl")


def test_the_policy_admits_and_refuses_an_http_front_end_in_the_handshake(
        home: Home, tmp_path: Path) -> None:
    with _serve(home, tmp_path) as st:
        url = f"https://localhost:{st.port}/status"
        with _client(home, "alice") as alice:
            answer = alice.get(url)
            assert answer.status_code == 200
            assert answer.text == "hello alice, you asked for /status"
            assert alice.get(url).status_code == 200  # the same connection, kept alive
        # TLS 1.3 clients learn of the refusal on their first read (ReadError).
        with _client(home, "bob") as bob, \
                pytest.raises((httpx.ConnectError, httpx.ReadError)) as refused:
            bob.get(url)
        assert "CERTIFICATE_UNKNOWN" in str(refused.value).upper()  # a TLS alert, not a 403
        denied = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
        assert denied["cn"] == "bob" and denied["reason"] == "policy-denied"
        stats = st.server.stats  # type: ignore[union-attr]
        assert (stats.handshakes_ok, stats.access_denied, stats.messages) == (1, 1, 2)


def _get(tls: ssl.SSLSocket, path: str) -> bytes:
    tls.sendall(f"GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n".encode())
    answer = b""
    while b"you asked for" not in answer or not answer.endswith(path.encode()):
        chunk = tls.recv(4096)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_revocation_cuts_a_kept_alive_connection_and_its_ticket(
        home: Home, tmp_path: Path, version: ssl.TLSVersion) -> None:
    ctx = client_context(home, "carol", version)
    with _serve(home, tmp_path) as st:
        with socket.create_connection(("127.0.0.1", st.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert b"hello carol" in _get(tls, "/before")
            saved = tls.session
            assert saved is not None and (saved.has_ticket or saved.id)
            with socket.create_connection(("127.0.0.1", st.port), timeout=5) as raw2, \
                    ctx.wrap_socket(raw2, server_hostname="localhost", session=saved) as again:
                assert b"hello carol" in _get(again, "/resumed")
                assert again.session_reused  # resumption works while carol is admitted
            home.revoke("carol")
            outcome = st.call(lambda: st.server.reloader.reload("test"))  # type: ignore[union-attr]
            assert outcome.ok and outcome.sessions_cut == 1
            cut_at = time.monotonic()
            tls.settimeout(CUT_BOUND + 1)
            try:
                tls.sendall(b"GET /after HTTP/1.1\r\nhost: localhost\r\n\r\n")
                late = tls.recv(4096)
            except (ssl.SSLError, OSError):
                late = b""
            assert late == b"", f"answered after the revocation: {late!r}"
            assert time.monotonic() - cut_at < CUT_BOUND + 0.5
        # The ticket (or TLS 1.2 session) taken before the revocation: no way back in.
        with pytest.raises((ssl.SSLError, OSError)), \
                socket.create_connection(("127.0.0.1", st.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost", session=saved) as tls:
            _get(tls, "/with-the-old-ticket")
        revoked = st.wait_for_event(lambda e: e["event"] == "access_revoked")
        assert revoked["cn"] == "carol" and revoked["code"] == "revoked"
        failed = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
        assert failed["cn"] == "carol" and failed["reason"] == "revoked"
