"""Certificates from the CA complete real mutual-TLS handshakes in Python's ssl (strict)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

LOCAL = SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1"])


def server_context(home: Home, name: str, version: ssl.TLSVersion, crl: bool = False) -> ssl.SSLContext:
    ident = home.identity(name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(ident.cert, ident.key)
    ctx.load_verify_locations(ident.ca)
    if crl:
        ctx.load_verify_locations(home.crl_path)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def client_context(home: Home, name: str) -> ssl.SSLContext:
    ident = home.identity(name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(ident.cert, ident.key)
    ctx.load_verify_locations(ident.ca)
    return ctx


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str = "localhost") -> tuple[dict[str, object] | None, str | None, BaseException | None]:
    """One loopback connection; returns (server's view of the client cert, client reply, server error)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(tls.recv(100).upper())
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    reply = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(b"hello, server!")
            reply = tls.recv(100).decode() or None
    except (ssl.SSLError, OSError):
        reply = None
    thread.join(timeout=10)
    return seen.get("peer"), reply, seen.get("error")  # type: ignore[return-value]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("fixture", ["home", "inter_home"])
def test_strict_mutual_tls_handshake(
    fixture: str, version: ssl.TLSVersion, request: pytest.FixtureRequest,
) -> None:
    h: Home = request.getfixturevalue(fixture)
    h.issue("localhost", kind=CertKind.SERVER, sans=LOCAL)
    h.issue("alice", kind=CertKind.CLIENT)
    peer, reply, error = handshake(server_context(h, "localhost", version), client_context(h, "alice"))
    assert error is None
    assert reply == "HELLO, SERVER!"
    assert peer is not None
    assert peer["subject"] == ((("commonName", "alice"),),)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_revoked_client_is_refused_with_the_crl(home: Home, version: ssl.TLSVersion) -> None:
    home.issue("localhost", kind=CertKind.SERVER, sans=LOCAL)
    home.issue("alice", kind=CertKind.CLIENT)
    home.revoke("alice")
    peer, reply, error = handshake(server_context(home, "localhost", version, crl=True),
                                   client_context(home, "alice"))
    assert peer is None and reply is None
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert "revoked" in str(error)


def test_client_cert_from_another_ca_is_refused(home: Home, tmp_path: Path) -> None:
    other = Home(tmp_path / "other")
    other.init_ca(name="other CA")
    other.issue("alice", kind=CertKind.CLIENT)
    home.issue("localhost", kind=CertKind.SERVER, sans=LOCAL)
    client = client_context(other, "alice")
    client.load_verify_locations(home.ca_cert_path)  # trust the server, present a foreign cert
    _, reply, error = handshake(server_context(home, "localhost", ssl.TLSVersion.TLSv1_3), client)
    assert reply is None
    assert isinstance(error, ssl.SSLCertVerificationError)
    # OpenSSL auto-chains the foreign root, so the server sees it as an untrusted self-signed root.
    assert ("self-signed certificate in certificate chain" in str(error)
            or "unable to get local issuer certificate" in str(error))
