"""Handshake-message parsers, fed with what real OpenSSL handshakes send."""

from __future__ import annotations

import contextlib
import ssl

import pytest

from tests.conftest import Pki
from trustwire.probe.messages import (
    HRR_RANDOM,
    LOG_BYTES,
    LOG_MESSAGES,
    HandshakeLog,
    parse_server_hello,
)
from trustwire.tls import native


def capture(pki: Pki, *, version: ssl.TLSVersion, groups: str | None = None,
            client_cert: bool = False, server: ssl.SSLContext | None = None) -> HandshakeLog:
    """Run a memory-BIO handshake against a trustwire server context, logging messages."""
    server = server or pki.server_tls(maximum_version=version).context()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.maximum_version = version
    if groups:
        assert native.set_groups(client, groups)
    if client_cert:
        alice = pki.home.identity("alice")
        client.load_cert_chain(alice.cert, alice.key)
    log = HandshakeLog()
    client._msg_callback = lambda conn, d, v, ct, mt, data: log.record(d, int(ct), int(mt), data)  # type: ignore[attr-defined]
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    for _ in range(6):
        for side in (cli, srv):
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
                side.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
    with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
        cli.read(10)  # TLS 1.3 tickets
    return log


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                               (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_server_hello_version_suite_and_group(pki: Pki, version: ssl.TLSVersion, name: str) -> None:
    log = capture(pki, version=version, groups="P-256", client_cert=True)
    hello = log.server_hello()
    assert hello is not None and hello.version == name and not hello.retry
    assert hello.cipher_id in (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02C, 0xCCA9)
    assert log.group() == "secp256r1"  # key_share (1.3) or ServerKeyExchange (1.2)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_chain_and_certificate_request(pki: Pki, version: ssl.TLSVersion) -> None:
    log = capture(pki, version=version)
    chain, ocsp = log.chain_and_ocsp()
    assert ocsp is None
    from cryptography import x509

    certs = [x509.load_der_x509_certificate(der) for der in chain]
    assert certs[0].subject.rfc4514_string() == "CN=server"
    # OpenSSL auto-chains from its store: the root may follow the leaf (RFC 8446 allows it)
    assert [c.subject.rfc4514_string() for c in certs[1:]] in ([], ["CN=session CA"])
    assert log.certificate_requested  # trustwire servers ask for client certificates


def test_tickets_are_seen_when_accepted(pki: Pki) -> None:
    assert capture(pki, version=ssl.TLSVersion.TLSv1_3, client_cert=True).ticket_received
    assert not capture(pki, version=ssl.TLSVersion.TLSv1_3).ticket_received  # refused: no ticket


def test_hello_retry_request_is_recognised() -> None:
    body = b"\x03\x03" + HRR_RANDOM + b"\x00" + b"\x13\x01" + b"\x00" + \
        b"\x00\x0c" + b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x02\x00\x17"
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    hello = parse_server_hello(message)
    assert hello.retry and hello.version == "TLSv1.3" and hello.group == "secp256r1"


def test_after_a_hello_retry_request_the_real_server_hello_counts(pki: Pki) -> None:
    # a server that takes only P-384 (PostgreSQL's ssl_ecdh_curve does this) answers the
    # client's X25519 key share with a HelloRetryRequest, then accepts TLS 1.3 on P-384
    server = pki.server_tls().context()
    assert native.set_groups(server, "P-384")
    log = capture(pki, version=ssl.TLSVersion.TLSv1_3, groups="X25519:P-384", server=server)
    hellos = [data for kind, data in log.received if kind == 2]
    assert len(hellos) == 2 and parse_server_hello(hellos[0]).retry
    hello = log.server_hello()
    assert hello is not None and not hello.retry and hello.version == "TLSv1.3"
    assert log.group() == "secp384r1"


def test_garbage_does_not_crash_the_log() -> None:
    log = HandshakeLog()
    log.record("read", 22, 2, b"\x02\x00\x00\x01")
    log.record("read", 22, 11, b"\x0b\x00\x00\x07\x00\x00\x09abc")
    assert log.server_hello() is None
    assert log.chain_and_ocsp() == ([], None)


def test_the_log_keeps_at_most_its_limit_of_messages_and_bytes() -> None:
    log = HandshakeLog()
    for _ in range(LOG_MESSAGES + 10):
        log.record("read", 22, 0, b"\x00\x00\x00\x00")
    assert len(log.received) == LOG_MESSAGES and log.overflowed
    big = HandshakeLog()
    certificate = b"\x0b" + (64 << 10).to_bytes(3, "big") + bytes(64 << 10)
    for _ in range(LOG_BYTES // len(certificate) + 2):
        big.record("read", 22, 11, certificate)
    assert big.overflowed and big.size <= LOG_BYTES
    small = HandshakeLog()
    small.record("read", 22, 2, b"\x02\x00\x00\x00")
    small.record("read", 21, 0, b"\x02\x28")
    assert not small.overflowed and small.alerts == [40]
