"""Per-connection OpenSSL calls on in-memory TLS pairs (ssl.MemoryBIO), no sockets."""

from __future__ import annotations

import contextlib
import ssl

import pytest

from tests.conftest import Pki
from trustwire.tls import native_conn


def pair(pki: Pki, version: ssl.TLSVersion) -> tuple[ssl.SSLObject, ssl.SSLObject, list[ssl.MemoryBIO]]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server = pki.home.identity("server")
    server_ctx.load_cert_chain(server.cert, server.key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(pki.home.ca_cert_path)
    client_ctx.maximum_version = version
    bios = [ssl.MemoryBIO() for _ in range(4)]  # client in/out, server in/out
    client = client_ctx.wrap_bio(bios[0], bios[1], server_hostname="localhost")
    srv = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
    return client, srv, bios


def pump(client: ssl.SSLObject, server: ssl.SSLObject, bios: list[ssl.MemoryBIO]) -> None:
    """Handshake both ends until no bytes move (bounded)."""
    for _ in range(20):
        for end in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        moved = bios[1].pending or bios[3].pending
        bios[2].write(bios[1].read())
        bios[0].write(bios[3].read())
        if not moved:
            return


def test_renegotiation_is_started_on_tls12_and_refused_by_openssl_3_servers(pki: Pki) -> None:
    client, server, bios = pair(pki, ssl.TLSVersion.TLSv1_2)
    pump(client, server, bios)
    assert client.version() == "TLSv1.2"
    assert native_conn.renegotiate(client) is True  # type: ignore[arg-type]
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()  # the new ClientHello goes out
    bios[2].write(bios[1].read())
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)  # OpenSSL 3 answers a warning no_renegotiation alert
    bios[0].write(bios[3].read())
    with pytest.raises(ssl.SSLError, match="NO_RENEGOTIATION"):
        client.do_handshake()


def test_tls13_cannot_renegotiate_and_sends_no_early_data_without_a_ticket(pki: Pki) -> None:
    client, server, bios = pair(pki, ssl.TLSVersion.TLSv1_3)
    assert native_conn.write_early_data(client) is False  # type: ignore[arg-type]
    pump(client, server, bios)
    assert client.version() == "TLSv1.3"
    assert native_conn.renegotiate(client) is False  # type: ignore[arg-type]
    assert native_conn.early_data_status(client) is native_conn.EarlyData.NOT_SENT  # type: ignore[arg-type]


def test_ct_can_be_requested() -> None:
    assert native_conn.enable_ct(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) is True
