"""CRLs from an intermediate the clients send: only a CRL that can be checked counts.

The PKI: a root R, an intermediate IA that issues the server and dave (so IA is in
the server's chain), and an intermediate IB that issues carol and that only carol's
chain carries. OpenSSL checks each leaf against its issuer's CRL
(``VERIFY_CRL_CHECK_LEAF``), so the CRL file holds R's, IA's and IB's.

Found by the third review: IB's CRL was skipped by trustwire's own checks while
OpenSSL used it (revoking carol there did not cut her open session; it could be
rolled back). Counting it unchecked was no better (the fourth review): a CRL
naming IB but signed by anyone raised IB's rollback floor and blocked IB's real
revocations. So a CRL is used only when its CA is in the CA file or the chain,
where its signature can be checked; with IB in the CA file (beside R) IB's CRL is
checked and counts on every path; without, IB's clients are refused, never
admitted unchecked.
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
from tests.trust import LOCAL, frame, read_frame
from trustwire import services
from trustwire.net.session import CUT_BOUND
from trustwire.pki.ca import CertKind
from trustwire.pki.store import Home
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
         next_update: dt.datetime | None = None, signer: Key | None = None,
         this_update: dt.datetime | None = None) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .last_update(this_update
                     or NOW - dt.timedelta(minutes=10) + dt.timedelta(seconds=min(number, 300)))
        .next_update(next_update or NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(NOW - dt.timedelta(minutes=5)).build())
    return builder.sign(signer or key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


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
        (where / "ca+ib.crt").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                   for c in (root, ib)))
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
        self.ib = ib
        self.ia_crl1 = _crl("Int IA", self.ia_key, 1)
        self.fixed = _crl("Root R", root_key, 1) + self.ia_crl1
        """R's and IA's CRLs, written before IB's by :meth:`write_crls`."""

    def write_crls(self, ib: bytes | None) -> None:
        """R's and IA's CRLs (:attr:`fixed`), then ``ib``: IB's CRL, or none. ECDSA
        signatures differ each time, so re-signing a number is another CRL (refused as
        a rollback): write :attr:`ib_written` to keep IB's as it is."""
        self.ib_written = ib
        tmp = self.where / "crl.tmp"
        tmp.write_bytes(self.fixed + (ib or b""))
        tmp.replace(self.where / "crl.pem")

    def ib_crl(self, number: int, *, revoke: tuple[str, ...] = (),
               next_update: dt.datetime | None = None, name: str = "Int IB",
               signer: Key | None = None, this_update: dt.datetime | None = None) -> bytes:
        return _crl(name, self.ib_key, number, tuple(self.serials[n] for n in revoke),
                    next_update, signer, this_update)

    def client(self, name: str) -> ssl.SSLContext:
        return ClientTLS(ca=self.where / "ca.crt", cert=self.where / f"{name}.crt",
                         key=self.where / f"{name}.key").context()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = Pki(tmp_path)
    made.write_crls(made.ib_crl(1))
    return made


def reissue_ib(pki: Pki, *, name: str = "Int IB", issuer: str = "Root R",
               aki: bool = True) -> None:
    """IB re-issued by R with IB's own key (so carol still chains): under another
    subject (``name``), issuer spelling (``issuer``), or without an authority key
    identifier. Rewrites the CA file with IB and carol's chain."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(pki.ib_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pki.ib_key.public_key()),
                       critical=False)
    )
    if aki:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            pki.root_key.public_key()), critical=False)
    ib = builder.sign(pki.root_key, hashes.SHA256())
    pem = ib.public_bytes(serialization.Encoding.PEM)
    (pki.where / "ca+ib.crt").write_bytes((pki.where / "ca.crt").read_bytes() + pem)
    carol = x509.load_pem_x509_certificates((pki.where / "carol.crt").read_bytes())[0]
    (pki.where / "carol.crt").write_bytes(carol.public_bytes(serialization.Encoding.PEM) + pem)
    pki.ib = ib


def serving(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    """The body of the ``server`` fixtures: a library server whose CA file holds R and IB."""
    with _server(pki, tmp_path, "ca+ib.crt") as st:
        yield st


def _server(pki: Pki, tmp_path: Path, ca: str) -> ServerThread:
    tls = ServerTLS(cert=pki.where / "server.crt", key=pki.where / "server.key",
                    ca=pki.where / ca, crl=pki.where / "crl.pem")
    return ServerThread(lambda audit: Server(services.upper, tls=tls),
                        audit_path=tmp_path / "audit.jsonl")


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    """The CA file holds R and IB: IB's CRL can be checked."""
    yield from serving(pki, tmp_path)


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


def test_a_revocation_in_the_intermediates_crl_cuts_the_open_session(
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


def test_the_intermediates_crl_cannot_be_rolled_back_or_forged(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
    assert _reload(server)[0]
    pki.write_crls(pki.ib_crl(1))  # the older CRL, validly signed, without the revocation
    ok, _, error = _reload(server)
    assert not ok and error is not None and "refusing to roll back" in error
    assert "CN=Int IB" in error
    forger = ec.generate_private_key(ec.SECP256R1())
    pki.write_crls(pki.ib_crl(10**12, signer=forger))  # IB's name, anyone's key
    ok, _, error = _reload(server)
    assert not ok and error is not None and "not signed by that CA's key" in error
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    pki.write_crls(pki.ib_crl(3, revoke=("carol",)))  # the next real one is taken
    assert _reload(server)[0]


def test_names_match_as_openssl_matches_them(pki: Pki, server: ServerThread) -> None:
    """RFC 5280 7.1: case and white space do not count. A genuine CRL spelled otherwise
    counts for its CA; a second CRL for a CA under another spelling is refused."""
    carol = pki.client("carol")
    pki.write_crls(pki.ib_crl(2, name="int  IB"))
    assert _reload(server)[0]
    _open(carol, server.port).close()
    pki.write_crls(pki.ib_crl(3, name="INT IB", revoke=("carol",)))
    assert _reload(server)[0]
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    forger = ec.generate_private_key(ec.SECP256R1())
    pki.write_crls(pki.ib_crl(4, revoke=("carol",))
                   + _crl("INT IA", pki.ia_key, 9, signer=forger))  # IA's name, another key
    ok, _, error = _reload(server)
    assert not ok and error is not None and "from CN=INT IA is not signed by that CA" in error
    pki.write_crls(pki.ib_crl(4, revoke=("carol",)) + _crl("INT IA", pki.ia_key, 9))
    ok, _, error = _reload(server)  # IA's own key, but a second CRL beside its first
    assert not ok and error is not None and "two CRLs from CN=Int IA (one says CN=INT IA)" in error


def test_an_intermediate_crl_that_cannot_be_checked_is_not_used(
        pki: Pki, tmp_path: Path) -> None:
    """With only R in the CA file, IB's CRL cannot be checked here: it is not used, carol
    is refused on every path (not admitted unchecked), and the operator is told why."""
    forger = ec.generate_private_key(ec.SECP256R1())
    pki.write_crls(pki.ib_crl(10**12, signer=forger))  # would have been IB's floor
    with _server(pki, tmp_path, "ca.crt") as st:
        carol = pki.client("carol")
        assert "INTERNAL_ERROR" in _refused(carol, st.port).upper()  # not unknown_ca
        failed = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
        assert failed["reason"] == "crl-missing" and failed["cn"] == "carol"
        _open(pki.client("dave"), st.port).close()
        assert st.server is not None
        notices = st.server.material.notices
        assert len(notices) == 1 and "the CRL from CN=Int IB" in notices[0]
        assert "add its certificate to the CA file" in notices[0]


def test_an_expiring_intermediate_crl_refuses_only_that_intermediates_clients(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    pki.write_crls(pki.ib_crl(2, next_update=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)))
    assert _reload(server)[0]
    held = _open(carol, server.port)
    assert "the CRL in force has expired" in _cut_reason(held)  # the sweep, a second later
    held.close()
    assert "INTERNAL_ERROR" in _refused(carol, server.port).upper()
    _open(pki.client("dave"), server.port).close()  # IA's CRL is fresh: dave is served


def test_two_cas_of_the_same_name_each_have_their_own_crl(tmp_path: Path) -> None:
    """Fourth review: `ca init` names every CA "trustwire CA" unless told otherwise, so two
    teams' homes bundled hold two CAs of one name. OpenSSL tells them (and their CRLs)
    apart by key identifier; so does trustwire now: each CRL counts for its own CA,
    revocation and rollback included, and the same serial under the other CA is untouched."""
    a, b = Home(tmp_path / "a"), Home(tmp_path / "b")
    for home in (a, b):
        home.init_ca(name="trustwire CA")
    a.issue("server", kind=CertKind.SERVER, sans=LOCAL)
    a.issue("alice", kind=CertKind.CLIENT)
    b.issue("bob", kind=CertKind.CLIENT)
    bundle, crls = tmp_path / "bundle.pem", tmp_path / "crls.pem"
    bundle.write_bytes(a.ca_cert_path.read_bytes() + b.ca_cert_path.read_bytes())

    def write_crls() -> None:
        (tmp_path / "crls.tmp").write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
        (tmp_path / "crls.tmp").replace(crls)

    write_crls()
    tls = ServerTLS(cert=a.cert_path("server"), key=a.key_path("server"), ca=bundle, crl=crls)

    def client(home: Home, name: str) -> ssl.SSLContext:
        return ClientTLS(ca=a.ca_cert_path, cert=home.cert_path(name),
                         key=home.key_path(name)).context()

    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        held_bob = _open(client(b, "bob"), st.port)
        _open(client(a, "alice"), st.port).close()
        b_before = b.crl_path.read_bytes()
        b.revoke("bob")
        write_crls()
        assert _reload(st)[:2] == (True, 1)
        assert "has been revoked" in _cut_reason(held_bob)
        held_bob.close()
        assert "CERTIFICATE_REVOKED" in _refused(client(b, "bob"), st.port).upper()
        _open(client(a, "alice"), st.port).close()  # the other "trustwire CA": untouched
        (tmp_path / "crls.tmp").write_bytes(a.crl_path.read_bytes() + b_before)
        (tmp_path / "crls.tmp").replace(crls)
        ok, _, error = _reload(st)  # b's older CRL back: a rollback, whatever a's says
        assert not ok and error is not None and "refusing to roll back" in error
