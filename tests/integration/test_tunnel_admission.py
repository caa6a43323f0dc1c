"""An in-process tunnel server: who gets through, how the others are refused, and truncation.

The refused never reach the backend: the admission decision is taken inside the
handshake, and its TLS alert says why (stunnel refuses the same way).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.servers import ServerThread
from tests.trust import frame, read_frame, upper_backend
from trustwire.authz.policy import Policy
from trustwire.client import connect
from trustwire.errors import AccessDenied, HandshakeError
from trustwire.ops.audit import AuditObserver
from trustwire.tls.context import ClientTLS
from trustwire.tunnel import Target, TunnelServer

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.fixture
def tunnel(pki: Pki, tmp_path: Path) -> Iterator[tuple[ServerThread, object]]:
    with upper_backend() as backend:
        target = Target(host="127.0.0.1", port=backend.server_address[1])
        with ServerThread(lambda audit: TunnelServer(
                target=target, tls=pki.server_tls(), policy=Policy(cn={"alice", "expired"}),
                observer=AuditObserver(audit) if audit else None),
                audit_path=tmp_path / "audit.jsonl") as st:
            yield st, backend


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("who", "reason", "error"), [
    ("mallory", "revoked", HandshakeError),      # in the CRL
    ("expired", "expired", HandshakeError),      # allowed by name, but expired
    ("bob", "policy-denied", AccessDenied),      # verified, not allowed
])
def test_refused_clients_never_reach_the_backend(pki: Pki, tunnel: tuple[ServerThread, object],
                                                 version: ssl.TLSVersion, who: str, reason: str,
                                                 error: type[HandshakeError]) -> None:
    st, backend = tunnel
    with pytest.raises(error) as info, \
            connect("localhost", st.port, tls=pki.client(who, maximum_version=version)) as c:
        c.request(b"let me in")  # TLS 1.3: the refusal can surface on the first read
    assert info.value.diagnosis.reason == reason
    assert info.value.diagnosis.side == "server"
    event = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
    assert event["reason"] == reason and event["cn"] == who
    # Refused by OpenSSL's own checks: the names are what the certificate claims.
    assert event.get("verified", True) is (reason == "policy-denied")
    assert backend.connections == 0  # type: ignore[attr-defined]
    with connect("localhost", st.port, tls=pki.client("alice", maximum_version=version)) as alice:
        assert alice.request(b"through") == b"THROUGH"
    assert backend.connections == 1  # type: ignore[attr-defined]


def test_a_foreign_ca_and_no_certificate_are_refused(pki: Pki,
                                                     tunnel: tuple[ServerThread, object]) -> None:
    st, backend = tunnel
    foreign = pki.other.identity("alice")  # another CA's alice: trusts our server, is not ours
    with pytest.raises(HandshakeError) as info:
        connect("localhost", st.port, tls=ClientTLS(ca=pki.home.ca_cert_path, cert=foreign.cert,
                                                    key=foreign.key))
    assert info.value.diagnosis.reason == "unknown-ca" and info.value.diagnosis.side == "server"
    forged = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
    assert forged["cn"] == "alice" and forged["verified"] is False  # a claim, not an identity
    with pytest.raises(HandshakeError) as info:
        connect("localhost", st.port, tls=ClientTLS(ca=pki.home.ca_cert_path))
    assert info.value.diagnosis.reason == "client-cert-missing"
    assert backend.connections == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(("size", "pause"), [(15, 0.0), (2_000_000, 0.005)])
def test_a_fin_without_close_notify_reaches_the_backend_as_a_reset(
        pki: Pki, tmp_path: Path, size: int, pause: float) -> None:
    """Break 10: a truncated TLS stream used to reach the backend as a clean EOF; and (second
    review) the reset once overtook the data sent before it (1.8 MB of 2 MB lost when the
    backend read slowly)."""
    seen: list[str] = []
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]

    def backend() -> None:
        conn, _ = listening.accept()
        with conn:
            received = 0
            try:
                while chunk := conn.recv(65536):
                    received += len(chunk)
                    time.sleep(pause)  # a slow reader
                seen.append(f"eof after {received}")
            except ConnectionResetError:
                seen.append(f"reset after {received}")

    thread = threading.Thread(target=backend, daemon=True)
    thread.start()
    with ServerThread(lambda audit: TunnelServer(
            target=Target(host="127.0.0.1", port=port), tls=pki.server_tls(),
            observer=AuditObserver(audit) if audit else None),
            audit_path=tmp_path / "audit.jsonl") as st:
        ctx = pki.client("alice").context()
        raw = socket.create_connection(("127.0.0.1", st.port))
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"x" * size)
        socket.socket.shutdown(tls, socket.SHUT_WR)  # TCP FIN with no close_notify before it
        thread.join(20)
        tls.close()
        assert seen == [f"reset after {size}"]
        closed = st.wait_for_event(lambda e: e["event"] == "closed")
        assert closed["reason"].startswith("truncated: the client closed without close_notify")
    listening.close()


def test_close_notify_still_reaches_the_backend_as_a_clean_eof(
        pki: Pki, tunnel: tuple[ServerThread, object]) -> None:
    st, _ = tunnel
    ctx = pki.client("alice").context()
    with socket.create_connection(("127.0.0.1", st.port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(frame(b"last words"))
        assert read_frame(tls) == b"LAST WORDS"
        tls.unwrap()
    closed = st.wait_for_event(lambda e: e["event"] == "closed")
    assert not closed["reason"].startswith("truncated")
