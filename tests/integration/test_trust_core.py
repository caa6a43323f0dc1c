"""Issue 11's breaks, through real sockets, on serve, tunnel server and a library server alike.

Each was reproduced against the code before the trust core (resumption after a
revocation, a partial-frame holder never cut, a handshake straddling a reload,
bare sockets locking certificate holders out) and must now be impossible.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trust import (
    FLAVORS,
    Flavor,
    client_context,
    flavor,
    frame,
    read_frame,
    request,
    trust_home,
)
from trustwire.pki.store import Home
from trustwire.wire import NEED_DATA, LengthCodec, RemoteError

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return trust_home(tmp_path)


@pytest.fixture(params=FLAVORS)
def server(request: pytest.FixtureRequest, home: Home) -> Iterator[Flavor]:
    with flavor(request.param, home) as running:
        yield running


def refused_with(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "") or exc)


# -- resumption -------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_a_revoked_client_cannot_resume_a_session_from_before(server: Flavor, home: Home,
                                                              version: ssl.TLSVersion) -> None:
    """Break 1: a ticket taken before `cert revoke` used to keep access for the process's life."""
    alice = client_context(home, "alice", version)
    reply, session, reused = request(alice, server.port)
    assert reply == b"HI" and not reused and session is not None
    _, again, reused = request(alice, server.port, session=session)
    assert reused, "resumption must work before the revocation"
    bob = client_context(home, "bob", version)
    _, bob_session, _ = request(bob, server.port)
    home.revoke("alice")
    server.wait_for("reloaded")
    for offered in (session, again):  # the first ticket, and the one the resumption handed out
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            request(alice, server.port, session=offered)
        assert "CERTIFICATE_REVOKED" in refused_with(info.value)  # a full handshake, refused
    # The CRL change also rotated the ticket key: bob's old ticket gives a full handshake.
    reply, _, reused = request(bob, server.port, session=bob_session)
    assert reply == b"HI" and not reused


def test_a_session_of_an_identity_the_policy_no_longer_allows_is_not_resumed(
        home: Home, tmp_path: Path) -> None:
    """A policy reload (SIGHUP) keeps the ticket key, so the ticket check must refuse it."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\ncn = ["alice", "bob"]\n')
    for kind in FLAVORS:
        with flavor(kind, home, "--policy", str(policy)) as server:
            alice = client_context(home, "alice", ssl.TLSVersion.TLSv1_3)
            _, session, _ = request(alice, server.port)
            assert request(alice, server.port, session=session)[2]
            policy.write_text('[allow]\ncn = ["bob"]\n')
            server.wait_for("reloaded")
            with pytest.raises(ssl.SSLError) as info:
                request(alice, server.port, session=session)
            assert "CERTIFICATE_UNKNOWN" in refused_with(info.value), kind
            bob = client_context(home, "bob", ssl.TLSVersion.TLSv1_3)
            _, bob_session, _ = request(bob, server.port)
            assert request(bob, server.port, session=bob_session)[2], kind  # same key: resumes
            policy.write_text('[allow]\ncn = ["alice", "bob"]\n')
            server.wait_for("reloaded", count=2)


# -- open sessions at a reload ----------------------------------------------------------------

def test_a_partial_frame_holder_is_cut_within_the_bound(server: Flavor, home: Home) -> None:
    """Break 2: the cut waited for "the current frame"; this client always leaves half a
    header buffered (each write completes one empty message and starts the next)."""
    alice = client_context(home, "alice")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
            alice.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(frame(b"hi"))
        assert read_frame(tls) == b"HI"
        tls.sendall(b"\x00\x00")  # half a header
        home.revoke("alice")
        server.wait_for("reloaded")
        reloaded = time.monotonic()
        received = b""
        tls.settimeout(0.1)
        while time.monotonic() - reloaded < 3:
            try:
                tls.sendall(b"\x00\x00\x00\x00")
                chunk = tls.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            received += chunk
        took = time.monotonic() - reloaded
    assert took < 2.0, f"still connected {took:.1f}s after the reload"
    if server.kind == "tunnel":  # no frames to say why in: the cut is the message
        assert received == b"", "data was exchanged after the revocation"
    else:  # the only bytes after the reload are the reason: no message was answered
        codec = LengthCodec()
        codec.receive_data(received)
        event = codec.next_event()
        assert isinstance(event, RemoteError) and event.reason.startswith(
            "access revoked: the certificate of CN=alice has been revoked")
        assert codec.next_event() is NEED_DATA
    revoked = server.wait_for_event("access_revoked")
    assert revoked["cn"] == "alice" and revoked["code"] == "revoked"


def _held_handshake(ctx: ssl.SSLContext, port: int) -> tuple[socket.socket, ssl.SSLObject,
                                                            ssl.MemoryBIO, bytes]:
    """Run a client handshake up to its certificate flight and keep that flight back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    sock.sendall(outgoing.read())  # ClientHello
    while True:
        incoming.write(sock.recv(65536))
        try:
            tls.do_handshake()  # TLS 1.3: our side completes here
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:  # TLS 1.2: our flight is ready, the server's Finished is not
                break
    return sock, tls, incoming, outgoing.read()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_handshake_that_straddles_a_reload_is_judged_by_the_new_crl(
        server: Flavor, home: Home, version: ssl.TLSVersion) -> None:
    """Break 3: the client holds its certificate back until the CRL revoking it is loaded."""
    sock, tls, incoming, flight = _held_handshake(client_context(home, "alice", version),
                                                  server.port)
    with sock:
        home.revoke("alice")
        server.wait_for("reloaded")
        sock.sendall(flight)  # the certificate arrives on a context built before the reload
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        incoming.write(answer)
        finish = tls.do_handshake if version is ssl.TLSVersion.TLSv1_2 else lambda: tls.read(10)
        with pytest.raises(ssl.SSLError) as info:
            finish()
    assert "CERTIFICATE_REVOKED" in refused_with(info.value)
    failed = server.wait_for_event("handshake_failed")
    assert failed["reason"] == "revoked" and failed["cn"] == "alice"
    assert server.backend is None or server.backend.connections == 0


# -- before authentication --------------------------------------------------------------------

def test_thousands_of_bare_sockets_from_one_source_do_not_lock_certificate_holders_out(
        server: Flavor, home: Home) -> None:
    """Break 4: bare TCP connections counted against --max-connections with no other cap."""
    bare: list[socket.socket] = []
    try:
        for _ in range(2000):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))  # one source, not the certificate holders' address
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", server.port))
            bare.append(s)
        alice = client_context(home, "alice")
        started = time.monotonic()
        for _ in range(20):
            assert request(alice, server.port)[0] == b"HI"
        assert time.monotonic() - started < 5
        def refused_from_the_flood() -> int:
            return sum(e["count"] for e in server.events("refused")
                       if e["reason"].startswith("too many unfinished handshakes from 127.0.0.2"))

        deadline = time.monotonic() + 5
        while refused_from_the_flood() < 2000 - 128 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert refused_from_the_flood() >= 2000 - 128  # all but the per-source allowance
        lines = [e for e in server.events("refused") if "127.0.0.2" in e["reason"]]
        assert len(lines) < 20  # one line per second with a count, not one per socket
    finally:
        for s in bare:
            s.close()


def test_sigterm_drains_a_library_server_too(home: Home) -> None:
    """Break 5: a library tw.Server had no signal handling (SIGTERM exited 143)."""
    with flavor("library", home) as server:
        alice = client_context(home, "alice")
        assert request(alice, server.port)[0] == b"HI"
        server.run.proc.send_signal(signal.SIGTERM)
        assert server.run.proc.wait(15) == 0
        assert "stopped" in server.run.said() and "Traceback" not in server.run.said()
    with flavor("library", home) as server:
        server.run.proc.send_signal(signal.SIGINT)
        assert server.run.proc.wait(15) == 0
        assert "Traceback" not in server.run.said()


@pytest.mark.parametrize("kind", ["serve", "tunnel"])
def test_the_metrics_endpoint_has_its_own_connection_cap(home: Home, kind: str) -> None:
    """Break 4: the metrics port had no cap and shares the listener's descriptors."""
    from tests.servers import Running

    with flavor(kind, home, "--metrics", "127.0.0.1:0") as server:
        url = Running.metrics_url(server.run)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        try:
            time.sleep(0.3)
            readable, _, _ = select.select(held, [], [], 1.0)  # aborted ones read as closed
            assert len(readable) >= 200 - 16  # all but the newest 16 made room for others
            assert request(client_context(home, "alice"), server.port)[0] == b"HI"
            for _ in range(5):  # idle sockets crowd the endpoint: a scrape still gets in
                held.extend(socket.create_connection(("127.0.0.1", port)) for _ in range(16))
                with urllib.request.urlopen(url + "healthz", timeout=5) as response:  # noqa: S310
                    assert response.status == 200
        finally:
            for s in held:
                s.close()


def _bundle_home(tmp_path: Path) -> tuple[Home, Home, Path]:
    """A server from CA "a" trusting a bundle of CA "a" and CA "c"; c issued carol."""
    from trustwire.pki.ca import CertKind

    a, c = Home(tmp_path / "a"), Home(tmp_path / "c")
    a.init_ca(name="CA a")
    c.init_ca(name="CA c")
    from tests.trust import LOCAL

    a.issue("server", kind=CertKind.SERVER, sans=LOCAL)
    c.issue("carol", kind=CertKind.CLIENT)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(a.ca_cert_path.read_bytes() + c.ca_cert_path.read_bytes())
    return a, c, bundle


@pytest.mark.parametrize("version", VERSIONS)
def test_a_connection_opened_before_a_ca_is_removed_cannot_resume_with_its_ticket(
        tmp_path: Path, version: ssl.TLSVersion) -> None:
    """Review finding: a connection accepted before the reload runs on the old context, whose
    ticket key opened the old ticket; its CA had been removed, yet it resumed and stayed."""
    from tests.servers import ServerThread
    from trustwire.server.server import Server
    from trustwire.services import upper
    from trustwire.tls.context import ClientTLS, ServerTLS

    a, c, bundle = _bundle_home(tmp_path)
    files = a.identity("server")
    tls = ServerTLS(cert=files.cert, key=files.key, ca=bundle)
    carol = ClientTLS(ca=a.ca_cert_path, cert=c.cert_path("carol"), key=c.key_path("carol"),
                      maximum_version=version, minimum_version=version).context()
    with ServerThread(lambda audit: Server(upper, tls=tls)) as st:
        _, ticket, _ = request(carol, st.port)
        assert request(carol, st.port, session=ticket)[2]
        early = socket.create_connection(("127.0.0.1", st.port), timeout=5)  # nothing sent yet
        bundle.write_bytes(a.ca_cert_path.read_bytes())  # CA c is no longer trusted
        outcome = st.call(st.server.reload)  # type: ignore[union-attr]
        assert outcome.ok

        def resume_on_the_early_socket() -> None:
            with early, carol.wrap_socket(early, server_hostname="localhost",
                                          session=ticket) as tls_early:
                tls_early.sendall(frame(b"hi"))
                read_frame(tls_early)

        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            resume_on_the_early_socket()
        assert "UNKNOWN_CA" in refused_with(info.value)  # a full handshake, refused
        with pytest.raises(ssl.SSLError) as fresh:
            request(carol, st.port, session=ticket)
        assert "UNKNOWN_CA" in refused_with(fresh.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_servers_from_ready_contexts_do_not_honour_each_others_tickets(
        tmp_path: Path, version: ssl.TLSVersion) -> None:
    """Review finding: every ServerTLS.context() in a process had the same ticket keys, so a
    ticket from a server trusting CA c opened a session on one that trusts only CA a."""
    from tests.servers import ServerThread
    from trustwire.server.server import Server
    from trustwire.services import upper
    from trustwire.tls.context import ClientTLS, ServerTLS

    a, c, _ = _bundle_home(tmp_path)
    files = a.identity("server")
    trusts_a = ServerTLS(cert=files.cert, key=files.key, ca=a.ca_cert_path).context()
    trusts_c = ServerTLS(cert=files.cert, key=files.key, ca=c.ca_cert_path).context()
    carol = ClientTLS(ca=a.ca_cert_path, cert=c.cert_path("carol"), key=c.key_path("carol"),
                      maximum_version=version, minimum_version=version).context()
    with ServerThread(lambda audit: Server(upper, tls=trusts_a)) as sa, \
            ServerThread(lambda audit: Server(upper, tls=trusts_c)) as sc:
        _, ticket, _ = request(carol, sc.port)
        assert request(carol, sc.port, session=ticket)[2]  # its own server resumes it
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            request(carol, sa.port, session=ticket)
        assert "UNKNOWN_CA" in refused_with(info.value)
