"""CRLs from an intermediate the clients send: every CRL OpenSSL uses counts on every path.

The PKI: a root R (the only certificate in the CA file), an intermediate IA that
issues the server and dave (so IA is in the server's chain), and an intermediate IB
that issues carol and that only carol's chain carries. OpenSSL checks each leaf
against its issuer's CRL (``VERIFY_CRL_CHECK_LEAF``), so the CRL file holds R's,
IA's and IB's. Found by the third review: IB's CRL was skipped by trustwire's own
checks (its issuer is in neither the chain nor the CA file) while OpenSSL used it,
so revoking carol there did not cut her open session and IB's CRL could be rolled
back.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers import ServerThread
from tests.trust import frame, read_frame
from trustwire import services
from trustwire.net.session import CUT_BOUND
from trustwire.server.server import Server
from trustwire.tls.context import ClientTLS, ServerTLS
from trustwire.wire import LengthCodec, RemoteError

NOW = dt.datetime.now(dt.UTC)
Key = ec.EllipticCurvePrivateKey


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


def _cert(cn: str, key: Key, issuer: str, issuer_key: Key, *, ca: bool,
          eku: x509.ObjectIdentifier | None = None, dns: str | None = None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if dns is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(issuer: str, key: Key, number: int, revoked: tuple[int, ...] = (),
         next_update: dt.datetime | None = None) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .last_update(NOW - dt.timedelta(minutes=10) + dt.timedelta(seconds=number))
        .next_update(next_update or NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(NOW - dt.timedelta(minutes=5)).build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Pki:
    def __init__(self, where: Path) -> None:
        self.where = where
        root_key, self.ia_key, self.ib_key = (ec.generate_private_key(ec.SECP256R1())
                                              for _ in range(3))
        self.root_key = root_key
        root = _cert("Root R", root_key, "Root R", root_key, ca=True)
        ia = _cert("Int IA", self.ia_key, "Root R", root_key, ca=True)
        ib = _cert("Int IB", self.ib_key, "Root R", root_key, ca=True)
        (where / "ca.crt").write_bytes(root.public_bytes(serialization.Encoding.PEM))
        self.serials: dict[str, int] = {}
        for name, issuer, issuer_name, kind in (
                ("server", ia, "Int IA", ExtendedKeyUsageOID.SERVER_AUTH),
                ("dave", ia, "Int IA", ExtendedKeyUsageOID.CLIENT_AUTH),
                ("carol", ib, "Int IB", ExtendedKeyUsageOID.CLIENT_AUTH)):
            key = ec.generate_private_key(ec.SECP256R1())
            signer = self.ia_key if issuer is ia else self.ib_key
            leaf = _cert(name, key, issuer_name, signer, ca=False, eku=kind,
                         dns="localhost" if name == "server" else None)
            self.serials[name] = leaf.serial_number
            (where / f"{name}.crt").write_bytes(b"".join(
                c.public_bytes(serialization.Encoding.PEM) for c in (leaf, issuer)))
            (where / f"{name}.key").write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        self.fixed = _crl("Root R", root_key, 1) + _crl("Int IA", self.ia_key, 1)

    def write_crls(self, ib: bytes | None) -> None:
        tmp = self.where / "crl.tmp"
        tmp.write_bytes(self.fixed + (ib or b""))
        tmp.replace(self.where / "crl.pem")

    def ib_crl(self, number: int, *, revoke: tuple[str, ...] = (),
               next_update: dt.datetime | None = None) -> bytes:
        return _crl("Int IB", self.ib_key, number, tuple(self.serials[n] for n in revoke),
                    next_update)

    def client(self, name: str) -> ssl.SSLContext:
        return ClientTLS(ca=self.where / "ca.crt", cert=self.where / f"{name}.crt",
                         key=self.where / f"{name}.key").context()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = Pki(tmp_path)
    made.write_crls(made.ib_crl(1))
    return made


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    tls = ServerTLS(cert=pki.where / "server.crt", key=pki.where / "server.key",
                    ca=pki.where / "ca.crt", crl=pki.where / "crl.pem")
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        yield st


def _reload(st: ServerThread) -> tuple[bool, int, str | None]:
    outcome = st.call(lambda: st.server.reloader.reload("test"))  # type: ignore[union-attr]
    return outcome.ok, outcome.sessions_cut, outcome.error


def _open(ctx: ssl.SSLContext, port: int) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(frame(b"hi"))
    assert read_frame(tls) == b"HI"
    return tls


def _refused(ctx: ssl.SSLContext, port: int) -> str:
    with pytest.raises((ssl.SSLError, OSError)) as info:
        _open(ctx, port).close()  # TLS 1.3: the alert arrives on the first read
    return str(info.value)


def _cut_reason(tls: ssl.SSLSocket) -> str:
    """What the server said when it cut this session (after at most CUT_BOUND + 1 s)."""
    tls.settimeout(CUT_BOUND + 1)
    received = b""
    try:
        while chunk := tls.recv(4096):
            received += chunk
    except (ssl.SSLError, OSError):
        pass
    codec = LengthCodec()
    codec.receive_data(received)
    event = codec.next_event()
    assert isinstance(event, RemoteError), received
    return event.reason


def test_a_revocation_in_the_clients_intermediates_crl_cuts_the_open_session(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
    assert _reload(server)[:2] == (True, 1)
    assert _cut_reason(held).startswith("access revoked: the certificate of CN=carol has been "
                                        "revoked")
    held.close()
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    _open(pki.client("dave"), server.port).close()  # IA's client is untouched


def test_the_intermediates_crl_cannot_be_rolled_back(pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
    assert _reload(server)[0]
    pki.write_crls(pki.ib_crl(1))  # the older CRL, validly signed, without the revocation
    ok, _, error = _reload(server)
    assert not ok and error is not None and "refusing to roll back" in error
    assert "CN=Int IB" in error
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()


def test_without_the_intermediates_crl_its_clients_are_refused_on_every_path(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(None)  # IB's CRL dropped: OpenSSL refuses carol, so does every other path
    assert _reload(server)[:2] == (True, 1)
    assert "no CRL from the issuer" in _cut_reason(held)
    held.close()
    message = _refused(carol, server.port).upper()
    assert "INTERNAL_ERROR" in message  # this side's CRL is missing, not carol's CA unknown
    failed = server.wait_for_event(lambda e: e["event"] == "handshake_failed")
    assert failed["reason"] == "crl-missing" and failed["cn"] == "carol"
    _open(pki.client("dave"), server.port).close()


def test_an_expired_intermediate_crl_refuses_only_that_intermediates_clients(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(pki.ib_crl(2, next_update=NOW - dt.timedelta(minutes=1)))
    assert _reload(server)[:2] == (True, 1)  # kept (it refuses only IB's own clients)
    assert "the CRL in force has expired" in _cut_reason(held)
    held.close()
    assert "INTERNAL_ERROR" in _refused(carol, server.port).upper()
    _open(pki.client("dave"), server.port).close()  # IA's CRL is fresh: dave is served
